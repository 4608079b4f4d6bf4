import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WeaviateKnowledgeStore } from '../../src/adapters/weaviate/weaviate.knowledge-store';
import { isAppError } from '../../src/errors';
import { FakeWeaviate } from '../helpers/fake-weaviate';
import { sampleDocument } from '../helpers/jobs-fixtures';
import { REEMBED_ENV } from '../helpers/reembed-env';
import { createTestApp, dataOf, type TestApp } from '../helpers/test-app';

const access = { tenant: 'default' };
const withReason = (reason: string) => (error: unknown) => isAppError(error) && error.details['reason'] === reason;

describe('ReembedService on the embedded store', () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp({ ...REEMBED_ENV, KBQL_REEMBED_GRACE_SECONDS: '1' });
  });
  after(() => t.close());

  async function collectionWithDocs(name: string, n: number) {
    dataOf(
      await t.execute(`mutation { createCollection(input: { name: "${name}", chunking: { chunkSize: 32, chunkOverlap: 0 } }) { id } }`),
    );
    dataOf(
      await t.execute(`mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "${name}", documents: $d) { indexed } }`, {
        d: Array.from({ length: n }, (_, i) => sampleDocument(i)),
      }),
    );
    return t.app.services.collections.resolve(name, access);
  }

  it('refuses an unknown embedder and the active one', async () => {
    await collectionWithDocs('refusals', 2);
    await assert.rejects(t.app.services.reembed.start('refusals', 'nope', access), withReason('UNKNOWN_EMBEDDER'));
    await assert.rejects(t.app.services.reembed.start('refusals', 'default', access), withReason('SAME_EMBEDDER'));
    await assert.rejects(t.app.services.reembed.cancel('refusals', access), withReason('NOT_REEMBEDDING'));
    await assert.rejects(t.app.services.reembed.rollback('refusals', access), withReason('NO_ROLLBACK'));
  });

  it('a cancelled rebuild drops what it built and changes nothing searches see', async () => {
    const c = await collectionWithDocs('cancelled', 60);
    const store = t.app.store.reembedding!;
    const b = t.app.services.embedders.byName('b');
    await store.startSecondary(c.id, b.info);
    let batches = 0;
    const outcome = await t.app.services.reembed.rebuild(c.id, 'b', {
      cancelled: async () => batches >= 1,
      progress: async () => void batches++,
    });
    assert.equal(outcome.status, 'CANCELLED');
    assert.equal(batches, 1, 'stopped after the first batch');
    const after = (await t.app.store.getCollection(c.id))!;
    assert.equal(after.secondary, null);
    assert.deepEqual(after.embedder, c.embedder);
  });

  it('cancelReembedding under a running rebuild ends it CANCELLED', async () => {
    const c = await collectionWithDocs('dropped', 60);
    const store = t.app.store.reembedding!;
    await store.startSecondary(c.id, t.app.services.embedders.byName('b').info);
    const outcome = await t.app.services.reembed.rebuild(c.id, 'b', {
      cancelled: async () => false,
      // Someone cancels between two batches.
      progress: async () => void (await t.app.services.reembed.cancel('dropped', access).catch(() => undefined)),
    });
    assert.equal(outcome.status, 'CANCELLED');
    assert.equal((await t.app.store.getCollection(c.id))!.secondary, null);
  });

  it('the grace period ends: rollback refused, previous vectors swept', async () => {
    const c = await collectionWithDocs('graced', 5);
    const outcome = await t.app.services.reembed.rebuild(c.id, 'b', { cancelled: async () => false, progress: async () => undefined });
    assert.equal(outcome.status, 'SWITCHED');
    const switched = (await t.app.store.getCollection(c.id))!;
    assert.equal(switched.secondary?.role, 'PREVIOUS');
    assert.equal((await t.app.services.reembed.view(switched)).state, 'ROLLBACK_AVAILABLE');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await t.app.services.reembed.view(switched)).state, 'STABLE');
    await assert.rejects(t.app.services.reembed.rollback('graced', access), withReason('NO_ROLLBACK'));
    assert.ok((await t.app.services.reembed.sweepExpired()) >= 1);
    assert.equal((await t.app.store.getCollection(c.id))!.secondary, null);
  });

  it('ingestion during the rebuild writes both vectors: only the older chunks are pending', async () => {
    const c = await collectionWithDocs('dual', 3);
    const store = t.app.store.reembedding!;
    await store.startSecondary(c.id, t.app.services.embedders.byName('b').info);
    const before = await store.secondaryProgress(c.id);
    assert.equal(before.embedded, 0);
    const ingested = dataOf(
      await t.execute<{ ingestDocuments: { results: { chunkCount: number }[] } }>(
        'mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "dual", documents: $d) { results { chunkCount } } }',
        { d: [{ id: 'fresh', content: 'A fresh document written while the collection is re-embedded, with both vectors.' }] },
      ),
    );
    const fresh = ingested.ingestDocuments.results[0]!.chunkCount;
    assert.ok(fresh > 0);
    assert.deepEqual(await store.secondaryProgress(c.id), { total: before.total + fresh, embedded: fresh });
    assert.equal((await store.pendingChunks(c.id, 1000)).length, before.total);
  });

  it('cancelIngestion of the re-embedding job drops the vectors it was building', async () => {
    const c = await collectionWithDocs('jobcancel', 300);
    const started = dataOf(
      await t.execute<{ reembedCollection: { id: string } }>(
        'mutation { reembedCollection(collection: "jobcancel", embedder: "b") { id } }',
      ),
    );
    const id = started.reembedCollection.id;
    dataOf(await t.execute('mutation($id: ID!) { cancelIngestion(jobId: $id) { id } }', { id }));
    let status = '';
    for (let i = 0; i < 200 && !['CANCELLED', 'COMPLETED'].includes(status); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      status = dataOf(await t.execute<{ ingestionJob: { status: string } }>('query($id: ID!) { ingestionJob(id: $id) { status } }', { id }))
        .ingestionJob.status;
    }
    assert.equal(status, 'CANCELLED');
    const after = (await t.app.store.getCollection(c.id))!;
    assert.equal(after.secondary, null, 'nothing left half-built');
    assert.deepEqual(after.embedder, c.embedder, 'searches never left the old embedder');
  });
});

describe('re-embedding on Weaviate (in-memory fake of the client)', () => {
  it('re-embeds through the job, switches, and rolls back', async () => {
    const fake = new FakeWeaviate();
    const store = new WeaviateKnowledgeStore(
      { url: 'http://weaviate.fake:8080', timeoutMs: 2_000, initTimeoutMs: 2_000, retries: 0 },
      { connect: fake.connect },
    );
    const t = await createTestApp({ ...REEMBED_ENV }, { store });
    try {
      dataOf(await t.execute('mutation { createCollection(input: { name: "w", chunking: { chunkSize: 32, chunkOverlap: 0 } }) { id } }'));
      dataOf(
        await t.execute('mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "w", documents: $d) { indexed } }', {
          d: Array.from({ length: 12 }, (_, i) => sampleDocument(i)),
        }),
      );
      const job = dataOf(
        await t.execute<{ reembedCollection: { id: string } }>('mutation { reembedCollection(collection: "w", embedder: "b") { id } }'),
      );
      let status = '';
      for (let i = 0; i < 200 && status !== 'COMPLETED' && status !== 'COMPLETED_WITH_ERRORS'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        status = dataOf(
          await t.execute<{ ingestionJob: { status: string } }>('query($id: ID!) { ingestionJob(id: $id) { status } }', {
            id: job.reembedCollection.id,
          }),
        ).ingestionJob.status;
      }
      assert.equal(status, 'COMPLETED');
      const q = 'query { collection(name: "w") { embedding { state active { fingerprint } } } }';
      const switched = dataOf(await t.execute<{ collection: { embedding: { state: string; active: { fingerprint: string } } } }>(q));
      assert.deepEqual(switched.collection.embedding, { state: 'ROLLBACK_AVAILABLE', active: { fingerprint: 'hash:kbql-hash-v1/128/l2' } });
      const hits = dataOf(
        await t.execute<{ search: { hits: unknown[] } }>(
          'query { search(collection: "w", query: "harbor quartz", mode: VECTOR) { hits { score } } }',
        ),
      );
      assert.ok(hits.search.hits.length > 0);
      dataOf(await t.execute('mutation { rollbackEmbedding(collection: "w") { id } }'));
      const back = dataOf(await t.execute<{ collection: { embedding: { state: string; active: { fingerprint: string } } } }>(q));
      assert.deepEqual(back.collection.embedding, { state: 'STABLE', active: { fingerprint: 'hash:kbql-hash-v1/256/l2' } });
    } finally {
      await t.close();
    }
  });
});
