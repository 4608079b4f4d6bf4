import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { METRICS } from '../../src/observability/metrics';
import { graphqlRequest } from '../helpers/http';
import { parseSamples, sampleValue } from '../helpers/prometheus-text';
import { createTestApp, type TestApp } from '../helpers/test-app';
import { freePort } from '../helpers/redis';

/** Bounds that only turn a hang into a failure; nothing here is timed. */
const WAIT_MS = 30_000;
const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

/** A private redis-server (never the shared one on 6379: this test stops it). */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), WAIT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}):\n${out}`));
    });
  });
  child.stdout.resume();
  return child;
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

/** Polls until `predicate` holds for the value `read` returns; fails after WAIT_MS with the last value. */
async function until<T>(read: () => Promise<T>, predicate: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  let last: T = await read();
  while (!predicate(last)) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(100);
    last = await read();
  }
  return last;
}

describe('observability: /readyz with Redis', { skip: hasRedis ? false : 'redis-server is not installed' }, () => {
  let redis: ChildProcess | null = null;
  let t: TestApp | null = null;
  after(async () => {
    await t?.close();
    if (redis) await stopRedis(redis);
  });

  it('reports the cache down (degraded, still ready for traffic) when Redis stops, and up again when it returns', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    t = await createTestApp({ REDIS_URL: `redis://127.0.0.1:${port}` });
    const url = await t.app.listen(0, '127.0.0.1');
    type Report = { code: number; status: string; cache?: { status: string; critical: boolean } };
    const readyz = async (): Promise<Report> => {
      const res = await fetch(`${url}/readyz`);
      const body = (await res.json()) as { status: string; checks: Record<string, { status: string; critical: boolean }> };
      return { code: res.status, status: body.status, cache: body.checks.cache };
    };
    const cacheUp = async () =>
      sampleValue(parseSamples(await (await fetch(`${url}/metrics`)).text()), METRICS.dependencyUp, {
        dependency: 'cache',
        critical: 'false',
      });

    let report = await until(readyz, (r) => r.cache?.status === 'up', 'the cache check to pass');
    assert.deepEqual(report, { code: 200, status: 'ready', cache: { ...report.cache!, status: 'up', critical: false } });
    assert.equal(await cacheUp(), 1);

    await stopRedis(redis);
    report = await until(readyz, (r) => r.cache?.status === 'down', 'the cache check to fail');
    assert.deepEqual([report.code, report.status], [200, 'degraded'], 'Redis down degrades kbql without taking it out of service');
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal(await cacheUp(), 0);
    const served = await graphqlRequest(url, '{ collections { totalCount } }');
    assert.equal(served.status, 200, 'requests are still served');

    redis = await startRedis(port);
    report = await until(readyz, (r) => r.cache?.status === 'up', 'the cache check to pass again');
    assert.deepEqual([report.code, report.status], [200, 'ready']);
    assert.equal(await cacheUp(), 1);
  });
});
