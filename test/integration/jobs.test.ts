import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createContext } from '../../src/app/context';
import type { Principal } from '../../src/ports/principal.port';
import { gatedEmbedder, sampleDocument, waitFor } from '../helpers/jobs-fixtures';
import { codeOf, createTestApp, dataOf, type TestApp } from '../helpers/test-app';

const START = `mutation($c: String!, $docs: [DocumentInput!], $uploads: [ID!]) {
  startIngestion(collection: $c, documents: $docs, uploads: $uploads) { id status total queued }
}`;
const JOB = `query($id: ID!) { ingestionJob(id: $id) {
  id status total queued inProgress indexed unchanged failed cancelled cancelRequested finishedAt tookMs
  documents(first: 100) { totalCount edges { node { index externalId stage code reasonCode reason transient chunkCount attempt runs documentId document { id chunkCount } timings { parseMs embedMs storeMs } } } }
} }`;
const CREATE = `mutation($name: String!) { createCollection(input: { name: $name, chunking: { strategy: SENTENCE, chunkSize: 48, chunkOverlap: 8 } }) { id } }`;

interface JobDoc {
  index: number;
  externalId: string | null;
  stage: string;
  code: string | null;
  reasonCode: string | null;
  reason: string | null;
  transient: boolean | null;
  chunkCount: number | null;
  attempt: number;
  runs: number;
  documentId: string | null;
  document: { id: string; chunkCount: number } | null;
}
interface JobData {
  id: string;
  status: string;
  total: number;
  indexed: number;
  unchanged: number;
  failed: number;
  cancelled: number;
  queued: number;
  inProgress: number;
  cancelRequested: boolean;
  finishedAt: string | null;
  documents: { totalCount: number; edges: { node: JobDoc }[] };
}

describe('ingestion jobs (in process)', () => {
  let t: TestApp;
  const as = (principal: Principal) => (query: string, variables?: Record<string, unknown>) =>
    t.app.apollo
      .executeOperation({ query, variables }, { contextValue: createContext(t.app.store, 'test', { principal, services: t.app.services }) })
      .then((r) => (r.body.kind === 'single' ? r.body.singleResult : assert.fail('single result expected')));
  const exec = (query: string, variables?: Record<string, unknown>) =>
    as({ kind: 'development', subject: 'development', tenant: 'default', role: 'ADMIN' })(query, variables);
  const job = async (id: string) => dataOf<{ ingestionJob: JobData }>((await exec(JOB, { id })) as never).ingestionJob;
  const finished = (id: string) => waitFor(`job ${id} to finish`, async () => ((await job(id)).finishedAt ? job(id) : undefined));

  before(async () => {
    t = await createTestApp({ KBQL_INGEST_CONCURRENCY: '2', KBQL_EMBEDDING_DIMENSIONS: '256' });
    dataOf(await t.execute(CREATE, { name: 'jobs' }));
  });
  after(() => t.close());

  it('indexes a job in the background, then finds the same documents UNCHANGED', async () => {
    const docs = Array.from({ length: 12 }, (_, i) => sampleDocument(i));
    const bad = { id: 'empty-one', content: '   ' };
    const started = dataOf<{ startIngestion: { id: string; total: number; status: string } }>(
      (await exec(START, { c: 'jobs', docs: [...docs, bad] })) as never,
    ).startIngestion;
    assert.equal(started.total, 13);
    assert.ok(['QUEUED', 'RUNNING'].includes(started.status));
    const done = await finished(started.id);
    assert.equal(done.status, 'COMPLETED_WITH_ERRORS');
    assert.deepEqual([done.indexed, done.failed, done.unchanged, done.queued, done.inProgress], [12, 1, 0, 0, 0]);
    const failed = done.documents.edges.map((e) => e.node).find((d) => d.stage === 'FAILED')!;
    assert.deepEqual([failed.externalId, failed.code, failed.transient, failed.attempt], ['empty-one', 'BAD_USER_INPUT', false, 1]);
    for (const { node } of done.documents.edges.filter((e) => e.node.stage === 'INDEXED')) {
      assert.equal(node.runs, 1);
      assert.equal(node.document?.chunkCount, node.chunkCount);
    }

    const again = dataOf<{ startIngestion: { id: string } }>((await exec(START, { c: 'jobs', docs })) as never).startIngestion;
    const second = await finished(again.id);
    assert.equal(second.status, 'COMPLETED');
    assert.equal(second.unchanged, 12);

    const list = dataOf<{ ingestionJobs: { totalCount: number; edges: { node: { id: string } }[] } }>(
      (await exec(`{ ingestionJobs(collection: "jobs", status: COMPLETED_WITH_ERRORS) { totalCount edges { node { id } } } }`)) as never,
    ).ingestionJobs;
    assert.equal(list.totalCount, 1);
    assert.equal(list.edges[0]!.node.id, started.id);
  });

  it('retries only the failed documents, with new content when given', async () => {
    const docs = [sampleDocument(100), { id: 'broken', content: '' }, { id: 'broken-too', content: ' ' }];
    const { id } = dataOf<{ startIngestion: { id: string } }>((await exec(START, { c: 'jobs', docs })) as never).startIngestion;
    const first = await finished(id);
    assert.equal(first.failed, 2);
    const retried = await exec(`mutation($id: ID!, $r: IngestionRetryInput) { retryIngestion(jobId: $id, replace: $r) { status } }`, {
      id,
      r: { documents: [{ id: 'broken', content: 'Now the broken document has words in it.' }] },
    });
    dataOf(retried as never);
    const done = await waitFor('retry to finish', async () => {
      const j = await job(id);
      return j.finishedAt && j.indexed === 2 ? j : undefined;
    });
    const byId = new Map(done.documents.edges.map((e) => [e.node.externalId, e.node]));
    assert.deepEqual([byId.get('broken')!.stage, byId.get('broken')!.attempt], ['INDEXED', 2]);
    assert.deepEqual([byId.get('broken-too')!.stage, byId.get('broken-too')!.attempt], ['FAILED', 2]);
    assert.deepEqual([byId.get('note-0100')!.attempt, byId.get('note-0100')!.runs], [1, 1], 'the indexed document was not redone');
    const none = await exec(`mutation($id: ID!, $r: IngestionRetryInput) { retryIngestion(jobId: $id, replace: $r) { status } }`, {
      id,
      r: { documents: [{ id: 'note-0100', content: 'x' }] },
    });
    assert.equal(codeOf(none as never), 'BAD_USER_INPUT');
  });

  it('streams progress from the current state, ends after the summary, and stops listening on return()', async () => {
    const jobs = t.app.services.jobs;
    const principal = { kind: 'development', subject: 'development', tenant: 'default', role: 'ADMIN' } as const;
    const listeners = (jobId: string) =>
      (jobs as unknown as { deps: { events: { emitter: { listenerCount(e: string): number } } } }).deps.events.emitter.listenerCount(jobId);
    const { id } = dataOf<{ startIngestion: { id: string } }>(
      (await exec(START, { c: 'jobs', docs: [sampleDocument(300), sampleDocument(301)] })) as never,
    ).startIngestion;
    await finished(id);
    // Subscribed after the end: the final state of each document, then the summary, then done.
    const items = [];
    for await (const item of await jobs.progress(id, principal)) items.push(item);
    // One STAGE item carries both documents (progress is coalesced), then the summary.
    assert.deepEqual(
      items.map((i) => (i.kind === 'STAGE' ? i.documents.map((d) => `${d.index}:${d.stage}`).join() : `SUMMARY:${i.job!.indexed}`)),
      ['0:INDEXED,1:INDEXED', 'SUMMARY:2'],
    );
    assert.equal(listeners(id), 0, 'the stream unsubscribed when it ended');
    // A client that leaves early: return() removes the listener at once.
    const stream = await jobs.progress(id, principal);
    assert.equal(listeners(id), 1);
    await stream.next();
    await stream.return!();
    assert.equal(listeners(id), 0);
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
    await assert.rejects(jobs.progress(id, { tenant: 'elsewhere' }), (e: unknown) => (e as { code?: string }).code === 'NOT_FOUND');
  });

  it('hides another tenant’s jobs (NOT_FOUND) and needs WRITER to start one', async () => {
    const { id } = dataOf<{ startIngestion: { id: string } }>(
      (await exec(START, { c: 'jobs', docs: [sampleDocument(200)] })) as never,
    ).startIngestion;
    await finished(id);
    const stranger = as({ kind: 'user', subject: 's', tenant: 'elsewhere', role: 'ADMIN' });
    assert.equal(codeOf((await stranger(JOB, { id })) as never), 'NOT_FOUND');
    assert.equal(codeOf((await stranger(`mutation($id: ID!) { cancelIngestion(jobId: $id) { id } }`, { id })) as never), 'NOT_FOUND');
    const theirs = dataOf<{ ingestionJobs: { totalCount: number } }>((await stranger(`{ ingestionJobs { totalCount } }`)) as never);
    assert.equal(theirs.ingestionJobs.totalCount, 0);
    const reader = as({ kind: 'user', subject: 'r', tenant: 'default', role: 'READER' });
    assert.equal(codeOf((await reader(START, { c: 'jobs', docs: [sampleDocument(201)] })) as never), 'FORBIDDEN');
    assert.equal(codeOf((await exec(START, { c: 'jobs', docs: [] })) as never), 'BAD_USER_INPUT');
    assert.equal(codeOf((await exec(START, { c: 'jobs', uploads: ['upl_missing_0000'] })) as never), 'NOT_FOUND');
    assert.equal(codeOf((await exec(`mutation($id: ID!) { cancelIngestion(jobId: $id) { id } }`, { id })) as never), 'CONFLICT');
  });
});

describe('cancelling an ingestion job', () => {
  it('marks the remaining documents CANCELLED and leaves the indexed ones searchable', { timeout: 20_000 }, async () => {
    const gated = gatedEmbedder((_texts, call) => call > 5); // 5 calls through, then every one waits
    const t = await createTestApp({ KBQL_INGEST_CONCURRENCY: '1' }, { embedder: gated.embedder });
    try {
      dataOf(await t.execute(CREATE, { name: 'cancel-me' }));
      const docs = Array.from({ length: 30 }, (_, i) => sampleDocument(i));
      const { id } = dataOf<{ startIngestion: { id: string } }>(await t.execute(START, { c: 'cancel-me', docs })).startIngestion;
      await gated.held; // document 6 is embedding, 24 are queued
      const cancelled = dataOf<{ cancelIngestion: { cancelRequested: boolean } }>(
        await t.execute(`mutation($id: ID!) { cancelIngestion(jobId: $id) { cancelRequested } }`, { id }),
      ).cancelIngestion;
      assert.equal(cancelled.cancelRequested, true);
      gated.release();
      const done = await waitFor('the cancelled job to finish', async () => {
        const j = dataOf<{ ingestionJob: JobData }>(await t.execute(JOB, { id })).ingestionJob;
        return j.finishedAt ? j : undefined;
      });
      assert.equal(done.status, 'CANCELLED');
      assert.deepEqual([done.indexed, done.cancelled, done.failed], [5, 25, 0]);
      const indexed = done.documents.edges.map((e) => e.node).filter((d) => d.stage === 'INDEXED');
      assert.deepEqual(
        indexed.map((d) => d.index),
        [0, 1, 2, 3, 4],
      );
      const stats = dataOf<{ collection: { stats: { documents: number; chunks: number } } }>(
        await t.execute(`{ collection(name: "cancel-me") { stats { documents chunks } } }`),
      ).collection.stats;
      assert.equal(stats.documents, 5);
      assert.equal(
        stats.chunks,
        indexed.reduce((n, d) => n + d.chunkCount!, 0),
      );
      const hits = dataOf<{ search: { hits: { document: { externalId: string } }[] } }>(
        await t.execute(
          `{ search(collection: "cancel-me", query: "Sentence of note 3 v1", mode: KEYWORD, topK: 50) { hits { document { externalId } } } }`,
        ),
      ).search.hits;
      const found = new Set(hits.map((h) => h.document.externalId));
      assert.ok(found.has('note-0003'));
      assert.ok([...found].every((x) => ['note-0000', 'note-0001', 'note-0002', 'note-0003', 'note-0004'].includes(x)));
    } finally {
      gated.release();
      await t.close();
    }
  });
});
