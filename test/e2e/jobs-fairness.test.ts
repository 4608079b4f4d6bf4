import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { gatedEmbedder, sampleDocument, waitFor } from '../helpers/jobs-fixtures';
import { redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';
import { gql, JWT_ENV, tokenFor } from '../helpers/security';
import { createTestApp } from '../helpers/test-app';

const START = `mutation($c: String!, $d: [DocumentInput!]) { startIngestion(collection: $c, documents: $d) { id total } }`;
const docs = (from: number, n: number) => Array.from({ length: n }, (_, i) => sampleDocument(from + i));

/**
 * Fairness over HTTP with JWT tenants: KBQL_MAX_QUEUED_DOCUMENTS_PER_TENANT=10 while the embedder holds every
 * document open. A tenant at its cap is refused with RATE_LIMITED (429, retryAfter) while another tenant is still
 * accepted, and cancelling frees places. Run on both job backends (Redis when redis-server is installed).
 */
describe('per-tenant cap on queued documents', () => {
  let redis: OwnRedis | null = null;
  after(() => redis?.stop());

  const backends: [string, () => Promise<Record<string, string>>][] = [
    ['SQLite + in-process queue', async () => ({ KBQL_JOB_QUEUE: 'memory' })],
  ];
  if (redisServerAvailable()) {
    backends.push([
      'Redis + BullMQ',
      async () => ({ KBQL_JOB_QUEUE: 'redis', REDIS_URL: (redis ??= await startOwnRedis()).url, KBQL_CACHE_PREFIX: `fair-${Date.now()}` }),
    ]);
  }

  for (const [name, env] of backends) {
    it(
      `${name}: one tenant over the cap gets RATE_LIMITED with retryAfter, another is accepted, a cancel frees places`,
      { timeout: 60_000 },
      async () => {
        const gated = gatedEmbedder(() => true);
        const t = await createTestApp(
          { ...JWT_ENV, ...(await env()), KBQL_INGEST_CONCURRENCY: '1', KBQL_MAX_QUEUED_DOCUMENTS_PER_TENANT: '10' },
          { embedder: gated.embedder },
        );
        try {
          const url = await t.app.listen(0, '127.0.0.1');
          const acme = await tokenFor('WRITER', 'acme');
          const globex = await tokenFor('WRITER', 'globex');
          for (const [token, collection] of [
            [acme, 'a'],
            [globex, 'g'],
          ] as const) {
            const created = await gql(url, { query: `mutation { createCollection(input: { name: "${collection}" }) { id } }` }, token);
            assert.equal(created.json.errors, undefined, JSON.stringify(created.json.errors));
          }
          const start = (token: string, collection: string, d: unknown[]) =>
            gql(url, { query: START, variables: { c: collection, d } }, token);

          const first = await start(acme, 'a', docs(0, 8));
          assert.equal(first.json.errors, undefined, JSON.stringify(first.json.errors));
          await gated.held; // one document embedding, seven queued: all eight open

          const refused = await start(acme, 'a', docs(100, 3));
          assert.equal(refused.status, 429);
          assert.equal(refused.headers.get('retry-after'), '30');
          const error = refused.json.errors?.[0];
          assert.deepEqual(
            {
              code: error?.extensions?.['code'],
              reason: error?.extensions?.['reason'],
              retryAfter: error?.extensions?.['retryAfter'],
              queued: error?.extensions?.['queued'],
              max: error?.extensions?.['max'],
            },
            { code: 'RATE_LIMITED', reason: 'TENANT_QUEUE_FULL', retryAfter: 30, queued: 8, max: 10 },
          );
          assert.match(error!.message, /already has 8 documents queued or in progress; 3 more would exceed the limit of 10/);

          const other = await start(globex, 'g', docs(200, 10));
          assert.equal(other.json.errors, undefined, `another tenant is still accepted: ${JSON.stringify(other.json.errors)}`);
          const fits = await start(acme, 'a', docs(300, 2));
          assert.equal(fits.json.errors, undefined, 'up to the cap exactly');
          assert.equal((await start(acme, 'a', docs(400, 1))).json.errors?.[0]?.extensions?.['code'], 'RATE_LIMITED');

          // Cancelling the first job frees its seven queued places (the one embedding stops at its next stage).
          const jobId = first.json.data!['startIngestion'].id as string;
          const cancelled = await gql(
            url,
            { query: `mutation($id: ID!) { cancelIngestion(jobId: $id) { cancelRequested } }`, variables: { id: jobId } },
            acme,
          );
          assert.equal(cancelled.json.errors, undefined, JSON.stringify(cancelled.json.errors));
          const after = await waitFor(
            'places freed by the cancel',
            async () => {
              const r = await start(acme, 'a', docs(500, 7));
              return r.json.errors ? undefined : r;
            },
            10_000,
            100,
          );
          assert.equal(after.json.data!['startIngestion'].total, 7);
        } finally {
          gated.release();
          await t.close();
        }
      },
    );
  }
});
