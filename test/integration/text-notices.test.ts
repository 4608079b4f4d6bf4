import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/jobs-fixtures';
import { createTestApp, dataOf, type TestApp } from '../helpers/test-app';

const INGEST = `mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "notes", documents: $d) {
  results { status notices document { chunks(first: 5) { edges { node { text } } } } }
} }`;
const PREVIEW = `query($d: DocumentInput!) { previewChunks(collection: "notes", document: $d) { notices chunkCount chunks { text } } }`;

describe('what parsing changes in the sent text is reported, not silent', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    dataOf(await t.execute('mutation { createCollection(input: { name: "notes" }) { id } }'));
  });
  after(() => t.close());

  it('NUL bytes removed and a lone surrogate replaced by U+FFFD: both counted in notices (ingest and preview)', async () => {
    const content = 'Budget\u0000 report for the \ud800 quarter. Revenue grew\u0000 by nine percent.';
    type Result = {
      ingestDocuments: { results: { status: string; notices: string[]; document: { chunks: { edges: { node: { text: string } }[] } } }[] };
    };
    const [result] = dataOf<Result>(await t.execute(INGEST, { d: [{ id: 'q3', content }] })).ingestDocuments.results;
    assert.equal(result!.status, 'INDEXED');
    assert.deepEqual(result!.notices, [
      '2 control character(s) (such as NUL) were removed from the text.',
      '1 unpaired UTF-16 surrogate(s) were replaced by U+FFFD.',
    ]);
    const stored = result!.document.chunks.edges.map((e) => e.node.text).join(' ');
    assert.ok(stored.includes('the \ufffd quarter') && !stored.includes('\u0000'), stored);

    const preview = dataOf<{ previewChunks: { notices: string[]; chunkCount: number } }>(
      await t.execute(PREVIEW, { d: { id: 'q3', content } }),
    ).previewChunks;
    assert.equal(preview.notices.length, 2);
  });

  it('a job document reports the same notices', async () => {
    const content = 'Minutes\u0000 of the \udc00 meeting.';
    const started = dataOf<{ startIngestion: { id: string } }>(
      await t.execute('mutation($d: [DocumentInput!]) { startIngestion(collection: "notes", documents: $d) { id } }', {
        d: [{ id: 'm1', content }],
      }),
    ).startIngestion;
    const JOB = 'query($id: ID!) { ingestionJob(id: $id) { status documents { edges { node { stage notices } } } } }';
    type Job = { ingestionJob: { status: string; documents: { edges: { node: { stage: string; notices: string[] } }[] } } };
    const job = await waitFor('the job done', async () => {
      const data = dataOf<Job>(await t.execute(JOB, { id: started.id })).ingestionJob;
      return data.status === 'COMPLETED' ? data : undefined;
    });
    assert.deepEqual(job.documents.edges[0]!.node, {
      stage: 'INDEXED',
      notices: [
        '1 control character(s) (such as NUL) were removed from the text.',
        '1 unpaired UTF-16 surrogate(s) were replaced by U+FFFD.',
      ],
    });
  });

  it('text sent clean has no notices', async () => {
    type Result = { ingestDocuments: { results: { notices: string[] }[] } };
    const [result] = dataOf<Result>(await t.execute(INGEST, { d: [{ id: 'clean', content: 'Nothing unusual in this text.' }] }))
      .ingestDocuments.results;
    assert.deepEqual(result!.notices, []);
  });
});
