import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createContext } from '../../src/app/context';
import type { Principal } from '../../src/ports/principal.port';
import { BullJobQueue } from '../../src/adapters/jobs/bullmq.job-queue';
import { IngestionJobService, type IngestionJobServiceDeps } from '../../src/modules/jobs/ingestion-job.service';
import { gatedEmbedder, sampleDocument, waitFor } from '../helpers/jobs-fixtures';
import { redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';
import { codeOf, createTestApp, dataOf, type TestApp } from '../helpers/test-app';

const START = `mutation($c: String!, $docs: [DocumentInput!]) { startIngestion(collection: $c, documents: $docs) { id } }`;
const JOB = `query($id: ID!) { ingestionJob(id: $id) { id status finishedAt } }`;
const DELETE = `mutation($id: ID!) { deleteIngestionJob(jobId: $id) { id status deletedDocuments } }`;
const DAY_MS = 24 * 60 * 60 * 1000;

const ADMIN: Principal = { kind: 'development', subject: 'development', tenant: 'default', role: 'ADMIN' };

describe('ingestion job retention and deleteIngestionJob (in process)', () => {
  let t: TestApp;
  const holding = gatedEmbedder((texts) => texts.some((text) => text.includes('HOLD')));
  const as = (principal: Principal) => (query: string, variables?: Record<string, unknown>) =>
    t.app.apollo
      .executeOperation({ query, variables }, { contextValue: createContext(t.app.store, 'test', { principal, services: t.app.services }) })
      .then((r) => (r.body.kind === 'single' ? r.body.singleResult : assert.fail('single result expected')));
  const exec = as(ADMIN);
  const start = async (docs: unknown[]) =>
    dataOf<{ startIngestion: { id: string } }>((await exec(START, { c: 'kept', docs })) as never).startIngestion.id;
  const status = async (id: string) => {
    const result = await exec(JOB, { id });
    return result.errors
      ? String(codeOf(result as never))
      : dataOf<{ ingestionJob: { status: string } }>(result as never).ingestionJob.status;
  };
  const finished = (id: string) =>
    waitFor(
      `job ${id} to finish`,
      async () =>
        dataOf<{ ingestionJob: { finishedAt: string | null } }>((await exec(JOB, { id })) as never).ingestionJob.finishedAt ?? undefined,
    );
  /** The app's own job service with a fake clock and small batches (same store, queue and knowledge store). */
  const sweeperAt = (now: number, days = 7) =>
    new IngestionJobService({
      ...(t.app.services.jobs as unknown as { deps: IngestionJobServiceDeps }).deps,
      retention: { days, batchSize: 2, maxPerSweep: 3 },
      clock: () => new Date(now),
    });

  before(async () => {
    t = await createTestApp({ KBQL_INGEST_CONCURRENCY: '1', KBQL_EMBEDDING_DIMENSIONS: '256' }, { embedder: holding.embedder });
    dataOf(await t.execute(`mutation { createCollection(input: { name: "kept" }) { id } }`));
  });
  after(async () => {
    holding.release();
    await t.close();
  });

  it('sweeps finished jobs older than the retention in bounded sweeps, never a queued or running one', { timeout: 30_000 }, async () => {
    const done: string[] = [];
    for (let i = 0; i < 4; i++) {
      done.push(await start([sampleDocument(i)]));
      await finished(done[i]!);
    }
    const running = await start([{ id: 'held', content: 'A document that will HOLD its embedding until released.' }]);
    await holding.held;
    const queued = await start([sampleDocument(50)]); // concurrency 1: waits behind the held one
    assert.deepEqual([await status(running), await status(queued)], ['RUNNING', 'QUEUED']);

    const now = Date.now();
    assert.equal(await sweeperAt(now + 6 * DAY_MS).sweepFinishedJobs(), 0, 'six days later: none is old enough');
    assert.equal(await sweeperAt(now + 8 * DAY_MS, 0).sweepFinishedJobs(), 0, 'retention 0 keeps every job');
    const sweeper = sweeperAt(now + 8 * DAY_MS);
    assert.equal(await sweeper.sweepFinishedJobs(), 3, 'one sweep deletes at most maxPerSweep');
    assert.equal(await sweeper.sweepFinishedJobs(), 1);
    assert.equal(await sweeper.sweepFinishedJobs(), 0, 'sweeping again changes nothing');
    for (const id of done) assert.equal(await status(id), 'NOT_FOUND');
    assert.deepEqual([await status(running), await status(queued)], ['RUNNING', 'QUEUED']);
    const stats = dataOf<{ collection: { stats: { documents: number } } }>(
      await t.execute(`{ collection(name: "kept") { stats { documents } } }`),
    );
    assert.equal(stats.collection.stats.documents, 4, 'the indexed documents stay in the collection');

    // deleteIngestionJob refuses what is not finished.
    for (const id of [running, queued]) {
      const refused = await exec(DELETE, { id });
      assert.equal(codeOf(refused as never), 'CONFLICT');
      assert.equal((refused.errors![0]!.extensions as Record<string, unknown>)['reason'], 'JOB_NOT_FINISHED');
    }
    holding.release();
    await finished(running);
    await finished(queued);
    assert.equal(await sweeperAt(Date.now() + 6 * DAY_MS).sweepFinishedJobs(), 0, 'just finished: kept');
    assert.equal(await sweeperAt(Date.now() + 8 * DAY_MS).sweepFinishedJobs(), 2, 'a week later they go too');
    assert.deepEqual([await status(running), await status(queued)], ['NOT_FOUND', 'NOT_FOUND']);
  });

  it('deleteIngestionJob: WRITER of the collection only, another tenant gets NOT_FOUND, deleted once', async () => {
    const id = await start([sampleDocument(60), { id: 'empty', content: ' ' }]);
    await finished(id);
    const stranger = as({ kind: 'user', subject: 's', tenant: 'elsewhere', role: 'ADMIN' });
    assert.equal(codeOf((await stranger(DELETE, { id })) as never), 'NOT_FOUND');
    const reader = as({ kind: 'user', subject: 'r', tenant: 'default', role: 'READER' });
    assert.equal(codeOf((await reader(DELETE, { id })) as never), 'FORBIDDEN');
    // A tenant the collection is shared with read-only sees the job but may not delete it.
    dataOf((await exec(`mutation { shareCollection(collection: "kept", tenant: "partner", role: READER) { id } }`)) as never);
    const partner = as({ kind: 'user', subject: 'p', tenant: 'partner', role: 'ADMIN' });
    assert.equal(await status(id), 'COMPLETED_WITH_ERRORS');
    assert.equal(codeOf((await partner(DELETE, { id })) as never), 'FORBIDDEN');
    assert.equal(await status(id), 'COMPLETED_WITH_ERRORS', 'still there');

    const deleted = dataOf<{ deleteIngestionJob: unknown }>((await exec(DELETE, { id })) as never).deleteIngestionJob;
    assert.deepEqual(deleted, { id, status: 'COMPLETED_WITH_ERRORS', deletedDocuments: 2 });
    assert.equal(await status(id), 'NOT_FOUND');
    assert.equal(codeOf((await exec(DELETE, { id })) as never), 'NOT_FOUND');
    const docs = dataOf<{ ingestionJobs: { edges: { node: { id: string } }[] } }>(
      (await exec(`{ ingestionJobs(collection: "kept") { edges { node { id } } } }`)) as never,
    );
    assert.ok(!docs.ingestionJobs.edges.some((e) => e.node.id === id));
  });
});

/**
 * Redis mode: BullMQ's own entries must not pile up (a task is removed from Redis once it completes), and deleting
 * a job, by hand or by retention, leaves none of its keys behind.
 */
describe(
  'ingestion job retention with Redis and BullMQ',
  { skip: redisServerAvailable() ? false : 'redis-server is not installed' },
  () => {
    let redis: OwnRedis;
    let client: Redis;
    let t: TestApp;
    /** Job keys live under the cache prefix and the store's identity (written into the data dir). */
    let ns: string;

    before(async () => {
      redis = await startOwnRedis();
      client = new Redis(redis.url, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
      t = await createTestApp({
        REDIS_URL: redis.url,
        KBQL_JOB_QUEUE: 'redis',
        KBQL_CACHE_PREFIX: 'ret',
        KBQL_EMBEDDING_DIMENSIONS: '256',
      });
      ns = `ret:${readFileSync(path.join(t.dataDir, 'store-id'), 'utf8').trim()}`;
      dataOf(await t.execute(`mutation { createCollection(input: { name: "r" }) { id } }`));
    });
    after(async () => {
      await t?.close();
      client?.disconnect();
      await redis?.stop();
    });

    const startJob = async (docs: unknown[]) =>
      dataOf<{ startIngestion: { id: string } }>(await t.execute(START, { c: 'r', docs })).startIngestion.id;
    const finishedJob = (id: string) =>
      waitFor(
        `job ${id} to finish`,
        async () =>
          dataOf<{ ingestionJob: { finishedAt: string | null } }>(await t.execute(JOB, { id })).ingestionJob.finishedAt ?? undefined,
      );
    const jobKeys = async (id: string) => [...(await client.keys(`${ns}:jobs:job:${id}*`)), ...(await client.keys(`${ns}:bull:*${id}*`))];

    it('leaves no BullMQ task entries after completion, and no job keys after deletion or retention', { timeout: 30_000 }, async () => {
      const first = await startJob([sampleDocument(1), sampleDocument(2), { id: 'bad', content: ' ' }]);
      const second = await startJob([sampleDocument(3)]);
      await finishedJob(first);
      await finishedJob(second);
      // BullMQ removes completed tasks (removeOnComplete): no task hash, nothing in its completed set.
      await waitFor(
        'BullMQ to remove the completed tasks',
        async () => (await client.keys(`${ns}:bull:*${first}*`)).length === 0 || undefined,
        5_000,
      );
      assert.deepEqual(await client.keys(`${ns}:bull:*${second}*`), []);
      assert.equal(await client.zcard(`${ns}:bull:kbql-ingestion:completed`), 0);
      assert.ok((await jobKeys(first)).length > 0, 'the job itself is kept in the job store');

      const deleted = dataOf<{ deleteIngestionJob: { deletedDocuments: number } }>(
        await t.execute(DELETE, { id: first }),
      ).deleteIngestionJob;
      assert.equal(deleted.deletedDocuments, 3);
      assert.deepEqual(await jobKeys(first), []);
      assert.equal(await client.zscore(`${ns}:jobs:finished`, first), null);

      const deps = (t.app.services.jobs as unknown as { deps: IngestionJobServiceDeps }).deps;
      const sweeper = new IngestionJobService({ ...deps, retention: { days: 7 }, clock: () => new Date(Date.now() + 8 * DAY_MS) });
      assert.equal(await sweeper.sweepFinishedJobs(), 1);
      assert.equal(await sweeper.sweepFinishedJobs(), 0);
      assert.deepEqual(await jobKeys(second), []);
      assert.equal(await client.zcard(`${ns}:jobs:finished`), 0);
      assert.equal(codeOf(await t.execute(JOB, { id: second })), 'NOT_FOUND');
    });

    it(
      'removes a task that failed all its attempts, so enqueueing it again (a restart resuming the job) runs it',
      { timeout: 20_000 },
      async () => {
        const errors: unknown[] = [];
        const queue = new BullJobQueue({ url: redis.url, prefix: 'failing', attempts: 2, backoffMs: 10, onError: (e) => errors.push(e) });
        const runs: number[] = [];
        try {
          await queue.start(async () => {
            runs.push(Date.now());
            if (runs.length <= 2) throw new Error('the job store is down');
          });
          const task = { jobId: 'j', index: 0, attempt: 1 };
          await queue.enqueue([task]);
          await waitFor('both attempts to fail', () => (runs.length === 2 && errors.length >= 2) || undefined, 10_000);
          await waitFor(
            'the failed task to be removed',
            async () => (await client.keys('failing:kbql-ingestion:j_*')).length === 0 || undefined,
            5_000,
          );
          assert.equal(await client.zcard('failing:kbql-ingestion:failed'), 0);
          await queue.enqueue([task]);
          await waitFor('the re-enqueued task to run', () => runs.length === 3 || undefined, 10_000);
        } finally {
          await queue.close(1_000);
        }
      },
    );
  },
);
