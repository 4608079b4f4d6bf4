import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const SERVER_CHILD = join(__dirname, 'jobs-server.child.js');

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** Resolves with the exit signal once the process is gone. */
  exited: Promise<NodeJS.Signals | number | null>;
}

/** Spawns `jobs-server.child.js` and resolves once it prints its URL (rejects after `timeoutMs`). */
export function startServerProcess(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, [SERVER_CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server child did not start within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (data: string) => {
      out += data;
      const match = /listening (\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!, exited });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (data: string) => {
      err += data;
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server child exited with ${code}: ${err}`));
    });
  });
}

/** SIGKILL, then waits for the exit. */
export async function killHard(server: ServerProcess): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGKILL');
  await server.exited;
}

/** SIGTERM (graceful stop), SIGKILL after `timeoutMs`. */
export async function stopServer(server: ServerProcess, timeoutMs = 10_000): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs);
  await server.exited;
  clearTimeout(timer);
}
