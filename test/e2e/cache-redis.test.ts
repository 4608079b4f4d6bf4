import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApp, type App } from '../../src/app';
import { ExtractiveSynthesizer } from '../../src/adapters/synthesizers/extractive.synthesizer';
import { loadConfig } from '../../src/config';
import { METRICS } from '../../src/observability/metrics';
import type { AnswerSynthesizer, Synthesis, SynthesisRequest } from '../../src/ports/answer-synthesizer.port';
import { createClient } from '@redis/client';
import { graphqlRequest } from '../helpers/http';
import { pingRedis, redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';

class CountingSynthesizer implements AnswerSynthesizer {
  readonly inner = new ExtractiveSynthesizer();
  readonly name = this.inner.name;
  calls = 0;
  synthesize(request: SynthesisRequest): Promise<Synthesis> {
    this.calls++;
    return this.inner.synthesize(request);
  }
}

const DOCS = [
  {
    id: 'vacation',
    title: 'Vacation',
    content: 'Employees receive 25 days of paid vacation per calendar year. Unused days carry over until March 31.',
  },
  { id: 'laptops', title: 'Laptops', content: 'Every engineer gets a new laptop every three years, ordered through the IT service desk.' },
  { id: 'parking', title: 'Parking', content: 'Staff parking is in garage B. The garage code changes every month.' },
];
const ASK = `query($q: String!) { ask(collection: "kb", question: $q) { answer abstained sources { document { externalId } } } }`;

async function startApp(dataDir: string, env: Record<string, string>, synthesizer: AnswerSynthesizer): Promise<{ app: App; url: string }> {
  const config = loadConfig({ NODE_ENV: 'test', KBQL_LOG_LEVEL: 'silent', KBQL_DATA_DIR: dataDir, PORT: '0', ...env });
  const app = await createApp(config, { synthesizer });
  return { app, url: await app.listen(0, '127.0.0.1') };
}

async function seed(url: string): Promise<void> {
  const created = await graphqlRequest(url, 'mutation { createCollection(input: { name: "kb" }) { id } }');
  assert.equal(created.body.errors, undefined);
  const ingested = await graphqlRequest(
    url,
    'mutation($docs: [DocumentInput!]!) { ingestDocuments(collection: "kb", documents: $docs) { indexed } }',
    { docs: DOCS },
  );
  assert.equal(ingested.body.data?.ingestDocuments.indexed, DOCS.length);
}

async function counter(app: App, result: 'hit' | 'miss' | 'bypass', cache = 'result'): Promise<number> {
  const metric = await app.metrics.registry.getSingleMetric(METRICS.cacheRequests)!.get();
  return metric.values.filter((v) => v.labels.cache === cache && v.labels.result === result).reduce((sum, v) => sum + v.value, 0);
}

const adminClient = (url: string) => createClient({ url });

/** Runs `work` with a short-lived admin connection to the Redis at `url`. */
async function withRedis<T>(url: string, work: (client: ReturnType<typeof adminClient>) => Promise<T>): Promise<T> {
  const client = adminClient(url);
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    client.destroy();
  }
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const skip = redisServerAvailable() ? false : 'redis-server is not installed';

describe('Redis cache shared by two replicas (the Redis at 127.0.0.1:6379 if reachable, else our own)', { skip, timeout: 120_000 }, () => {
  let own: OwnRedis | null = null;
  let redisUrl: string;
  let dataDir: string;
  const prefix = `kbqltest-${randomBytes(4).toString('hex')}`;
  const synthA = new CountingSynthesizer();
  const synthB = new CountingSynthesizer();
  let a: { app: App; url: string };
  let b: { app: App; url: string };

  before(async () => {
    if (await pingRedis(6379)) {
      redisUrl = 'redis://127.0.0.1:6379';
    } else {
      own = await startOwnRedis();
      redisUrl = own.url;
    }
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-redis-'));
    // Two replicas: one database, one Redis.
    const env = { REDIS_URL: redisUrl, KBQL_CACHE_PREFIX: prefix };
    a = await startApp(dataDir, env, synthA);
    b = await startApp(dataDir, env, synthB);
    assert.equal(a.app.cache.backend, 'redis');
    await seed(a.url);
  });
  after(async () => {
    await a?.app.stop();
    await b?.app.stop();
    // Our keys only; the shared Redis keeps everything else.
    await withRedis(redisUrl, async (r) => {
      const keys = await r.keys(`${prefix}::*`);
      if (keys.length > 0) await r.del(keys);
    });
    await own?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves an answer computed by one replica to the other, under its prefix and with a TTL', async () => {
    const question = 'How many vacation days do employees get?';
    const first = await graphqlRequest(a.url, ASK, { q: question });
    assert.match(first.body.data?.ask.answer, /25 days/);
    assert.equal(synthA.calls, 1);
    // The write is not awaited by the request: give it a moment to land.
    await waitFor('the entry in Redis', async () => (await withRedis(redisUrl, (r) => r.keys(`${prefix}::result:*`))).length === 1);
    const second = await graphqlRequest(b.url, ASK, { q: question });
    assert.deepEqual(second.body, first.body);
    assert.equal(synthB.calls, 0, 'replica B did not synthesize');
    assert.equal(await counter(b.app, 'hit'), 1);

    const { keys, ttl } = await withRedis(redisUrl, async (r) => {
      const all = await r.keys(`${prefix}::*`);
      return { keys: all, ttl: await r.ttl(all.find((k) => k.startsWith(`${prefix}::result:`))!) };
    });
    assert.ok(
      keys.some((k) => k.startsWith(`${prefix}::embedding:hash:kbql-hash-v1/`)),
      'embeddings are cached too',
    );
    assert.ok(ttl > 0 && ttl <= 300, `result TTL ${ttl}`);
  });

  it('invalidates across replicas: a write through one replica is seen by the other at once', async () => {
    const question = 'Where is staff parking?';
    await graphqlRequest(a.url, ASK, { q: question });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const cached = await graphqlRequest(b.url, ASK, { q: question });
    assert.match(cached.body.data?.ask.answer, /garage B/);
    const synth = synthB.calls;
    const moved = await graphqlRequest(
      a.url,
      'mutation($docs: [DocumentInput!]!) { ingestDocuments(collection: "kb", documents: $docs) { indexed } }',
      {
        docs: [{ ...DOCS[2], content: 'Staff parking moved to garage C. The garage code changes every month.' }],
      },
    );
    assert.equal(moved.body.data?.ingestDocuments.indexed, 1);
    const after = await graphqlRequest(b.url, ASK, { q: question });
    assert.match(after.body.data?.ask.answer, /garage C/);
    assert.equal(synthB.calls, synth + 1);
  });
});

describe('Redis stopped, frozen and restarted mid-test (our own redis-server)', { skip, timeout: 120_000 }, () => {
  let redis: OwnRedis;
  let dataDir: string;
  const synth = new CountingSynthesizer();
  const timeoutMs = 100;
  let app: App;
  let url: string;
  /** An uncached ask with Redis up: the normal latency this test's budgets are built on. */
  let normalMs = 0;
  const budget = () => Math.max(1500, 5 * normalMs) + timeoutMs;

  before(async () => {
    redis = await startOwnRedis();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-redis-down-'));
    ({ app, url } = await startApp(dataDir, { REDIS_URL: redis.url, KBQL_CACHE_TIMEOUT_MS: String(timeoutMs) }, synth));
    await seed(url);
    const warm = await graphqlRequest(url, ASK, { q: 'Which desk handles laptop orders?' });
    normalMs = warm.ms;
  });
  after(async () => {
    await app?.stop();
    await redis?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('uses the cache while Redis is up', async () => {
    assert.equal(app.cache.available, true);
    const first = await graphqlRequest(url, ASK, { q: 'How many vacation days?' });
    const calls = synth.calls;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = await graphqlRequest(url, ASK, { q: 'How many vacation days?' });
    assert.deepEqual(second.body, first.body);
    assert.equal(synth.calls, calls, 'served from Redis');
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { checks: Record<string, { status: string }> }).checks.cache?.status, 'up');
  });

  it('Redis stopped: requests still succeed, uncached, within budget plus the cache timeout; bypasses are counted', async () => {
    const bypasses = await counter(app, 'bypass');
    const calls = synth.calls;
    await redis.stop();
    const questions = [
      'How many paid vacation days per year?',
      'Who orders laptops for engineers?',
      'How many paid vacation days per year?',
    ];
    for (const q of questions) {
      const res = await graphqlRequest(url, ASK, { q });
      assert.equal(res.status, 200);
      assert.equal(res.body.errors, undefined);
      assert.ok(res.body.data?.ask.sources.length > 0);
      assert.ok(res.ms < budget(), `${res.ms.toFixed(0)} ms, budget ${budget().toFixed(0)} ms (normal ${normalMs.toFixed(0)} ms)`);
    }
    // The two new questions were computed; the repeated one came from this replica's in-process copy.
    assert.equal(synth.calls, calls + 2);
    assert.ok((await counter(app, 'bypass')) > bypasses, 'bypass counter incremented');
    assert.equal(app.cache.available, false);
    // Redis being down degrades readiness but does not fail it.
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    const report = (await ready.json()) as { status: string; checks: Record<string, { status: string; critical: boolean }> };
    assert.equal(report.status, 'degraded');
    assert.deepEqual([report.checks.cache?.status, report.checks.cache?.critical], ['down', false]);
  });

  it('Redis restarted: the cache is used again', async () => {
    await redis.restart();
    await waitFor('the cache to reconnect', () => app.cache.available);
    const question = 'When do unused vacation days expire?';
    const first = await graphqlRequest(url, ASK, { q: question });
    await waitFor('the answer in Redis', async () => (await withRedis(redis.url, (r) => r.keys('kbql::result:*'))).length > 0);
    // A second replica (empty in-process copies) gets the answer from Redis.
    const synthB = new CountingSynthesizer();
    const replica = await startApp(dataDir, { REDIS_URL: redis.url, KBQL_CACHE_TIMEOUT_MS: String(timeoutMs) }, synthB);
    try {
      const second = await graphqlRequest(replica.url, ASK, { q: question });
      assert.deepEqual(second.body, first.body);
      assert.equal(synthB.calls, 0, 'served from Redis');
      assert.equal(await counter(replica.app, 'hit'), 1);
    } finally {
      await replica.app.stop();
    }
  });

  it('Redis frozen (accepts connections, never answers): requests succeed within budget plus the timeout, then skip it', async () => {
    const bypasses = await counter(app, 'bypass');
    redis.pause();
    try {
      const timed = await graphqlRequest(url, ASK, { q: 'Is the garage code fixed?' });
      assert.equal(timed.status, 200);
      assert.equal(timed.body.errors, undefined);
      assert.ok(timed.ms < budget(), `${timed.ms.toFixed(0)} ms, budget ${budget().toFixed(0)} ms`);
      // The breaker is open now: the next requests do not wait for the frozen Redis at all.
      const next = await graphqlRequest(url, ASK, { q: 'Who gets a new laptop?' });
      assert.equal(next.body.errors, undefined);
      assert.ok(next.ms < budget());
      assert.ok((await counter(app, 'bypass')) > bypasses);
    } finally {
      redis.resume();
    }
    await waitFor('the cache to be used again', async () => {
      await graphqlRequest(url, ASK, { q: 'Who gets a new laptop?' });
      return app.cache.available;
    });
  });
});
