import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { closeRedisClient, createJobsRedisClient, RedisJobStore } from '../../src/adapters/jobs/redis.job-store';
import { SqliteJobStore } from '../../src/adapters/jobs/sqlite.job-store';
import type { JobDocumentState, JobStore, NewJob } from '../../src/ports/job-store.port';
import { CLAIMABLE_STAGES } from '../../src/ports/job-store.port';
import { redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';

const state = (index: number, patch: Partial<JobDocumentState> = {}): JobDocumentState => ({
  index,
  externalId: `doc-${index}`,
  filename: null,
  stage: 'QUEUED',
  code: null,
  reasonCode: null,
  reason: null,
  transient: null,
  documentId: null,
  chunkCount: null,
  runs: 0,
  attempt: 1,
  timings: { parseMs: null, chunkMs: null, embedMs: null, storeMs: null },
  updatedAt: new Date('2026-01-01T00:00:00Z'),
  ...patch,
});

const newJob = (id: string, tenant: string, collectionId: string, createdAt: Date, count: number): NewJob => ({
  id,
  tenant,
  collectionId,
  createdAt,
  documents: Array.from({ length: count }, (_, i) => ({
    state: state(i),
    payload: { kind: 'document' as const, id: `doc-${i}`, title: null, source: null, content: `content ${i}`, contentType: null, metadata: null },
  })),
});

/** The JobStore contract: what the job service relies on, for every adapter. */
function contract(name: string, open: () => Promise<{ store: JobStore; close(): Promise<void> }>) {
  describe(`JobStore contract: ${name}`, () => {
    it('stores a job with its documents and payloads, lists by tenant, collection and status', async () => {
      const { store, close } = await open();
      try {
        await store.createJob(newJob('j1', 'acme', 'c1', new Date(1000), 3));
        await store.createJob(newJob('j2', 'acme', 'c2', new Date(2000), 1));
        await store.createJob(newJob('j3', 'other', 'c1', new Date(3000), 1));
        const j1 = (await store.getJob('j1'))!;
        assert.deepEqual([j1.status, j1.total, j1.cancelRequested, j1.finishedAt], ['QUEUED', 3, false, null]);
        assert.equal(await store.getJob('missing'), null);
        assert.deepEqual((await store.getDocuments('j1')).map((d) => [d.index, d.stage, d.externalId]), [[0, 'QUEUED', 'doc-0'], [1, 'QUEUED', 'doc-1'], [2, 'QUEUED', 'doc-2']]);
        assert.equal((await store.getDocument('j1', 1))!.updatedAt.getTime(), new Date('2026-01-01T00:00:00Z').getTime());
        assert.deepEqual(await store.getPayload('j1', 2), { kind: 'document', id: 'doc-2', title: null, source: null, content: 'content 2', contentType: null, metadata: null });
        const byTenant = await store.listJobs({ tenant: 'acme' }, { offset: 0, limit: 10 });
        assert.deepEqual([byTenant.total, byTenant.items.map((j) => j.id)], [2, ['j2', 'j1']], 'newest first');
        const byCollection = await store.listJobs({ tenant: 'acme', collectionId: 'c1' }, { offset: 0, limit: 1 });
        assert.deepEqual([byCollection.total, byCollection.items.map((j) => j.id)], [2, ['j3']]);
        await store.markRunning('j1');
        assert.equal((await store.listJobs({ tenant: 'acme', status: 'RUNNING' }, { offset: 0, limit: 10 })).items[0]!.id, 'j1');
        assert.deepEqual((await store.unfinishedJobs()).map((j) => j.id), ['j1', 'j2', 'j3']);
      } finally {
        await close();
      }
    });

    it('moves a stage only from the expected ones (compare-and-set) and counts open documents', async () => {
      const { store, close } = await open();
      try {
        await store.createJob(newJob('k', 'acme', 'c', new Date(), 3));
        assert.equal(await store.openCount('k'), 3);
        assert.equal(await store.transition('k', state(0, { stage: 'PARSING', runs: 1 }), CLAIMABLE_STAGES), true);
        // A cancel (from QUEUED only) loses against the claim; the claim of a cancelled document loses too.
        assert.equal(await store.transition('k', state(0, { stage: 'CANCELLED' }), ['QUEUED']), false);
        assert.equal(await store.transition('k', state(1, { stage: 'CANCELLED' }), ['QUEUED']), true);
        assert.equal(await store.transition('k', state(1, { stage: 'PARSING' }), CLAIMABLE_STAGES), false);
        assert.equal(await store.transition('k', state(0, { stage: 'INDEXED', runs: 1, chunkCount: 4 }), ['PARSING']), true);
        assert.deepEqual((await store.getDocuments('k')).map((d) => d.stage), ['INDEXED', 'CANCELLED', 'QUEUED']);
        assert.equal((await store.getDocument('k', 0))!.chunkCount, 4);
        assert.equal(await store.openCount('k'), 1);
        await store.dropPayload('k', 0);
        assert.equal(await store.getPayload('k', 0), null);
        await store.replacePayload('k', 2, { kind: 'document', id: 'x', title: null, source: null, content: 'new', contentType: 'TEXT', metadata: null });
        assert.equal((await store.getPayload('k', 2) as { content: string }).content, 'new');
      } finally {
        await close();
      }
    });

    it('finishes a job once, and a reopened job can finish again', async () => {
      const { store, close } = await open();
      try {
        await store.createJob(newJob('f', 'acme', 'c', new Date(), 1));
        await store.setCancelRequested('f');
        assert.equal((await store.getJob('f'))!.cancelRequested, true);
        const results = await Promise.all([store.markFinished('f', new Date(5000), 'CANCELLED'), store.markFinished('f', new Date(6000), 'COMPLETED')]);
        assert.deepEqual(results.filter(Boolean).length, 1, 'exactly one caller finishes it');
        const finished = (await store.getJob('f'))!;
        assert.ok(finished.finishedAt);
        assert.equal((await store.unfinishedJobs()).length, 0);
        await store.reopen('f');
        const reopened = (await store.getJob('f'))!;
        assert.deepEqual([reopened.status, reopened.finishedAt, reopened.cancelRequested], ['RUNNING', null, false]);
        assert.deepEqual((await store.unfinishedJobs()).map((j) => j.id), ['f']);
        assert.equal(await store.markFinished('f', new Date(), 'COMPLETED'), true);
      } finally {
        await close();
      }
    });
  });
}

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

contract('SQLite (embedded)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kbql-jobstore-'));
  dirs.push(dir);
  const store = new SqliteJobStore({ dataDir: dir });
  await store.init();
  return { store, close: () => store.close() };
});

if (redisServerAvailable()) {
  let redis: OwnRedis | null = null;
  let n = 0;
  after(() => redis?.stop());
  contract('Redis', async () => {
    redis ??= await startOwnRedis();
    const client = createJobsRedisClient({ url: redis.url, prefix: 'x' });
    const store = new RedisJobStore(client, `contract-${++n}`);
    await store.init();
    return { store, close: async () => closeRedisClient(client) };
  });
}
