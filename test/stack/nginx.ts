import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/redis';

/** The repository root (this file runs from dist/test/stack/). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const TEMPLATES_DIR = path.join(ROOT, 'deploy', 'nginx', 'templates');

/** True when an `nginx` binary can be run. */
export function nginxAvailable(): boolean {
  return spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status === 0;
}

/**
 * Renders a template as the official nginx image's `20-envsubst-on-templates.sh` does: envsubst restricted to the
 * variables that are set (`$NAME` and `${NAME}`), everything else (nginx's own `$host` …) left alone.
 */
export function renderTemplate(text: string, env: Record<string, string>): string {
  let out = text;
  for (const [name, value] of Object.entries(env)) {
    out = out.replace(new RegExp(`\\$\\{${name}\\}|\\$${name}(?![A-Za-z0-9_])`, 'g'), () => value);
  }
  return out;
}

export interface RunningNginx {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The access log (format `kbql` of the template) read so far. */
  accessLog(): string;
  stop(): Promise<void>;
}

/**
 * Starts nginx (foreground, own prefix dir, loopback only) with every shipped template rendered into conf.d, the
 * way the official image does it, under a minimal main nginx.conf like the image's (an http block that includes
 * conf.d/*.conf). `upstreams` are the kbql replicas' host:port.
 */
export async function startNginx(upstreams: readonly string[]): Promise<RunningNginx> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kbql-nginx-'));
  // nginx's workers run as an unprivileged user when started as root: they must reach the temp dirs.
  chmodSync(dir, 0o755);
  mkdirSync(path.join(dir, 'conf.d'));
  const env = {
    KBQL_UPSTREAM_SERVERS: upstreams.map((u) => `server ${u} max_fails=2 fail_timeout=10s;`).join('\n  '),
    NGINX_PORT: `127.0.0.1:${port}`,
  };
  for (const name of readdirSync(TEMPLATES_DIR).filter((n) => n.endsWith('.template'))) {
    const rendered = renderTemplate(readFileSync(path.join(TEMPLATES_DIR, name), 'utf8'), env);
    // The access log goes to a file here instead of the container's stdout.
    writeFileSync(
      path.join(dir, 'conf.d', name.replace(/\.template$/, '')),
      rendered.replace('access_log /dev/stdout kbql;', `access_log ${dir}/access.log kbql;`),
    );
  }
  const main = [
    'worker_processes 2;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  default_type application/octet-stream;',
    `  client_body_temp_path ${dir}/body;`,
    `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fastcgi;`,
    `  uwsgi_temp_path ${dir}/uwsgi;`,
    `  scgi_temp_path ${dir}/scgi;`,
    `  access_log ${dir}/access.log;`,
    `  include ${dir}/conf.d/*.conf;`,
    '}',
    '',
  ].join('\n');
  writeFileSync(path.join(dir, 'nginx.conf'), main);
  const args = ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off; master_process on;'];
  const test = spawnSync('nginx', ['-t', ...args.slice(0, 4), '-g', 'daemon off;'], { encoding: 'utf8' });
  if (test.status !== 0) throw new Error(`nginx -t failed:\n${test.stderr}`);
  let stderr = '';
  const child: ChildProcess = spawn('nginx', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d) => (stderr += String(d)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      if ((await fetch(`${url}/nginx-health`)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    port,
    pid: child.pid!,
    accessLog: () => {
      try {
        return readFileSync(path.join(dir, 'access.log'), 'utf8');
      } catch {
        return '';
      }
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        // SIGQUIT: graceful stop of master and workers.
        child.kill('SIGQUIT');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export { freePort };
