import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEVELOPMENT_PRINCIPAL } from '../../src/modules/auth/principal';
import { minimalPdf, waitFor } from '../helpers/jobs-fixtures';
import { codeOf, createTestApp, dataOf, type TestApp } from '../helpers/test-app';

const PREVIEW = `query($c: String!, $d: DocumentInput, $u: ID) { previewChunks(collection: $c, document: $d, upload: $u) {
  collectionId externalId title contentType contentHash charCount chunks { index text startOffset endOffset } } }`;
const STORED = `query($id: ID!) { document(id: $id) { externalId title contentType contentHash charCount chunkCount
  chunks(first: 100) { totalCount edges { node { index text startOffset endOffset } } } } }`;

interface Preview {
  collectionId: string;
  externalId: string;
  title: string | null;
  contentType: string;
  contentHash: string;
  charCount: number;
  chunks: { index: number; text: string; startOffset: number; endOffset: number }[];
}

const long = Array.from({ length: 40 }, (_, i) => `Sentence ${i} speaks of harbors, quartz and lanterns at the edge of the meadow.`).join(
  ' ',
);
const DOCUMENTS = [
  {
    id: 'md',
    content: `# Field guide\n\nIntro paragraph about falcons.\n\n## Habitat\n\n${long}\n\n## Diet\n\nSmall birds and insects.`,
    metadata: { kind: 'guide' },
  },
  {
    id: 'html',
    content: `<html><head><title>Lantern page</title><style>p{}</style></head><body><h1>Lanterns</h1><p>${long}</p><ul><li>copper</li><li>glass</li></ul></body></html>`,
  },
  { id: 'text', title: 'Plain', content: `${long}\n\n${long}`, contentType: 'TEXT' },
  { content: 'A document without an id gets a content-hash id, in preview as in ingestion.' },
];

describe('previewChunks', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
    dataOf(
      await t.execute(
        `mutation { createCollection(input: { name: "preview", chunking: { strategy: AUTO, chunkSize: 64, chunkOverlap: 12 } }) { id } }`,
      ),
    );
  });
  after(() => t.close());

  it('returns exactly the chunks ingestion stores, and stores nothing itself', async () => {
    const previews: Preview[] = [];
    for (const d of DOCUMENTS)
      previews.push(dataOf<{ previewChunks: Preview }>(await t.execute(PREVIEW, { c: 'preview', d })).previewChunks);
    assert.ok(previews[0]!.chunks.length > 2 && previews[2]!.chunks.length > 2, 'long documents make several chunks');
    const stats = async () =>
      dataOf<{ collection: { stats: { documents: number } } }>(await t.execute(`{ collection(name: "preview") { stats { documents } } }`))
        .collection.stats;
    assert.equal((await stats()).documents, 0, 'preview stored nothing');

    const upload = await t.app.services.uploads.accept(
      DEVELOPMENT_PRINCIPAL,
      minimalPdf([long.slice(0, 300), long.slice(300, 600)], { title: 'Report' }),
      'report.pdf',
      'application/pdf',
    );
    previews.push(dataOf<{ previewChunks: Preview }>(await t.execute(PREVIEW, { c: 'preview', u: upload.id })).previewChunks);
    assert.equal((await stats()).documents, 0);

    const { id } = dataOf<{ startIngestion: { id: string } }>(
      await t.execute(
        `mutation($d: [DocumentInput!], $u: [ID!]) { startIngestion(collection: "preview", documents: $d, uploads: $u) { id } }`,
        {
          d: DOCUMENTS,
          u: [upload.id],
        },
      ),
    ).startIngestion;
    const job = await waitFor('the job', async () => {
      const j = dataOf<{
        ingestionJob: {
          finishedAt: string | null;
          indexed: number;
          documents: { edges: { node: { index: number; documentId: string } }[] };
        };
      }>(
        await t.execute(
          `query($id: ID!) { ingestionJob(id: $id) { finishedAt indexed documents { edges { node { index documentId } } } } }`,
          { id },
        ),
      ).ingestionJob;
      return j.finishedAt ? j : undefined;
    });
    assert.equal(job.indexed, 5);

    for (const { node } of job.documents.edges) {
      const preview = previews[node.index]!;
      const stored = dataOf<{
        document: {
          externalId: string;
          title: string | null;
          contentType: string;
          contentHash: string;
          charCount: number;
          chunkCount: number;
          chunks: { totalCount: number; edges: { node: Preview['chunks'][number] }[] };
        };
      }>(await t.execute(STORED, { id: node.documentId })).document;
      assert.deepEqual(
        {
          externalId: stored.externalId,
          title: stored.title,
          contentType: stored.contentType,
          contentHash: stored.contentHash,
          charCount: stored.charCount,
        },
        {
          externalId: preview.externalId,
          title: preview.title,
          contentType: preview.contentType,
          contentHash: preview.contentHash,
          charCount: preview.charCount,
        },
        `document ${node.index}`,
      );
      assert.equal(stored.chunkCount, preview.chunks.length);
      assert.deepEqual(
        stored.chunks.edges.map((e) => e.node),
        preview.chunks,
        `document ${node.index}: the same chunks`,
      );
    }
    assert.equal(previews[1]!.title, 'Lantern page');
    assert.equal(previews[4]!.title, 'Report');
  });

  it('refuses what ingestion would refuse', async () => {
    assert.equal(codeOf(await t.execute(PREVIEW, { c: 'preview', d: { content: '   ' } })), 'BAD_USER_INPUT');
    assert.equal(codeOf(await t.execute(PREVIEW, { c: 'preview' })), 'BAD_USER_INPUT');
    assert.equal(codeOf(await t.execute(PREVIEW, { c: 'nope', d: { content: 'x y z' } })), 'NOT_FOUND');
    const empty = await t.app.services.uploads.accept(DEVELOPMENT_PRINCIPAL, Buffer.alloc(0), 'empty.md', null);
    const result = await t.execute(PREVIEW, { c: 'preview', u: empty.id });
    assert.equal(codeOf(result), 'BAD_USER_INPUT');
    assert.equal(result.errors?.[0]?.extensions?.['reason'], 'EMPTY_FILE');
  });
});
