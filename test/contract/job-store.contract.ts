import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobDocumentState, JobStatus, JobStore, NewJob } from '../../src/ports/job-store.port';
import { CLAIMABLE_STAGES, TenantQueueFull } from '../../src/ports/job-store.port';

/** The state of document `index` of a job: QUEUED, first attempt, unless `patch` says otherwise. */
export const state = (index: number, patch: Partial<JobDocumentState> = {}): JobDocumentState => ({
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

/** A job of `count` plain-text documents (payload `content <i>`), all QUEUED. */
export const newJob = (id: string, tenant: string, collectionId: string, createdAt: Date, count: number): NewJob => ({
  id,
  tenant,
  collectionId,
  createdAt,
  documents: Array.from({ length: count }, (_, i) => ({
    state: state(i),
    payload: {
      kind: 'document' as const,
      id: `doc-${i}`,
      title: null,
      source: null,
      content: `content ${i}`,
      contentType: null,
      metadata: null,
    },
  })),
});

/** Every document terminal (the first FAILED for COMPLETED_WITH_ERRORS, all CANCELLED for CANCELLED), then finished at `at`. */
export async function finish(store: JobStore, id: string, count: number, at: number, status: JobStatus): Promise<void> {
  for (let i = 0; i < count; i++) {
    const stage = status === 'CANCELLED' ? 'CANCELLED' : status === 'COMPLETED_WITH_ERRORS' && i === 0 ? 'FAILED' : 'INDEXED';
    assert.equal(await store.transition(id, state(i, { stage }), CLAIMABLE_STAGES), true);
    if (stage !== 'FAILED') await store.dropPayload(id, i);
  }
  assert.equal(await store.markFinished(id, new Date(at), status), true);
}

/** What a test file gives the contract for one adapter. */
export interface JobStoreUnderTest {
  store: JobStore;
  /** A second store on the same data (another connection; another replica with Redis). */
  twin(): Promise<JobStore>;
  /** Raw rows or keys still held for the job (its record, document states, payloads, index entries). */
  leftovers(jobId: string): Promise<number>;
  close(): Promise<void>;
}

/**
 * The JobStore contract: what the job service relies on, for every adapter (the embedded SQLite store always, Redis
 * when `redis-server` is installed). Each test opens fresh state with `open` and closes it.
 */
export function defineJobStoreContractSuite(name: string, open: () => Promise<JobStoreUnderTest>): void {
  describe(`JobStore contract: ${name}`, () => {
    it('retention deletes only jobs finished before the cutoff, in bounded batches, with every per-document record', async () => {
      const { store, leftovers, close } = await open();
      try {
        await store.createJob(newJob('old-done', 'acme', 'c1', new Date(1000), 3));
        await finish(store, 'old-done', 3, 2000, 'COMPLETED');
        await store.createJob(newJob('old-errors', 'acme', 'c1', new Date(1000), 2));
        await finish(store, 'old-errors', 2, 3000, 'COMPLETED_WITH_ERRORS');
        assert.ok(await store.getPayload('old-errors', 0), 'a FAILED document keeps its content for a retry');
        await store.createJob(newJob('old-cancelled', 'acme', 'c2', new Date(1000), 2));
        await finish(store, 'old-cancelled', 2, 4000, 'CANCELLED');
        await store.createJob(newJob('new-done', 'acme', 'c1', new Date(1000), 1));
        await finish(store, 'new-done', 1, 20_000, 'COMPLETED');
        await store.createJob(newJob('queued', 'acme', 'c1', new Date(500), 2));
        await store.createJob(newJob('running', 'acme', 'c1', new Date(500), 2));
        await store.markRunning('running');
        await store.transition('running', state(0, { stage: 'INDEXED' }), CLAIMABLE_STAGES);
        // Finished long ago, but a retry is queueing one of its documents again (reopen not written yet).
        await store.createJob(newJob('retrying', 'acme', 'c1', new Date(500), 1));
        await finish(store, 'retrying', 1, 1500, 'COMPLETED_WITH_ERRORS');
        await store.transition('retrying', state(0, { stage: 'QUEUED', attempt: 2 }), ['FAILED']);

        const cutoff = new Date(10_000);
        assert.equal(await store.deleteFinishedBefore(cutoff, 2), 2, 'at most the batch size');
        assert.equal(await store.deleteFinishedBefore(cutoff, 10), 1, 'the rest; the retrying job is kept');
        assert.equal(await store.deleteFinishedBefore(cutoff, 10), 0, 'run again: nothing more');
        for (const id of ['old-done', 'old-errors', 'old-cancelled']) {
          assert.equal(await store.getJob(id), null, id);
          assert.deepEqual(await store.getDocuments(id), [], id);
          assert.equal(await store.getDocument(id, 0), null, id);
          assert.equal(await store.getPayload(id, 0), null, id);
          assert.equal(await leftovers(id), 0, `${id}: nothing left behind`);
        }
        const kept = await store.listJobs({ tenant: 'acme' }, { offset: 0, limit: 10 });
        assert.deepEqual(kept.items.map((j) => j.id).sort(), ['new-done', 'queued', 'retrying', 'running']);
        assert.equal(kept.total, 4);
        assert.equal((await store.listJobs({ tenant: 'acme', collectionId: 'c2' }, { offset: 0, limit: 10 })).total, 0);
        assert.deepEqual(
          (await store.getDocuments('running')).map((d) => d.stage),
          ['INDEXED', 'QUEUED'],
        );
        assert.ok(await store.getPayload('queued', 1));
        assert.deepEqual((await store.unfinishedJobs()).map((j) => j.id).sort(), ['queued', 'running']);
        assert.ok((await leftovers('queued')) > 0, 'the leftovers probe sees a live job');
        // The cutoff moves past the newer job: it goes too, the unfinished ones still stay.
        assert.equal(await store.deleteFinishedBefore(new Date(30_000), 10), 1);
        assert.equal(await store.getJob('new-done'), null);
        assert.ok(await store.getJob('queued'));
        assert.ok(await store.getJob('running'));
      } finally {
        await close();
      }
    });

    it('deletes one job only when finished; twice, or from two replicas at once, deletes it once', async () => {
      const { store, twin, leftovers, close } = await open();
      try {
        await store.createJob(newJob('q', 'acme', 'c', new Date(1000), 1));
        await store.createJob(newJob('r', 'acme', 'c', new Date(1000), 2));
        await store.markRunning('r');
        assert.equal(await store.deleteJob('q'), 'active');
        assert.equal(await store.deleteJob('r'), 'active');
        assert.equal(await store.deleteJob('nope'), 'missing');
        assert.ok(await store.getJob('q'));
        await store.createJob(newJob('d', 'acme', 'c', new Date(1000), 2));
        await finish(store, 'd', 2, 2000, 'COMPLETED_WITH_ERRORS');
        const other = await twin();
        const once = await Promise.all([store.deleteJob('d'), other.deleteJob('d')]);
        assert.deepEqual(once.sort(), ['deleted', 'missing']);
        assert.equal(await leftovers('d'), 0);
        assert.equal(await store.deleteJob('d'), 'missing');

        // Retention racing on two replicas: every old job deleted exactly once, none twice, the live ones kept.
        for (let i = 0; i < 12; i++) {
          await store.createJob(newJob(`old-${i}`, 'acme', 'c', new Date(1000), 2));
          await finish(store, `old-${i}`, 2, 2000 + i, 'COMPLETED');
        }
        const counts = await Promise.all([store.deleteFinishedBefore(new Date(5000), 50), other.deleteFinishedBefore(new Date(5000), 50)]);
        assert.equal(counts[0] + counts[1], 12);
        assert.deepEqual((await store.listJobs({ tenant: 'acme' }, { offset: 0, limit: 50 })).items.map((j) => j.id).sort(), ['q', 'r']);
        // A job reopened by a retry is no longer finished: kept.
        await store.createJob(newJob('reopened', 'acme', 'c', new Date(1000), 1));
        await finish(store, 'reopened', 1, 2000, 'COMPLETED_WITH_ERRORS');
        await store.reopen('reopened');
        assert.equal(await store.deleteFinishedBefore(new Date(5000), 50), 0);
        assert.equal(await store.deleteJob('reopened'), 'active');
      } finally {
        await close();
      }
    });

    it('stores a job with its documents and payloads, lists by tenant, collection and status', async () => {
      const { store, close } = await open();
      try {
        await store.createJob(newJob('j1', 'acme', 'c1', new Date(1000), 3));
        await store.createJob(newJob('j2', 'acme', 'c2', new Date(2000), 1));
        await store.createJob(newJob('j3', 'other', 'c1', new Date(3000), 1));
        const j1 = (await store.getJob('j1'))!;
        assert.deepEqual([j1.status, j1.total, j1.cancelRequested, j1.finishedAt], ['QUEUED', 3, false, null]);
        assert.equal(await store.getJob('missing'), null);
        assert.deepEqual(
          (await store.getDocuments('j1')).map((d) => [d.index, d.stage, d.externalId]),
          [
            [0, 'QUEUED', 'doc-0'],
            [1, 'QUEUED', 'doc-1'],
            [2, 'QUEUED', 'doc-2'],
          ],
        );
        assert.equal((await store.getDocument('j1', 1))!.updatedAt.getTime(), new Date('2026-01-01T00:00:00Z').getTime());
        assert.deepEqual(await store.getPayload('j1', 2), {
          kind: 'document',
          id: 'doc-2',
          title: null,
          source: null,
          content: 'content 2',
          contentType: null,
          metadata: null,
        });
        const byTenant = await store.listJobs({ tenant: 'acme' }, { offset: 0, limit: 10 });
        assert.deepEqual([byTenant.total, byTenant.items.map((j) => j.id)], [2, ['j2', 'j1']], 'newest first');
        const byCollection = await store.listJobs({ tenant: 'acme', collectionId: 'c1' }, { offset: 0, limit: 1 });
        assert.deepEqual([byCollection.total, byCollection.items.map((j) => j.id)], [2, ['j3']]);
        await store.markRunning('j1');
        assert.equal((await store.listJobs({ tenant: 'acme', status: 'RUNNING' }, { offset: 0, limit: 10 })).items[0]!.id, 'j1');
        assert.deepEqual(
          (await store.unfinishedJobs()).map((j) => j.id),
          ['j1', 'j2', 'j3'],
        );
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
        assert.deepEqual(
          (await store.getDocuments('k')).map((d) => d.stage),
          ['INDEXED', 'CANCELLED', 'QUEUED'],
        );
        assert.equal((await store.getDocument('k', 0))!.chunkCount, 4);
        assert.equal(await store.openCount('k'), 1);
        await store.dropPayload('k', 0);
        assert.equal(await store.getPayload('k', 0), null);
        await store.replacePayload('k', 2, {
          kind: 'document',
          id: 'x',
          title: null,
          source: null,
          content: 'new',
          contentType: 'TEXT',
          metadata: null,
        });
        assert.equal(((await store.getPayload('k', 2)) as { content: string }).content, 'new');
      } finally {
        await close();
      }
    });

    it("counts a tenant's open documents across jobs, refuses a job over the cap (atomically), and the count follows the stages", async () => {
      const { store, twin, leftovers, close } = await open();
      try {
        await store.createJob(newJob('a', 'acme', 'c', new Date(1000), 3));
        await store.createJob(newJob('b', 'acme', 'c', new Date(1001), 2));
        await store.createJob(newJob('o', 'other', 'c2', new Date(1002), 4));
        assert.deepEqual(
          [await store.openDocuments('acme'), await store.openDocuments('other'), await store.openDocuments('nobody')],
          [5, 4, 0],
        );

        await assert.rejects(
          store.createJob(newJob('refused', 'acme', 'c', new Date(1003), 2), { maxOpenDocumentsPerTenant: 6 }),
          (error: unknown) => error instanceof TenantQueueFull && error.open === 5 && error.requested === 2 && error.max === 6,
        );
        assert.equal(await store.getJob('refused'), null);
        assert.equal(await leftovers('refused'), 0, 'a refused job leaves nothing behind');
        await store.createJob(newJob('fits', 'acme', 'c', new Date(1004), 1), { maxOpenDocumentsPerTenant: 6 });
        await store.createJob(newJob('other-fits', 'other', 'c2', new Date(1005), 2), { maxOpenDocumentsPerTenant: 6 });
        assert.deepEqual([await store.openDocuments('acme'), await store.openDocuments('other')], [6, 6]);

        // In progress still counts; finishing, cancelling or failing frees a place; a retry takes one again.
        await store.transition('a', state(0, { stage: 'PARSING' }), CLAIMABLE_STAGES);
        assert.equal(await store.openDocuments('acme'), 6);
        await store.transition('a', state(0, { stage: 'INDEXED' }), ['PARSING']);
        await store.transition('a', state(1, { stage: 'CANCELLED' }), ['QUEUED']);
        await store.transition('a', state(2, { stage: 'FAILED' }), CLAIMABLE_STAGES);
        assert.equal(await store.openDocuments('acme'), 3);
        assert.equal(await store.transition('a', state(1, { stage: 'PARSING' }), CLAIMABLE_STAGES), false, 'a lost compare-and-set');
        assert.equal(await store.openDocuments('acme'), 3);
        await store.transition('a', state(2, { stage: 'QUEUED', attempt: 2 }), ['FAILED']);
        assert.deepEqual([await store.openDocuments('acme'), await store.openDocuments('other')], [4, 6]);

        // Two replicas racing for the last two places: one job is written, the other refused.
        const other = await twin();
        const results = await Promise.allSettled([
          store.createJob(newJob('race-1', 'acme', 'c', new Date(1006), 2), { maxOpenDocumentsPerTenant: 6 }),
          other.createJob(newJob('race-2', 'acme', 'c', new Date(1007), 2), { maxOpenDocumentsPerTenant: 6 }),
        ]);
        assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
        assert.ok((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason instanceof TenantQueueFull);
        assert.equal(await store.openDocuments('acme'), 6);
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
        const results = await Promise.all([
          store.markFinished('f', new Date(5000), 'CANCELLED'),
          store.markFinished('f', new Date(6000), 'COMPLETED'),
        ]);
        assert.deepEqual(results.filter(Boolean).length, 1, 'exactly one caller finishes it');
        const finished = (await store.getJob('f'))!;
        assert.ok(finished.finishedAt);
        assert.equal((await store.unfinishedJobs()).length, 0);
        await store.reopen('f');
        const reopened = (await store.getJob('f'))!;
        assert.deepEqual([reopened.status, reopened.finishedAt, reopened.cancelRequested], ['RUNNING', null, false]);
        assert.deepEqual(
          (await store.unfinishedJobs()).map((j) => j.id),
          ['f'],
        );
        assert.equal(await store.markFinished('f', new Date(), 'COMPLETED'), true);
      } finally {
        await close();
      }
    });
  });
}
