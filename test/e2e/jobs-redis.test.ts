import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gql, sampleDocument, waitFor } from '../helpers/jobs-fixtures';
import { killHard, startServerProcess, stopServer, type ServerProcess } from '../helpers/jobs-process';
import { collectProgress, stagesByDocument } from '../helpers/jobs-ws';
import { redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';

const DOCUMENTS = 200;

/**
 * Two kbql processes share one Redis (BullMQ queue, job state, progress pub/sub) and one data dir (the embedded
 * store's SQLite file, WAL): a job started on one is processed by both, each document exactly once.
 */
describe(
  'ingestion jobs with two replicas on one Redis',
  { skip: redisServerAvailable() ? false : 'redis-server is not installed' },
  () => {
    let redis: OwnRedis;
    let dataDir: string;
    const servers: ServerProcess[] = [];

    let a: ServerProcess;
    let b: ServerProcess;

    before(async () => {
      redis = await startOwnRedis();
      dataDir = await mkdtemp(join(tmpdir(), 'kbql-jobs-redis-'));
      // A short lock, so the documents of a replica that dies go to the other within seconds.
      const env = { KBQL_CACHE_PREFIX: 'jobs-test', KBQL_INGEST_CONCURRENCY: '2', KBQL_JOB_LOCK_MS: '2000' };
      // Both at once, as two replicas start; one that started is stopped in `after` even when the other failed.
      const started = await Promise.allSettled([
        startServerProcess([dataDir, redis.url], env),
        startServerProcess([dataDir, redis.url], env),
      ]);
      for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
      [a, b] = servers as [ServerProcess, ServerProcess];
    });
    after(async () => {
      for (const server of servers) await killHard(server);
      await redis?.stop();
      await rm(dataDir, { recursive: true, force: true });
    });

    it('processes one job without duplicates, progress visible from either replica', { timeout: 60_000 }, async (t) => {
      assert.equal(
        (await gql(a.url, `mutation { createCollection(input: { name: "shared", chunking: { chunkSize: 48, chunkOverlap: 8 } }) { id } }`))
          .errors,
        undefined,
      );

      const documents = Array.from({ length: DOCUMENTS }, (_, i) => sampleDocument(i));
      const started = await gql<{ startIngestion: { id: string } }>(
        a.url,
        `mutation($d: [DocumentInput!]) { startIngestion(collection: "shared", documents: $d) { id } }`,
        { d: documents },
      );
      assert.equal(started.errors, undefined, JSON.stringify(started.errors));
      const jobId = started.data!.startIngestion.id;

      // Followed on the replica that did not accept the job: events of both arrive through Redis.
      const events = await collectProgress(b.url, jobId, undefined, 45_000);
      const summary = events.at(-1)!;
      assert.equal(summary.kind, 'SUMMARY');
      assert.deepEqual(
        { status: summary.job!.status, indexed: summary.job!.indexed, failed: summary.job!.failed },
        { status: 'COMPLETED', indexed: DOCUMENTS, failed: 0 },
      );
      const byDoc = stagesByDocument(events);
      assert.equal(byDoc.size, DOCUMENTS);
      const parsing = [...byDoc.values()].map((stages) => stages.filter((s) => s === 'PARSING').length);
      assert.ok(
        parsing.every((n) => n <= 1),
        'no document entered PARSING twice',
      );

      // The durable count: every document was started by a worker exactly once.
      const job = await gql<{ ingestionJob: { documents: { edges: { node: { runs: number; stage: string } }[] } } }>(
        a.url,
        `query($id: ID!, $after: String) { ingestionJob(id: $id) { documents(first: 100, after: $after) { edges { node { runs stage } } } } }`,
        { id: jobId },
      );
      const runs = job.data!.ingestionJob.documents.edges.map((e) => e.node.runs);
      const next = await gql<{ ingestionJob: { documents: { edges: { node: { runs: number } }[] } } }>(
        a.url,
        `query($id: ID!, $after: String) { ingestionJob(id: $id) { documents(first: 100, after: $after) { edges { node { runs } } } } }`,
        { id: jobId, after: Buffer.from('o:99').toString('base64url') },
      );
      runs.push(...next.data!.ingestionJob.documents.edges.map((e) => e.node.runs));
      assert.equal(runs.length, DOCUMENTS);
      assert.deepEqual([...new Set(runs)], [1], 'each document processed once');

      const stats = await gql<{ collection: { stats: { documents: number } } }>(
        b.url,
        `{ collection(name: "shared") { stats { documents } } }`,
      );
      assert.equal(stats.data!.collection.stats.documents, DOCUMENTS);
      const bull = await gql<{ ingestionJobs: { totalCount: number } }>(
        b.url,
        `{ ingestionJobs(collection: "shared", status: COMPLETED) { totalCount } }`,
      );
      assert.equal(bull.data!.ingestionJobs.totalCount, 1, 'the job is visible from the other replica too');
      t.diagnostic(`${events.length} progress events seen on replica B`);
    });

    it('finishes a job when a replica is killed mid-way: the other takes its documents over', { timeout: 60_000 }, async (t) => {
      assert.equal(
        (
          await gql(
            a.url,
            `mutation { createCollection(input: { name: "takeover", chunking: { chunkSize: 48, chunkOverlap: 8 } }) { id } }`,
          )
        ).errors,
        undefined,
      );
      const total = 300;
      const documents = Array.from({ length: total }, (_, i) => sampleDocument(1000 + i));
      const started = await gql<{ startIngestion: { id: string } }>(
        a.url,
        `mutation($d: [DocumentInput!]) { startIngestion(collection: "takeover", documents: $d) { id } }`,
        { d: documents },
      );
      assert.equal(started.errors, undefined, JSON.stringify(started.errors));
      const jobId = started.data!.startIngestion.id;
      const jobOf = async () =>
        (
          await gql<{ ingestionJob: { indexed: number; failed: number; status: string; finishedAt: string | null } }>(
            a.url,
            `query($id: ID!) { ingestionJob(id: $id) { indexed failed status finishedAt } }`,
            { id: jobId },
          )
        ).data!.ingestionJob;
      const atKill = await waitFor(
        'a fifth of the job',
        async () => {
          const job = await jobOf();
          return job.indexed >= total / 5 ? job : undefined;
        },
        30_000,
        50,
      );
      await killHard(b);
      assert.equal(atKill.finishedAt, null, 'killed mid-job');
      const done = await waitFor(
        'the job to finish on the surviving replica',
        async () => {
          const job = await jobOf();
          return job.finishedAt ? job : undefined;
        },
        45_000,
        200,
      );
      assert.deepEqual(
        { status: done.status, indexed: done.indexed, failed: done.failed },
        { status: 'COMPLETED', indexed: total, failed: 0 },
      );
      const stats = await gql<{ collection: { stats: { documents: number } } }>(
        a.url,
        `{ collection(name: "takeover") { stats { documents } } }`,
      );
      assert.equal(stats.data!.collection.stats.documents, total, 'each document stored once');
      t.diagnostic(`replica B killed at ${atKill.indexed}/${total} indexed; replica A finished the rest`);
      await stopServer(a);
    });
  },
);
