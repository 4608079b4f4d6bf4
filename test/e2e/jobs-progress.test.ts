import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { corruptDocx, corruptPdf, minimalDocx, minimalPdf, pngBytes, sampleDocument, upload } from '../helpers/jobs-fixtures';
import { collectProgress, stagesByDocument } from '../helpers/jobs-ws';
import { gql, JWT_ENV, tokenFor } from '../helpers/security';

/**
 * Acceptance, over real HTTP and WebSocket with JWT auth: a 200-document job (192 inline documents, 3 good files and
 * 5 broken ones uploaded through POST /v1/uploads) followed with ingestionProgress; then two broken files fixed and
 * the job retried.
 */
describe('ingestion jobs over HTTP and WebSocket', () => {
  let app: App;
  let url: string;
  let dataDir: string;
  let writer: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'kbql-jobs-e2e-'));
    const config = loadConfig({
      NODE_ENV: 'test',
      KBQL_LOG_LEVEL: 'silent',
      KBQL_DATA_DIR: dataDir,
      KBQL_MAX_UPLOAD_BYTES: '65536',
      KBQL_INGEST_CONCURRENCY: '2',
      ...JWT_ENV,
    });
    app = await createApp(config);
    url = await app.listen(0, '127.0.0.1');
    writer = await tokenFor('WRITER', 'acme');
    const created = await gql(
      url,
      { query: `mutation { createCollection(input: { name: "files", chunking: { chunkSize: 64, chunkOverlap: 8 } }) { id } }` },
      writer,
    );
    assert.equal(created.json.errors, undefined);
  });
  after(async () => {
    await app.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses uploads that are too large or unauthenticated, like /graphql', async () => {
    const big = await upload(url, 'big.txt', Buffer.alloc(65537, 0x61), { token: writer });
    assert.equal(big.status, 413);
    assert.equal((big.body['errors'] as { extensions: { code: string } }[])[0]!.extensions.code, 'PAYLOAD_TOO_LARGE');
    const anonymous = await upload(url, 'a.txt', Buffer.from('hello'));
    assert.equal(anonymous.status, 401);
    const reader = await upload(url, 'a.txt', Buffer.from('hello'), { token: await tokenFor('READER', 'acme') });
    assert.equal(reader.status, 403);
    const unnamed = await fetch(`${url}/v1/uploads`, { method: 'POST', headers: { authorization: `Bearer ${writer}` }, body: 'x' });
    assert.equal(unnamed.status, 400);
  });

  it(
    'streams every stage and a 195 INDEXED / 5 FAILED summary; a retry of two fixed files indexes 2 more',
    { timeout: 60_000 },
    async () => {
      const files: [string, Buffer, string][] = [
        [
          'harbor.pdf',
          minimalPdf(['Quartz harbors glow at dusk.', 'Copper lanterns line the pier.'], { title: 'Harbor' }),
          'application/pdf',
        ],
        [
          'willow.docx',
          minimalDocx(['Willow branches bend over the canyon.', 'Falcons nest in the mosaic cliffs.']),
          'application/octet-stream',
        ],
        [
          'tundra.md',
          Buffer.from('# Tundra\n\nGlaciers carve the tundra slowly.\n\n## Beacon\n\nA beacon burns on the ridge.'),
          'text/markdown',
        ],
        ['broken.pdf', corruptPdf(), 'application/pdf'],
        ['locked.pdf', minimalPdf(['Top secret orbit plans.'], { encrypt: true }), 'application/pdf'],
        ['empty.txt', Buffer.alloc(0), 'text/plain'],
        ['picture.md', pngBytes(), 'text/markdown'],
        ['broken.docx', corruptDocx(), 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
      ];
      const uploadIds: string[] = [];
      for (const [name, data, type] of files) {
        const result = await upload(url, name, data, { token: writer, mediaType: type });
        assert.equal(result.status, 201, JSON.stringify(result.body));
        assert.equal(result.body['filename'], name);
        uploadIds.push(String(result.body['id']));
      }
      const documents = Array.from({ length: 192 }, (_, i) => sampleDocument(i));
      const started = await gql(
        url,
        {
          query: `mutation($d: [DocumentInput!], $u: [ID!]) { startIngestion(collection: "files", documents: $d, uploads: $u) { id total } }`,
          variables: { d: documents, u: uploadIds },
        },
        writer,
      );
      assert.equal(started.json.errors, undefined, JSON.stringify(started.json.errors));
      const jobId = started.json.data!['startIngestion'].id as string;
      assert.equal(started.json.data!['startIngestion'].total, 200);

      const events = await collectProgress(url, jobId, writer);
      const summary = events.at(-1)!;
      assert.equal(summary.kind, 'SUMMARY');
      assert.equal(events.filter((e) => e.kind === 'SUMMARY').length, 1);
      assert.deepEqual(
        { status: summary.job!.status, total: summary.job!.total, indexed: summary.job!.indexed, failed: summary.job!.failed },
        { status: 'COMPLETED_WITH_ERRORS', total: 200, indexed: 195, failed: 5 },
      );
      const byDoc = stagesByDocument(events); // throws on out-of-order stages
      assert.equal(byDoc.size, 200, 'every document reported');
      // Progress is coalesced (a document's stages within one 250 ms window arrive as its latest): some are still seen live.
      const live = [...byDoc.values()].filter((s) => s.length > 1 && s.at(-1) === 'INDEXED');
      assert.ok(live.length > 0, 'at least one document was seen in a stage before INDEXED');
      const failures = new Map(
        events
          .filter((e) => e.kind === 'STAGE' && e.document!.stage === 'FAILED')
          .map((e) => [
            e.document!.filename,
            { reasonCode: e.document!.reasonCode, transient: e.document!.transient, hasReason: Boolean(e.document!.reason) },
          ]),
      );
      assert.deepEqual(Object.fromEntries(failures), {
        'broken.pdf': { reasonCode: 'CORRUPT_FILE', transient: false, hasReason: true },
        'locked.pdf': { reasonCode: 'ENCRYPTED_FILE', transient: false, hasReason: true },
        'empty.txt': { reasonCode: 'EMPTY_FILE', transient: false, hasReason: true },
        'picture.md': { reasonCode: 'UNSUPPORTED_TYPE', transient: false, hasReason: true },
        'broken.docx': { reasonCode: 'CORRUPT_FILE', transient: false, hasReason: true },
      });

      // The good files are searchable by their content.
      const search = await gql(
        url,
        {
          query: `{ search(collection: "files", query: "falcons mosaic cliffs", mode: KEYWORD, topK: 3) { hits { document { externalId } } } }`,
        },
        writer,
      );
      assert.equal(search.json.data!['search'].hits[0].document.externalId, 'willow.docx');

      // Fix two files (same names), retry: only the failed documents run again.
      const fixedPdf = await upload(url, 'broken.pdf', minimalPdf(['The repaired report mentions thistle and saffron.']), {
        token: writer,
      });
      const fixedTxt = await upload(url, 'empty.txt', Buffer.from('No longer empty: umber and cobalt.'), { token: writer });
      const retried = await gql(
        url,
        {
          query: `mutation($id: ID!, $u: [ID!]) { retryIngestion(jobId: $id, replace: { uploads: $u }) { id status } }`,
          variables: { id: jobId, u: [fixedPdf.body['id'], fixedTxt.body['id']] },
        },
        writer,
      );
      assert.equal(retried.json.errors, undefined, JSON.stringify(retried.json.errors));
      const again = await collectProgress(url, jobId, writer);
      const second = again.at(-1)!;
      assert.equal(second.kind, 'SUMMARY');
      assert.deepEqual({ indexed: second.job!.indexed, failed: second.job!.failed }, { indexed: 197, failed: 3 });
      const retriedDocs = new Set(again.filter((e) => e.kind === 'STAGE' && e.document!.attempt === 2).map((e) => e.document!.filename));
      assert.deepEqual([...retriedDocs].sort(), ['broken.docx', 'broken.pdf', 'empty.txt', 'locked.pdf', 'picture.md']);
      const stats = await gql(url, { query: `{ collection(name: "files") { stats { documents } } }` }, writer);
      assert.equal(stats.json.data!['collection'].stats.documents, 197);

      // Another tenant cannot follow the job.
      const stranger = await tokenFor('ADMIN', 'globex');
      await assert.rejects(collectProgress(url, jobId, stranger), /NOT_FOUND|not found/);
    },
  );
});
