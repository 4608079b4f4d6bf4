import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { METRICS } from '../../src/observability/metrics';
import { startTestServer, type TestApp } from '../helpers/test-app';
import { redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';
import { countingStore, gql, JWT_ENV, tokenFor } from '../helpers/security';

const skip = redisServerAvailable() ? false : 'redis-server is not installed';

const SEARCH = `query Find($q: String!) { search(collection: "kb", query: $q, topK: 3) {
  mode hits { score chunk { id text } document { externalId title metadata } } } }`;
const ASK = `query { ask(collection: "kb", question: "How many vacation days do employees get?") {
  answer abstained citations { marker source { n chunk { text } } } } }`;

/**
 * The response cache in front of execution, driven over real HTTP with JWT callers and the rate limit on a real
 * redis-server: what a hit must still do (auth, rate limit, the collection as the caller sees it now) and what it
 * must never serve.
 */
describe('response cache e2e: real HTTP, JWT, rate limit on a real redis-server', { skip }, () => {
  let redis: OwnRedis;
  let t: TestApp, url: string;
  let dir: string;
  let counted: ReturnType<typeof countingStore>;
  let admin: string;

  const lookups = async (result: 'hit' | 'miss') => {
    const metric = await t.app.metrics.registry.getSingleMetric(METRICS.cacheRequests)!.get();
    return metric.values.filter((v) => v.labels.cache === 'response' && v.labels.result === result).reduce((sum, v) => sum + v.value, 0);
  };
  /** Runs `request`; returns its result and how many response-cache hits it made (0 or 1). */
  /** Runs `request`; returns its result, how many response-cache hits it made (0 or 1) and the store methods it called. */
  const hitsOf = async <T>(request: () => Promise<T>): Promise<{ result: T; hits: number; storeCalls: string[] }> => {
    const hits = await lookups('hit');
    const calls = new Map(counted.calls);
    const result = await request();
    const storeCalls = [...counted.calls].filter(([name, n]) => n > (calls.get(name) ?? 0)).map(([name]) => name);
    return { result, hits: (await lookups('hit')) - hits, storeCalls };
  };
  const ingest = async (id: string, content: string) => {
    const res = await gql(
      url,
      {
        query: 'mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "kb", documents: $d) { indexed } }',
        variables: { d: [{ id, content }] },
      },
      admin,
    );
    assert.equal(res.json.data?.['ingestDocuments'].indexed, 1, JSON.stringify(res.json));
  };

  before(async () => {
    redis = await startOwnRedis();
    dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-rc-'));
    counted = countingStore(dir);
    ({ t, url } = await startTestServer(
      {
        ...JWT_ENV,
        REDIS_URL: redis.url,
        KBQL_CACHE_PREFIX: 'rc',
        KBQL_RATE_LIMIT: 'true',
        KBQL_RATE_LIMIT_MAX: '10',
        KBQL_RATE_LIMIT_WINDOW_SECONDS: '60',
        KBQL_RATE_LIMIT_TIMEOUT_MS: '3000',
        KBQL_CACHE_RESULT_TTL_SECONDS: '300',
      },
      { store: counted.store },
    ));
    admin = await tokenFor('ADMIN', 'acme', 'admin');
    await gql(url, { query: 'mutation { createCollection(input: { name: "kb" }) { id } }' }, admin);
    await ingest('vacation', 'Employees receive 25 days of paid vacation per year. Unused days carry over until March.');
    await ingest('laptops', 'Every engineer gets a new laptop every three years from the IT desk.');
  });
  after(async () => {
    await t.close();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a repeated search and ask from the cache: same body, no store call', async () => {
    const token = await tokenFor('READER', 'acme', 'repeat');
    for (const body of [{ query: SEARCH, variables: { q: 'paid vacation days' } }, { query: ASK }]) {
      const first = await hitsOf(() => gql(url, body, token));
      assert.equal(first.result.status, 200, JSON.stringify(first.result.json));
      assert.equal(first.hits, 0);
      const second = await hitsOf(() => gql(url, body, token));
      assert.equal(second.hits, 1, 'the repeated request is a response-cache hit');
      assert.deepEqual(second.result.json, first.result.json);
      // The collection is read to check its version; nothing is searched.
      assert.ok(
        second.storeCalls.every((name) => /^getCollection/.test(name)),
        `store calls on a hit: ${second.storeCalls.join(', ')}`,
      );
      assert.equal(second.result.headers.get('cache-control'), 'no-store', 'the other plugins still run');
    }
  });

  it('an ingest makes every stored response of the collection unreachable at once', async () => {
    const token = await tokenFor('READER', 'acme', 'writes');
    const body = { query: SEARCH, variables: { q: 'parking garage code' } };
    const before = await gql(url, body, token);
    assert.ok(!JSON.stringify(before.json).includes('garage B'));
    assert.equal((await hitsOf(() => gql(url, body, token))).hits, 1);
    await ingest('parking', 'Staff parking is in garage B. The parking garage code changes every month.');
    const after = await hitsOf(() => gql(url, body, token));
    assert.equal(after.hits, 0, 'served from the cache after a write');
    assert.match(JSON.stringify(after.result.json), /garage B/);
  });

  it('checks the caller on every hit: anonymous → 401, another tenant → NOT_FOUND, a revoked share → NOT_FOUND', async () => {
    const body = { query: SEARCH, variables: { q: 'new laptop' } };
    assert.equal((await gql(url, body, await tokenFor('READER', 'acme', 'owner'))).status, 200);
    const anonymous = await hitsOf(() => gql(url, body));
    assert.equal(anonymous.result.status, 401);
    assert.equal(anonymous.result.json.errors?.[0]?.extensions?.['code'], 'UNAUTHENTICATED');
    assert.equal(anonymous.hits, 0);
    const stranger = await tokenFor('READER', 'globex', 'stranger');
    assert.equal((await gql(url, body, stranger)).json.errors?.[0]?.extensions?.['code'], 'NOT_FOUND');

    const share = await gql(url, { query: 'mutation { shareCollection(collection: "kb", tenant: "globex", role: READER) { id } }' }, admin);
    assert.equal(share.status, 200, JSON.stringify(share.json));
    // Another tenant names a shared collection by id.
    const byId = {
      query: SEARCH.replace('"kb"', '$c').replace('($q: String!)', '($q: String!, $c: String!)'),
      variables: { q: 'new laptop', c: share.json.data?.['shareCollection'].id },
    };
    const shared = await gql(url, byId, stranger);
    assert.ok(shared.json.data?.['search'].hits.length > 0, JSON.stringify(shared.json));
    assert.equal((await hitsOf(() => gql(url, byId, stranger))).hits, 1);
    await gql(url, { query: 'mutation { unshareCollection(collection: "kb", tenant: "globex") { id } }' }, admin);
    const revoked = await hitsOf(() => gql(url, byId, stranger));
    assert.equal(revoked.result.json.errors?.[0]?.extensions?.['code'], 'NOT_FOUND', JSON.stringify(revoked.result.json));
    assert.equal(revoked.hits, 0);
  });

  it('spends the rate-limit budget on every hit: the 11th cached search in a window of 10 → 429', async () => {
    const token = await tokenFor('READER', 'acme', 'budget');
    const body = { query: SEARCH, variables: { q: 'vacation carry over' } };
    let hits = 0;
    for (let i = 1; i <= 10; i++) {
      const res = await hitsOf(() => gql(url, body, token));
      assert.equal(res.result.status, 200, `call ${i}: ${JSON.stringify(res.result.json)}`);
      hits += res.hits;
    }
    assert.equal(hits, 9, 'calls 2–10 were hits');
    const res = await gql(url, body, token);
    assert.equal(res.status, 429);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'RATE_LIMITED');
  });

  it('never serves what changes per request or is not listed: tookMs, collection, nested loads, usage, @skip', async () => {
    const token = await tokenFor('READER', 'acme', 'volatile');
    for (const query of [
      '{ search(collection: "kb", query: "laptop", topK: 2) { tookMs hits { score } } }',
      '{ search(collection: "kb", query: "laptop", topK: 2) { collection { stats { chunks } } hits { score } } }',
      '{ search(collection: "kb", query: "laptop", topK: 2) { hits { chunk { document { title } } } } }',
      '{ ask(collection: "kb", question: "Who gets a laptop?") { answer usage { totalTokens } } }',
      '{ search(collection: "kb", query: "laptop", topK: 2) @skip(if: false) { hits { score } } }',
    ]) {
      for (let i = 0; i < 2; i++) {
        const misses = await lookups('miss');
        const res = await hitsOf(() => gql(url, { query }, token));
        assert.equal(res.result.status, 200, JSON.stringify(res.result.json));
        assert.equal(res.hits, 0, query);
        assert.equal(await lookups('miss'), misses, `${query}: not even looked up`);
      }
    }
  });

  it('caches operations that select through named and inline fragments', async () => {
    const token = await tokenFor('READER', 'acme', 'fragments');
    const query = `query Frag { ...Q }
      fragment Q on Query { search(collection: "kb", query: "laptop desk", topK: 2) { ... on SearchPayload { hits { ...H } } } }
      fragment H on SearchHit { score document { externalId } }`;
    const first = await gql(url, { query }, token);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const second = await hitsOf(() => gql(url, { query }, token));
    assert.equal(second.hits, 1);
    assert.deepEqual(second.result.json, first.json);
  });

  it("executes a router's request for an inline trace (ftv1), cached or not", async () => {
    const token = await tokenFor('READER', 'acme', 'router');
    const body = { query: SEARCH, variables: { q: 'engineer laptop' } };
    await gql(url, body, token);
    const traced = await hitsOf(() => gql(url, body, token, { 'apollo-federation-include-trace': 'ftv1' }));
    assert.equal(traced.hits, 0);
    assert.equal(typeof (traced.result.json as { extensions?: Record<string, unknown> }).extensions?.['ftv1'], 'string');
  });

  it('a deleted collection is NOT_FOUND, never its cached responses', async () => {
    const token = await tokenFor('READER', 'acme', 'deleted');
    const body = { query: SEARCH, variables: { q: 'three years' } };
    await gql(url, body, token);
    assert.equal((await hitsOf(() => gql(url, body, token))).hits, 1);
    const id = (await gql(url, { query: '{ collection(name: "kb") { id } }' }, admin)).json.data?.['collection'].id as string;
    const deleted = await gql(url, { query: 'mutation($id: ID!) { deleteCollection(id: $id) { id } }', variables: { id } }, admin);
    assert.equal(deleted.status, 200, JSON.stringify(deleted.json));
    const res = await hitsOf(() => gql(url, body, token));
    assert.equal(res.result.json.errors?.[0]?.extensions?.['code'], 'NOT_FOUND');
    assert.equal(res.hits, 0);
  });
});
