import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gql, sampleDocument, waitFor } from '../helpers/jobs-fixtures';
import { killHard, startServerProcess, stopServer, type ServerProcess } from '../helpers/jobs-process';
import { createTestApp, dataOf } from '../helpers/test-app';

const DOCUMENTS = 240;
const CREATE = `mutation { createCollection(input: { name: "crash", chunking: { strategy: SENTENCE, chunkSize: 40, chunkOverlap: 8 } }) { id } }`;
const JOB = `query($id: ID!) { ingestionJob(id: $id) { status indexed unchanged failed queued finishedAt
  documents(first: 100, stage: INDEXED) { totalCount } } }`;
const DOCS = `query($after: String) { documents(collection: "crash", first: 100, after: $after) {
  pageInfo { hasNextPage endCursor } edges { node { externalId chunkCount chunks(first: 1) { totalCount } } } } }`;

interface DocsPage {
  data?: {
    documents: {
      pageInfo: { hasNextPage: boolean; endCursor: string | null };
      edges: { node: { externalId: string; chunkCount: number; chunks: { totalCount: number } } }[];
    };
  };
  errors?: unknown[];
}

interface JobState {
  status: string;
  indexed: number;
  unchanged: number;
  failed: number;
  queued: number;
  finishedAt: string | null;
}

/** Every visible document: its chunk count, checking that the chunks listed agree (no half-written document). */
async function visibleDocuments(url: string): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  let after: string | null = null;
  for (;;) {
    const page: DocsPage = await gql<DocsPage['data'] & object>(url, DOCS, { after });
    assert.equal(page.errors, undefined, JSON.stringify(page.errors));
    for (const { node } of page.data!.documents.edges) {
      assert.ok(node.chunkCount > 0, `${node.externalId} has chunks`);
      assert.equal(node.chunks.totalCount, node.chunkCount, `${node.externalId}: listed chunks = chunkCount (never half-written)`);
      seen.set(node.externalId, node.chunkCount);
    }
    if (!page.data!.documents.pageInfo.hasNextPage) return seen;
    after = page.data!.documents.pageInfo.endCursor;
  }
}

describe('ingestion jobs survive kill -9', () => {
  const dirs: string[] = [];
  const servers: ServerProcess[] = [];
  after(async () => {
    for (const server of servers) await killHard(server);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('a restarted server resumes the job; every document is indexed once, as in a clean run', { timeout: 90_000 }, async (t) => {
    const documents = Array.from({ length: DOCUMENTS }, (_, i) => sampleDocument(i));

    // The reference: the same documents through the synchronous path of a fresh app.
    const clean = await createTestApp({ KBQL_EMBEDDING_DIMENSIONS: '256' });
    const expected = new Map<string, number>();
    try {
      dataOf(await clean.execute(CREATE));
      for (let i = 0; i < documents.length; i += 200) {
        const result = dataOf<{ ingestDocuments: { results: { externalId: string; status: string; chunkCount: number }[] } }>(
          await clean.execute(
            `mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "crash", documents: $d) { results { externalId status chunkCount } } }`,
            {
              d: documents.slice(i, i + 200),
            },
          ),
        );
        for (const r of result.ingestDocuments.results) {
          assert.equal(r.status, 'INDEXED');
          expected.set(r.externalId, r.chunkCount);
        }
      }
    } finally {
      await clean.close();
    }

    const dataDir = await mkdtemp(join(tmpdir(), 'kbql-jobs-crash-'));
    dirs.push(dataDir);
    const first = await startServerProcess([dataDir], { KBQL_INGEST_CONCURRENCY: '1' });
    servers.push(first);
    assert.equal((await gql(first.url, CREATE)).errors, undefined);
    const started = await gql<{ startIngestion: { id: string } }>(
      first.url,
      `mutation($d: [DocumentInput!]) { startIngestion(collection: "crash", documents: $d) { id } }`,
      { d: documents },
    );
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    const jobId = started.data!.startIngestion.id;
    const jobOf = async (url: string) => (await gql<{ ingestionJob: JobState }>(url, JOB, { id: jobId })).data!.ingestionJob;

    // Let it get some way, checking what is visible meanwhile, then kill it without warning.
    const atKill = await waitFor(
      'a third of the job',
      async () => {
        const job = await jobOf(first.url);
        await visibleDocuments(first.url);
        return job.indexed >= DOCUMENTS / 3 ? job : undefined;
      },
      30_000,
      100,
    );
    await killHard(first);
    assert.equal(atKill.finishedAt, null, 'killed mid-job');
    t.diagnostic(`killed after ${atKill.indexed} of ${DOCUMENTS} indexed`);

    // Restart on the same data dir: the job resumes by itself.
    const second = await startServerProcess([dataDir], { KBQL_INGEST_CONCURRENCY: '2' });
    servers.push(second);
    const resumedAt = await jobOf(second.url);
    assert.ok(resumedAt.indexed >= atKill.indexed, `nothing indexed before the kill was lost (${resumedAt.indexed} ≥ ${atKill.indexed})`);
    let polls = 0;
    const done = await waitFor(
      'the resumed job to finish',
      async () => {
        polls++;
        const seen = await visibleDocuments(second.url);
        for (const [id, chunks] of seen) assert.equal(chunks, expected.get(id), `${id}: chunk count as in the clean run`);
        const job = await jobOf(second.url);
        return job.finishedAt ? job : undefined;
      },
      60_000,
      250,
    );
    t.diagnostic(`resumed job finished after ${polls} polls`);
    assert.deepEqual(
      { status: done.status, indexed: done.indexed, unchanged: done.unchanged, failed: done.failed },
      {
        status: 'COMPLETED',
        indexed: DOCUMENTS,
        unchanged: 0,
        failed: 0,
      },
    );
    const final = await visibleDocuments(second.url);
    assert.equal(final.size, DOCUMENTS);
    assert.deepEqual([...final.entries()].sort(), [...expected.entries()].sort(), 'every document once, with the clean run’s chunk counts');
    const stats = await gql<{ collection: { stats: { documents: number; chunks: number } } }>(
      second.url,
      `{ collection(name: "crash") { stats { documents chunks } } }`,
    );
    assert.deepEqual(stats.data!.collection.stats, { documents: DOCUMENTS, chunks: [...expected.values()].reduce((a, b) => a + b, 0) });
    await stopServer(second);
  });
});
