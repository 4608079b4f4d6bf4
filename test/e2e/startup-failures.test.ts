import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');

/** Runs `node dist/src/main.js` with `env` and resolves with its exit code and stderr once it exits. */
function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN],
      { timeout: 30_000, env: { PATH: process.env['PATH'] ?? '', NODE_ENV: 'development', KBQL_LOG_LEVEL: 'silent', ...env } },
      (error, _stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
    );
  });
}

describe('start-up failures: one line, a hint, exit 1, no stack trace', () => {
  let dir: string;
  let busy: net.Server;
  let busyPort: number;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-startup-'));
    busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as net.AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => busy.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const assertFriendly = (result: { code: number | null; stderr: string }, line: RegExp, hint: RegExp) => {
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 2, result.stderr);
    assert.match(lines[0]!, line);
    assert.match(lines[1]!, hint);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  };

  it('port in use → says so and hints at PORT', async () => {
    const result = await start({ PORT: String(busyPort), HOST: '127.0.0.1', KBQL_DATA_DIR: path.join(dir, 'data-port') });
    assertFriendly(
      result,
      new RegExp(`^kbql: cannot listen on 127\\.0\\.0\\.1:${busyPort}: the port is already in use$`),
      /^hint: .*PORT=/,
    );
  });

  it('data directory not writable → says which and hints at KBQL_DATA_DIR', async () => {
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const result = await start({ PORT: '0', KBQL_DATA_DIR: path.join(file, 'data') });
    assertFriendly(
      result,
      /^kbql: the data directory .*a-file\/data cannot be created or written \(ENOTDIR\)$/,
      /^hint: set KBQL_DATA_DIR/,
    );
  });

  it('bad configuration → every problem on one line, and a hint', async () => {
    const result = await start({ PORT: 'abc', KBQL_HYBRID_ALPHA: '2' });
    assertFriendly(result, /^kbql: invalid configuration: PORT="abc": .*; KBQL_HYBRID_ALPHA="2": /, /^hint: /);
  });
});
