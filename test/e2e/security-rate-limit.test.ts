import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { startTestServer, type TestApp } from '../helpers/test-app';
import { redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';
import { countingStore, gql, JWT_ENV, tokenFor } from '../helpers/security';

const SEARCH = '{ search(collection: "kb", query: "alpha", mode: KEYWORD) { tookMs } }';
const skip = redisServerAvailable() ? false : 'redis-server is not installed';

/** Env of an app limiting every @rateLimit field to 10 calls per 60 s, counters in `redisUrl`. */
const limited = (redisUrl: string, prefix: string): Record<string, string> => ({
  ...JWT_ENV,
  REDIS_URL: redisUrl,
  KBQL_CACHE_PREFIX: prefix,
  KBQL_RATE_LIMIT: 'true',
  KBQL_RATE_LIMIT_MAX: '10',
  KBQL_RATE_LIMIT_WINDOW_SECONDS: '60',
  KBQL_MAX_ALIASES: '100',
  // Generous, so a loaded test machine never turns a slow Redis answer into the per-replica fallback (which would
  // let each replica admit its own 10); with Redis stopped, calls fail at once regardless (no offline queue).
  KBQL_RATE_LIMIT_TIMEOUT_MS: '3000',
  // The result cache would answer repeated searches without the store; the limit applies either way, but the store
  // count below is how these tests see how many calls ran.
  KBQL_CACHE_RESULT_TTL_SECONDS: '0',
});

async function seed(url: string, token: string): Promise<void> {
  await gql(url, { query: 'mutation { createCollection(input: { name: "kb" }) { id } }' }, token);
  const ing = await gql(
    url,
    { query: 'mutation { ingestDocuments(collection: "kb", documents: [{ id: "a", content: "Alpha beta." }]) { indexed } }' },
    token,
  );
  assert.equal(ing.json.data?.['ingestDocuments'].indexed, 1, JSON.stringify(ing.json));
}

describe('security e2e: @rateLimit over real HTTP and a real redis-server', { skip }, () => {
  let redis: OwnRedis;
  let t: TestApp, url: string;
  let dir: string;
  let counted: ReturnType<typeof countingStore>;
  let writer: string;

  before(async () => {
    redis = await startOwnRedis();
    dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-rl-'));
    counted = countingStore(dir);
    ({ t, url } = await startTestServer(limited(redis.url, 'rl-one'), { store: counted.store }));
    writer = await tokenFor('WRITER', 'rl', 'seeder');
    await seed(url, writer);
  });
  after(async () => {
    await t.close();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the 11th call in a window of 10 → 429 RATE_LIMITED with retryAfter and Retry-After', async () => {
    const token = await tokenFor('READER', 'rl', 'eleven');
    for (let i = 1; i <= 10; i++) {
      const res = await gql(url, { query: SEARCH }, token);
      assert.equal(res.status, 200, `call ${i}: ${JSON.stringify(res.json)}`);
    }
    const res = await gql(url, { query: SEARCH }, token);
    assert.equal(res.status, 429);
    const error = res.json.errors?.[0];
    assert.equal(error?.extensions?.['code'], 'RATE_LIMITED');
    const retryAfter = error?.extensions?.['retryAfter'] as number;
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retryAfter ${retryAfter}`);
    assert.equal(res.headers.get('retry-after'), String(retryAfter));
    const other = await gql(url, { query: SEARCH }, await tokenFor('READER', 'rl', 'someone-else'));
    assert.equal(other.status, 200, 'the budget is per principal');
  });

  it('50 aliased calls in one request run at most 10 times', async () => {
    const token = await tokenFor('READER', 'rl', 'aliases');
    const query = `{ ${Array.from({ length: 50 }, (_, i) => `s${i}: search(collection: "kb", query: "alpha", mode: KEYWORD) { tookMs }`).join(' ')} }`;
    counted.calls.clear();
    const res = await gql(url, { query }, token);
    assert.equal(res.status, 429);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'RATE_LIMITED');
    // search is non-null, so the first refusal nulls the whole result; the resolvers of the admitted calls may still
    // be finishing: count after they have had time to.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const searches = counted.calls.get('search') ?? 0;
    assert.ok(searches >= 1 && searches <= 10, `the store searched ${searches} times, at most the limit of 10`);
  });
});

describe('security e2e: two replicas share one Redis budget; Redis down falls back to memory', { skip }, () => {
  let redis: OwnRedis;
  const dirs: string[] = [];
  const apps: App[] = [];

  before(async () => {
    redis = await startOwnRedis();
  });
  after(async () => {
    for (const app of apps) await app.stop();
    await redis.stop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function replica(dataDir: string, prefix: string): Promise<{ app: App; url: string; counted: ReturnType<typeof countingStore> }> {
    const counted = countingStore(dataDir);
    const config = loadConfig({ NODE_ENV: 'test', KBQL_LOG_LEVEL: 'silent', KBQL_DATA_DIR: dataDir, ...limited(redis.url, prefix) });
    const app = await createApp(config, { store: counted.store });
    apps.push(app);
    return { app, url: await app.listen(0, '127.0.0.1'), counted };
  }

  it('100 concurrent calls across two app instances, limit 10 → at most 10 succeed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-rl-two-'));
    dirs.push(dir);
    // Two replicas of one deployment: the same data directory and the same Redis prefix.
    const a = await replica(dir, 'rl-shared');
    const b = await replica(dir, 'rl-shared');
    await seed(a.url, await tokenFor('WRITER', 'rl', 'seeder'));
    const token = await tokenFor('READER', 'rl', 'burst');
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => gql(i % 2 ? a.url : b.url, { query: SEARCH }, token)));
    const ok = results.filter((r) => r.status === 200).length;
    const refused = results.filter((r) => r.status === 429 && r.json.errors?.[0]?.extensions?.['code'] === 'RATE_LIMITED').length;
    assert.equal(ok + refused, 100, 'every call was answered, as success or 429');
    assert.ok(ok <= 10, `${ok} calls succeeded`);
    assert.ok(ok >= 1, 'some calls ran');
    // Identical searches in flight share one computation, so the store may have run fewer than `ok`, never more.
    assert.ok((a.counted.calls.get('search') ?? 0) + (b.counted.calls.get('search') ?? 0) <= ok);
  });

  it('with Redis stopped, calls are answered at once and limited in memory (no hang)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-rl-down-'));
    dirs.push(dir);
    const one = await replica(dir, 'rl-down');
    await seed(one.url, await tokenFor('WRITER', 'rl', 'seeder'));
    await redis.stop();
    const token = await tokenFor('READER', 'rl', 'while-down');
    const statuses: number[] = [];
    const started = performance.now();
    for (let i = 0; i < 11; i++) statuses.push((await gql(one.url, { query: SEARCH }, token)).status);
    const elapsedMs = performance.now() - started;
    assert.deepEqual(statuses, [...Array(10).fill(200), 429], 'the in-memory limiter still counts to 10');
    assert.ok(elapsedMs < 10_000, `11 calls took ${Math.round(elapsedMs)} ms`);
  });
});
