import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { collectProgress } from '../helpers/jobs-ws';
import { freePort, nginxAvailable, ROOT, startNginx, type RunningNginx } from './nginx';

/**
 * `npm run test:stack`: the deploy kit started for real on loopback — Redis (with an `openssl rand -base64`-style
 * password), two kbql replicas in the supported multi-replica configuration (one shared store: one embedded data
 * dir; jobs and caches in Redis), nginx from deploy/nginx/templates, Prometheus from deploy/prometheus — and checked
 * end to end. Installs nginx and Prometheus with apt-get when missing (as root). Everything it starts is stopped by
 * pid; every address is 127.0.0.1. Exits 1 on the first failed check, printing what it measured.
 */

const MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
const JWT_SECRET = 'stack-test-secret-of-at-least-32-characters!';
const REDIS_PASSWORD = 'q8/Zr+e#Kd?x=0/Y1mW+3pLk#Ab?Cd/Ef+Gh==';
const started = Date.now();
const stops: (() => Promise<void> | void)[] = [];
const log = (line: string) => process.stdout.write(`[stack ${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);

function check(ok: unknown, what: string): asserts ok {
  if (!ok) throw new Error(`check failed: ${what}`);
  log(`ok: ${what}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// ------------------------------------------------------------------------------------------------ tools

function ensurePackages(): void {
  const missing = [
    ...(nginxAvailable() ? [] : ['nginx']),
    ...(spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0 ? [] : ['prometheus']),
  ];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`${missing.join(', ')} missing and not root: apt-get install ${missing.join(' ')}`);
  log(`installing ${missing.join(', ')} (apt-get)`);
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  if (install().status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit' });
    if (install().status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed`);
  }
}

function run(command: string, args: string[], cwd?: string): string {
  const r = spawnSync(command, args, { encoding: 'utf8', cwd });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

function track(child: ChildProcess, name: string): void {
  stops.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) {
      log(`${name} (pid ${child.pid}) did not stop: SIGKILL`);
      child.kill('SIGKILL');
    }
  });
}

// ------------------------------------------------------------------------------------------------ services

async function startRedis(): Promise<number> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', REDIS_PASSWORD],
    { stdio: 'ignore' },
  );
  track(child, 'redis');
  await waitFor('redis', async () =>
    run('redis-cli', ['-p', String(port), '--no-auth-warning', '-a', REDIS_PASSWORD, 'ping']).includes('PONG'),
  );
  return port;
}

interface Replica {
  name: string;
  port: number;
  metricsPort: number;
  child: ChildProcess;
  env: Record<string, string>;
}

function spawnReplica(replica: Omit<Replica, 'child'>): ChildProcess {
  const child = spawn(process.execPath, [MAIN], { env: { ...process.env, ...replica.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + String(d)).slice(-4000)));
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM') log(`${replica.name} exited ${code ?? signal}: ${stderr}`);
  });
  track(child, replica.name);
  return child;
}

async function startReplica(name: string, dataDir: string, redisPort: number): Promise<Replica> {
  const port = await freePort();
  const metricsPort = await freePort();
  const env = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    KBQL_METRICS_PORT: String(metricsPort),
    KBQL_DATA_DIR: dataDir,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    REDIS_PASSWORD,
    KBQL_CACHE_PREFIX: 'stack',
    KBQL_AUTH_MODE: 'jwt',
    KBQL_JWT_SECRET: JWT_SECRET,
    KBQL_TRUSTED_PROXIES: '127.0.0.1',
    KBQL_RATE_LIMIT_MAX: '1000000',
    KBQL_WORKERS: '1',
    KBQL_LOG_LEVEL: 'error',
  };
  const replica = { name, port, metricsPort, env };
  const child = spawnReplica(replica);
  await waitFor(`${name} ready`, async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 30_000);
  return { ...replica, child };
}

async function startPrometheus(targets: string[]): Promise<{ url: string; dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kbql-prometheus-'));
  const shipped = parse(readFileSync(path.join(ROOT, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8'));
  // The shipped config as it is, except: targets given the documented way outside Compose (static_configs instead
  // of Docker DNS discovery), and 1 s scrapes so a short run has data.
  shipped.global.scrape_interval = '1s';
  shipped.global.evaluation_interval = '1s';
  const job = shipped.scrape_configs.find((j: { job_name: string }) => j.job_name === 'kbql');
  delete job.dns_sd_configs;
  job.static_configs = [{ targets }];
  writeFileSync(path.join(dir, 'prometheus.yml'), stringify(shipped));
  copyFileSync(path.join(ROOT, 'deploy', 'prometheus', 'alerts.yml'), path.join(dir, 'alerts.yml'));
  check(
    run('promtool', ['check', 'config', path.join(dir, 'prometheus.yml')]).includes('SUCCESS'),
    'promtool check config (the shipped prometheus.yml with these targets)',
  );
  const port = await freePort();
  const child = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: 'ignore' },
  );
  track(child, 'prometheus');
  const url = `http://127.0.0.1:${port}`;
  await waitFor('prometheus ready', async () => (await fetch(`${url}/-/ready`)).ok, 30_000);
  stops.push(() => rmSync(dir, { recursive: true, force: true }));
  return { url, dir };
}

// ------------------------------------------------------------------------------------------------ clients

function token(role = 'ADMIN'): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'stack', kbql_role: role, kbql_tenant: 'default', iat: now, exp: now + 3600 })}`;
  return `${unsigned}.${createHmac('sha256', JWT_SECRET).update(unsigned).digest('base64url')}`;
}
const TOKEN = token();
const AUTH = { authorization: `Bearer ${TOKEN}` };

async function gql<T = any>(
  base: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<{ status: number; data?: T; errors?: { message: string; extensions?: { code?: string } }[] }> {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...AUTH },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, ...((await response.json()) as object) };
}

/** An idempotent search as a GraphQL GET (nginx may retry it on another replica). */
async function getSearch(base: string, q: string): Promise<number> {
  const query = `query Search($q: String!) { search(collection: "kb", query: $q, topK: 3) { hits { score } } }`;
  const url = `${base}/graphql?query=${encodeURIComponent(query)}&variables=${encodeURIComponent(JSON.stringify({ q }))}&operationName=Search`;
  try {
    const response = await fetch(url, { headers: { ...AUTH, 'apollo-require-preflight': 'true' }, signal: AbortSignal.timeout(10_000) });
    const body = (await response.json()) as { errors?: unknown };
    return body.errors ? 599 : response.status;
  } catch {
    return 0;
  }
}

const DOCS = Array.from({ length: 12 }, (_, i) => ({
  id: `doc-${i}`,
  title: `Handbook ${i}`,
  content: `Section ${i}. The harbor lantern ${i} glows copper at dusk. Employees get ${20 + i} vacation days a year. Laptops are replaced every ${3 + (i % 2)} years by the IT desk in building ${i}.`,
}));

/** A short mixed load: searches, answered and abstaining asks, an error, ingests; both replicas through nginx. */
async function mixedLoad(base: string, seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  let i = 0;
  while (Date.now() < end) {
    i++;
    await Promise.all([
      gql(base, `query Search($q: String!) { search(collection: "kb", query: $q, topK: 3) { hits { score } } }`, {
        q: `harbor lantern ${i % 5}`,
      }),
      gql(base, `query Ask($q: String!) { ask(collection: "kb", question: $q) { answer abstained } }`, {
        q: i % 2 ? 'How many vacation days do employees get?' : 'What is the boiling point of mercury on Mars?',
      }),
      gql(base, `query AskMissing { ask(collection: "nowhere", question: "anything?") { answer } }`),
      // A duplicate name: the store refuses it (CONFLICT), which the store-errors panel counts.
      i % 5 === 1 ? gql(base, 'mutation CreateAgain { createCollection(input: { name: "kb" }) { id } }') : null,
      i % 5 === 0
        ? gql(base, `mutation Ingest($d: [DocumentInput!]!) { ingestDocuments(collection: "kb", documents: $d) { indexed } }`, {
            d: [{ ...DOCS[i % DOCS.length]!, content: `${DOCS[i % DOCS.length]!.content} Revision ${i}.` }],
          })
        : null,
    ]);
    await sleep(100);
  }
}

// ------------------------------------------------------------------------------------------------ checks

function upstreamsOf(accessLog: string, since: number): string[][] {
  return accessLog
    .split('\n')
    .slice(since)
    .map((line) => /upstream=(\S+(?:, \S+)*) upstream_status/.exec(line)?.[1])
    .filter((u): u is string => Boolean(u) && u !== '-')
    .map((u) => u.split(', '));
}

async function main(): Promise<void> {
  if (!readFileSync(MAIN, { flag: 'r' })) throw new Error('build first');
  ensurePackages();

  // promtool on the shipped rules, and the rule unit tests of every alert.
  const promDir = path.join(ROOT, 'deploy', 'prometheus');
  check(run('promtool', ['check', 'rules', 'alerts.yml'], promDir).includes('SUCCESS'), 'promtool check rules alerts.yml');
  const alerts = parse(readFileSync(path.join(promDir, 'alerts.yml'), 'utf8')).groups.flatMap((g: { rules: { alert: string }[] }) =>
    g.rules.map((r) => r.alert),
  ) as string[];
  const ruleTests = readFileSync(path.join(promDir, 'alerts.test.yml'), 'utf8');
  for (const alert of alerts) check(ruleTests.includes(`alertname: ${alert}`), `alerts.test.yml tests ${alert}`);
  check(
    run('promtool', ['test', 'rules', 'alerts.test.yml'], promDir).includes('SUCCESS'),
    `promtool test rules (${alerts.length} alerts)`,
  );

  const redisPort = await startRedis();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kbql-stack-'));
  stops.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const a = await startReplica('kbql-a', dataDir, redisPort);
  const b = await startReplica('kbql-b', dataDir, redisPort);
  log(
    `replicas on :${a.port} and :${b.port} (metrics :${a.metricsPort}, :${b.metricsPort}), one data dir, Redis :${redisPort} with a password`,
  );
  const nginx: RunningNginx = await startNginx([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`]);
  stops.push(() => nginx.stop());
  const prometheus = await startPrometheus([`127.0.0.1:${a.metricsPort}`, `127.0.0.1:${b.metricsPort}`]);

  const base = nginx.url;
  check((await gql(base, 'mutation { createCollection(input: { name: "kb" }) { id } }')).data, 'createCollection through nginx');
  check(
    (
      await gql(base, 'mutation Ingest($d: [DocumentInput!]!) { ingestDocuments(collection: "kb", documents: $d) { indexed } }', {
        d: DOCS,
      })
    ).data?.ingestDocuments.indexed === DOCS.length,
    'ingestDocuments through nginx',
  );

  // Balancing: both replicas answer through nginx.
  let mark = nginx.accessLog().split('\n').length - 1;
  for (let i = 0; i < 20; i++) await fetch(`${base}/healthz`);
  const served = upstreamsOf(nginx.accessLog(), mark).map((u) => u.at(-1));
  const perReplica = [a, b].map((r) => served.filter((u) => u === `127.0.0.1:${r.port}`).length);
  check(
    perReplica.every((n) => n >= 5),
    `balanced across both replicas (${perReplica.join(' / ')} of 20)`,
  );

  // Metrics are not public; each replica serves them on its own port.
  check((await fetch(`${base}/metrics`)).status === 404, '/metrics not reachable through nginx');
  check((await fetch(`http://127.0.0.1:${a.port}/metrics`)).status === 404, '/metrics not on the main port in production');
  check((await fetch(`http://127.0.0.1:${a.metricsPort}/metrics`)).ok, '/metrics on the metrics port');

  // An upload through nginx, ingested as a job, followed over graphql-ws through nginx.
  const up = await fetch(`${base}/v1/uploads`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'text/plain', 'x-kbql-filename': 'notes.txt' },
    body: 'Copper lanterns light the harbor at dusk. The IT desk replaces laptops.',
  });
  const upBody = (await up.json()) as { id?: string };
  check(up.status === 201 && upBody.id, `POST /v1/uploads through nginx (${up.status})`);
  const job = await gql(base, `mutation($u: [ID!]) { startIngestion(collection: "kb", uploads: $u) { id } }`, { u: [upBody.id] });
  const jobId = job.data?.startIngestion.id as string;
  check(jobId, 'startIngestion of the upload');
  const events = await collectProgress(base, jobId, TOKEN, 20_000);
  const summary = events.at(-1);
  check(
    summary?.kind === 'SUMMARY' && summary.job?.status === 'COMPLETED' && summary.job.indexed === 1,
    `graphql-ws subscription through nginx followed the job to ${summary?.job?.status}`,
  );

  // Every dashboard expression evaluates and returns data after a short load.
  await mixedLoad(base, 8);
  await sleep(3000);
  const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy', 'grafana', 'dashboards', 'kbql.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  const exprs = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replace(/\$__rate_interval/g, '30s') })),
  );
  const empty: string[] = [];
  for (const { panel, expr } of exprs) {
    const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; error?: string; data?: { result: unknown[] } };
    if (body.status !== 'success') throw new Error(`dashboard panel "${panel}": ${expr}: ${body.error}`);
    if ((body.data?.result.length ?? 0) === 0) empty.push(`${panel}: ${expr}`);
  }
  check(
    empty.length === 0,
    `all ${exprs.length} dashboard expressions evaluate and return data${empty.length ? `; empty:\n  ${empty.join('\n  ')}` : ''}`,
  );
  const up2 = (await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent('sum(up{job="kbql"})')}`)).json()) as {
    data: { result: { value: [number, string] }[] };
  };
  check(up2.data.result[0]?.value[1] === '2', 'Prometheus scrapes both replicas');

  // The unsupported configuration (a replica on a data dir of its own, sharing the Redis) refuses to start.
  const otherDir = mkdtempSync(path.join(os.tmpdir(), 'kbql-stack-other-'));
  stops.push(() => rmSync(otherDir, { recursive: true, force: true }));
  const refused = spawnSync(process.execPath, [MAIN], {
    env: { ...process.env, ...a.env, PORT: '0', KBQL_METRICS_PORT: '0', KBQL_DATA_DIR: otherDir },
    encoding: 'utf8',
    timeout: 30_000,
  });
  check(
    refused.status === 1 && /already serves another knowledge store/.test(refused.stderr),
    `a replica on a separate data dir is refused (exit ${refused.status}): ${refused.stderr.trim().split('\n')[0]}`,
  );

  // kill -9 of one replica under a bounded load of idempotent GET searches.
  mark = nginx.accessLog().split('\n').length - 1;
  const RATE = 20;
  const LOAD_SECONDS = 8;
  const statuses: Promise<number>[] = [];
  const loadStart = Date.now();
  let killed = false;
  for (let i = 0; i < RATE * LOAD_SECONDS; i++) {
    const due = loadStart + (i * 1000) / RATE;
    await sleep(Math.max(0, due - Date.now()));
    if (!killed && Date.now() - loadStart > 2000) {
      a.child.kill('SIGKILL');
      killed = true;
      log(`kill -9 ${a.name} (pid ${a.child.pid}) under ${RATE} req/s`);
    }
    statuses.push(getSearch(base, `harbor ${i % 7}`));
  }
  const results = await Promise.all(statuses);
  const failed = results.filter((s) => s !== 200).length;
  await sleep(200);
  const retried = upstreamsOf(nginx.accessLog(), mark).filter((u) => u.length > 1).length;
  log(`kill -9 under load: ${results.length} idempotent requests, ${failed} failed, ${retried} retried by nginx on the other replica`);
  check(failed === 0, `0 failed idempotent requests (${failed} failed, ${retried} retried)`);

  // Restart: the replica rejoins (nginx sends it requests again; Prometheus scrapes it).
  a.child = spawnReplica(a);
  await waitFor(`${a.name} ready again`, async () => (await fetch(`http://127.0.0.1:${a.port}/readyz`)).ok, 30_000);
  const rejoined = await waitFor(
    `${a.name} to get requests from nginx again`,
    async () => {
      const m = nginx.accessLog().split('\n').length - 1;
      for (let i = 0; i < 10; i++) await getSearch(base, 'harbor');
      return upstreamsOf(nginx.accessLog(), m).some((u) => u.at(-1) === `127.0.0.1:${a.port}`);
    },
    20_000,
  );
  check(rejoined, `${a.name} restarted and rejoined the balancing`);
  await waitFor(
    'Prometheus to scrape the restarted replica',
    async () => {
      const r = (await (
        await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(`up{instance="127.0.0.1:${a.metricsPort}"}`)}`)
      ).json()) as { data: { result: { value: [number, string] }[] } };
      return r.data.result[0]?.value[1] === '1';
    },
    15_000,
  );
  log('ok: Prometheus scrapes the restarted replica');
}

void main()
  .then(
    () => {
      log(`PASS in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return 0;
    },
    (error: unknown) => {
      log(`FAIL: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    },
  )
  .then(async (code) => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        log(`cleanup: ${String(error)}`);
      }
    }
    process.exit(code);
  });
