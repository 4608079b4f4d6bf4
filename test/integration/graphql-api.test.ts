import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Embedder } from '../../src/ports/embedder.port';
import { HashEmbedder } from '../../src/adapters/embedders/hash.embedder';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createContext } from '../../src/app/context';
import { codeOf, createTestApp, dataOf, type TestApp } from '../helpers/test-app';

/** Wraps the default embedder and counts provider calls and texts. */
class CountingEmbedder implements Embedder {
  readonly inner = new HashEmbedder();
  readonly info = this.inner.info;
  readonly maxBatchSize = 64;
  calls = 0;
  texts = 0;
  embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.calls++;
    this.texts += texts.length;
    return this.inner.embed(texts);
  }
}

const CREATE = `mutation($input: CreateCollectionInput!) { createCollection(input: $input) { id name chunking { strategy chunkSize chunkOverlap } embedder { name dimensions } stats { documents chunks } } }`;
const INGEST = `mutation($c: String!, $docs: [DocumentInput!]!) { ingestDocuments(collection: $c, documents: $docs) {
  indexed unchanged failed results { index externalId status code reason chunkCount document { id title contentType metadata } } } }`;
const SEARCH = `query($c: String!, $q: String!, $mode: SearchMode!, $topK: Int, $filter: FilterInput, $offset: Int) {
  search(collection: $c, query: $q, mode: $mode, topK: $topK, filter: $filter, offset: $offset) {
    mode hits { score vectorScore keywordScore chunk { id text document { externalId } } document { externalId source metadata } } } }`;
const ASK = `query($c: String!, $q: String!) { ask(collection: $c, question: $q) {
  answer abstained abstentionReason unsupportedMarkers citations { marker sentence source { n document { externalId } chunk { text } } }
  sources { n score document { externalId } } } }`;

const DOCS = [
  {
    id: 'vacation',
    title: 'Vacation policy',
    source: 'https://intranet.example/hr/vacation',
    content:
      'Employees receive 25 days of paid vacation per calendar year. Unused vacation days can be carried over until March 31 of the following year. Requests go through the HR portal at least two weeks in advance.',
    metadata: { team: 'hr', year: 2024, tags: ['policy', 'leave'] },
  },
  {
    id: 'laptops',
    title: 'Laptop refresh',
    source: 'https://intranet.example/it/laptops',
    content:
      '# Laptop refresh\n\nEvery engineer gets a new laptop every three years.\n\n## Ordering\n\nOrder through the IT service desk; delivery takes about ten working days.',
    metadata: { team: 'it', year: 2023, tags: ['hardware'] },
  },
  {
    id: 'security',
    contentType: 'HTML',
    content:
      '<html><head><title>Security rules</title><style>.x{color:red}</style><script>alert("boom")</script></head><body><h1>Security rules</h1><p>Passwords must be at least 14 characters long and rotated only after a suspected compromise.</p><p>Report phishing to the security team within one hour.</p></body></html>',
    metadata: { team: 'security', year: 2025, tags: ['policy'] },
  },
];

describe('GraphQL API (real schema, in process)', () => {
  let t: TestApp;
  const embedder = new CountingEmbedder();

  before(async () => {
    t = await createTestApp({}, { embedder });
    dataOf(await t.execute(CREATE, { input: { name: 'handbook', description: 'Company handbook' } }));
  });
  after(() => t.close());

  it('creates collections with chunking settings and the embedder, and refuses duplicates and bad names', async () => {
    const created = dataOf<{
      createCollection: { name: string; chunking: { strategy: string; chunkSize: number }; embedder: { name: string; dimensions: number } };
    }>(await t.execute(CREATE, { input: { name: 'notes', chunking: { strategy: 'SENTENCE', chunkSize: 128, chunkOverlap: 16 } } }));
    assert.equal(created.createCollection.chunking.strategy, 'SENTENCE');
    assert.equal(created.createCollection.chunking.chunkSize, 128);
    assert.deepEqual(created.createCollection.embedder, { name: embedder.info.name, dimensions: embedder.info.dimensions });
    assert.equal(codeOf(await t.execute(CREATE, { input: { name: 'notes' } })), 'CONFLICT');
    assert.equal(codeOf(await t.execute(CREATE, { input: { name: '1 bad name!' } })), 'BAD_USER_INPUT');
    assert.equal(
      codeOf(await t.execute(CREATE, { input: { name: 'x', chunking: { chunkSize: 64, chunkOverlap: 60 } } })),
      'BAD_USER_INPUT',
    );
  });

  it('ingests text, Markdown and HTML with per-document results; one bad document fails alone', async () => {
    const callsBefore = embedder.calls;
    const result = dataOf<{
      ingestDocuments: {
        indexed: number;
        failed: number;
        results: {
          status: string;
          code: string | null;
          externalId: string;
          chunkCount: number;
          document: { title: string; contentType: string } | null;
        }[];
      };
    }>(
      await t.execute(INGEST, {
        c: 'handbook',
        docs: [...DOCS, { id: 'bad', content: '   ' }, { id: 'bad-meta', content: 'x', metadata: { 'no spaces': 1 } }],
      }),
    );
    const r = result.ingestDocuments;
    assert.equal(r.indexed, 3);
    assert.equal(r.failed, 2);
    assert.deepEqual(
      r.results.map((x) => x.status),
      ['INDEXED', 'INDEXED', 'INDEXED', 'FAILED', 'FAILED'],
    );
    assert.equal(r.results[3]!.code, 'BAD_USER_INPUT');
    assert.equal(r.results[2]!.document!.contentType, 'HTML');
    assert.equal(r.results[2]!.document!.title, 'Security rules');
    assert.equal(r.results[1]!.document!.contentType, 'MARKDOWN');
    assert.equal(embedder.calls - callsBefore, 1, 'all chunks of one request are embedded in one provider call');
  });

  it('drops HTML scripts and styles from indexed text', async () => {
    const data = dataOf<{ search: { hits: { chunk: { text: string } }[] } }>(
      await t.execute(SEARCH, { c: 'handbook', q: 'passwords characters', mode: 'KEYWORD', topK: 5 }),
    );
    const text = data.search.hits.map((h) => h.chunk.text).join('\n');
    assert.match(text, /Passwords must be at least 14 characters/);
    assert.doesNotMatch(text, /alert|color:red/);
  });

  it('re-ingesting the same content is UNCHANGED without re-embedding; new content replaces the chunks', async () => {
    const texts = embedder.texts;
    const again = dataOf<{ ingestDocuments: { unchanged: number; results: { status: string }[] } }>(
      await t.execute(INGEST, { c: 'handbook', docs: DOCS }),
    );
    assert.equal(again.ingestDocuments.unchanged, 3);
    assert.equal(embedder.texts, texts, 'nothing re-embedded');

    const changed = dataOf<{ ingestDocuments: { results: { status: string; chunkCount: number }[] } }>(
      await t.execute(INGEST, { c: 'handbook', docs: [{ ...DOCS[0], content: 'Employees receive 30 days of paid vacation per year.' }] }),
    );
    assert.equal(changed.ingestDocuments.results[0]!.status, 'INDEXED');
    const hits = dataOf<{ search: { hits: { chunk: { text: string }; document: { externalId: string } }[] } }>(
      await t.execute(SEARCH, { c: 'handbook', q: 'vacation days', mode: 'KEYWORD', topK: 10 }),
    );
    const vacationTexts = hits.search.hits.filter((h) => h.document.externalId === 'vacation').map((h) => h.chunk.text);
    assert.ok(vacationTexts.length >= 1);
    assert.ok(
      vacationTexts.every((x) => x.includes('30 days')),
      'old chunks are gone',
    );
    await t.execute(INGEST, { c: 'handbook', docs: [DOCS[0]] });
  });

  it('searches in every mode with per-mode scores', async () => {
    for (const mode of ['VECTOR', 'KEYWORD', 'HYBRID']) {
      const data = dataOf<{
        search: {
          mode: string;
          hits: { score: number; vectorScore: number | null; keywordScore: number | null; document: { externalId: string } }[];
        };
      }>(await t.execute(SEARCH, { c: 'handbook', q: 'how many paid vacation days per year', mode, topK: 3 }));
      assert.equal(data.search.mode, mode);
      assert.equal(data.search.hits[0]!.document.externalId, 'vacation', `${mode} ranks the vacation policy first`);
      const top = data.search.hits[0]!;
      if (mode !== 'KEYWORD') assert.equal(typeof top.vectorScore, 'number');
      if (mode !== 'VECTOR') assert.equal(typeof top.keywordScore, 'number');
      for (let i = 1; i < data.search.hits.length; i++) assert.ok(data.search.hits[i - 1]!.score >= data.search.hits[i]!.score);
    }
  });

  it('filters on metadata and built-ins', async () => {
    const run = async (filter: unknown) =>
      dataOf<{ search: { hits: { document: { externalId: string } }[] } }>(
        await t.execute(SEARCH, { c: 'handbook', q: 'policy rules laptop vacation', mode: 'HYBRID', topK: 20, filter }),
      ).search.hits.map((h) => h.document.externalId);
    assert.deepEqual(new Set(await run({ field: 'metadata.team', eq: 'it' })), new Set(['laptops']));
    assert.deepEqual(new Set(await run({ field: 'metadata.year', gte: 2024 })), new Set(['vacation', 'security']));
    assert.deepEqual(new Set(await run({ field: 'metadata.tags', contains: 'policy' })), new Set(['vacation', 'security']));
    assert.deepEqual(
      new Set(
        await run({
          or: [
            { field: 'documentId', in: ['nope'] },
            { field: 'source', contains: '/it/' },
          ],
        }),
      ),
      new Set(['laptops']),
    );
    assert.deepEqual(
      new Set(
        await run({
          and: [
            { field: 'metadata.team', ne: 'hr' },
            { field: 'metadata.year', lt: 2025 },
          ],
        }),
      ),
      new Set(['laptops']),
    );
    const bad = await t.execute(SEARCH, { c: 'handbook', q: 'x', mode: 'HYBRID', filter: { field: 'metadata.team', eq: 'a', ne: 'b' } });
    assert.equal(codeOf(bad), 'BAD_USER_INPUT');
  });

  it('validates topK and query, and reports unknown collections as NOT_FOUND', async () => {
    assert.equal(codeOf(await t.execute(SEARCH, { c: 'handbook', q: 'x', mode: 'HYBRID', topK: 0 })), 'BAD_USER_INPUT');
    assert.equal(codeOf(await t.execute(SEARCH, { c: 'handbook', q: 'x', mode: 'HYBRID', topK: 10_000 })), 'BAD_USER_INPUT');
    assert.equal(codeOf(await t.execute(SEARCH, { c: 'handbook', q: '   ', mode: 'HYBRID' })), 'BAD_USER_INPUT');
    assert.equal(codeOf(await t.execute(SEARCH, { c: 'nope', q: 'x', mode: 'HYBRID' })), 'NOT_FOUND');
  });

  it('answers with citations that map to returned sources, and abstains when nothing is relevant', async () => {
    const data = dataOf<{
      ask: {
        answer: string | null;
        abstained: boolean;
        citations: { marker: number; source: { n: number; document: { externalId: string } } }[];
        sources: { n: number }[];
      };
    }>(await t.execute(ASK, { c: 'handbook', q: 'How many days of paid vacation do employees get?' }));
    assert.equal(data.ask.abstained, false);
    assert.match(data.ask.answer!, /25 days/);
    const markers = [...data.ask.answer!.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1]));
    assert.ok(markers.length > 0, 'the answer cites its sources');
    const ns = new Set(data.ask.sources.map((s) => s.n));
    for (const m of markers) assert.ok(ns.has(m), `marker [${m}] maps to a returned source`);
    for (const c of data.ask.citations) assert.equal(c.marker, c.source.n);
    assert.equal(data.ask.citations.find((c) => c.marker === markers[0])!.source.document.externalId, 'vacation');

    const none = dataOf<{ ask: { answer: string | null; abstained: boolean; abstentionReason: string } }>(
      await t.execute(ASK, { c: 'handbook', q: 'What is the boiling point of liquid nitrogen on Jupiter?' }),
    );
    assert.equal(none.ask.abstained, true);
    assert.equal(none.ask.answer, null);
    assert.match(none.ask.abstentionReason, /not found/i);
  });

  it('lists, pages, reads, updates metadata and deletes documents', async () => {
    const list = `query($c: String!, $after: String) { documents(collection: $c, first: 2, after: $after) { totalCount edges { cursor node { id externalId chunkCount chunks(first: 50) { totalCount edges { node { index text document { externalId } } } } } } pageInfo { hasNextPage endCursor } } }`;
    type L = {
      documents: {
        totalCount: number;
        edges: {
          node: {
            id: string;
            externalId: string;
            chunkCount: number;
            chunks: { totalCount: number; edges: { node: { index: number; document: { externalId: string } } }[] };
          };
        }[];
        pageInfo: { hasNextPage: boolean; endCursor: string };
      };
    };
    const first = dataOf<L>(await t.execute(list, { c: 'handbook' }));
    assert.equal(first.documents.totalCount, 3);
    assert.equal(first.documents.edges.length, 2);
    assert.equal(first.documents.pageInfo.hasNextPage, true);
    const second = dataOf<L>(await t.execute(list, { c: 'handbook', after: first.documents.pageInfo.endCursor }));
    assert.equal(second.documents.edges.length, 1);
    assert.equal(second.documents.pageInfo.hasNextPage, false);
    const all = [...first.documents.edges, ...second.documents.edges].map((e) => e.node);
    assert.equal(new Set(all.map((d) => d.externalId)).size, 3);
    for (const d of all) {
      assert.equal(d.chunks.totalCount, d.chunkCount);
      assert.deepEqual(
        d.chunks.edges.map((e) => e.node.index),
        [...Array(d.chunkCount).keys()],
      );
      assert.ok(d.chunks.edges.every((e) => e.node.document.externalId === d.externalId));
    }

    const laptops = all.find((d) => d.externalId === 'laptops')!;
    const update = `mutation($id: ID!, $m: JSONObject!, $merge: Boolean) { updateDocumentMetadata(id: $id, metadata: $m, merge: $merge) { metadata chunkCount } }`;
    const merged = dataOf<{ updateDocumentMetadata: { metadata: Record<string, unknown>; chunkCount: number } }>(
      await t.execute(update, { id: laptops.id, m: { owner: 'it-ops', tags: null }, merge: true }),
    );
    assert.deepEqual(merged.updateDocumentMetadata.metadata, { team: 'it', year: 2023, owner: 'it-ops' });
    assert.equal(merged.updateDocumentMetadata.chunkCount, laptops.chunkCount);
    const filtered = dataOf<{ documents: { totalCount: number } }>(
      await t.execute(`query { documents(collection: "handbook", filter: { field: "metadata.owner", eq: "it-ops" }) { totalCount } }`),
    );
    assert.equal(filtered.documents.totalCount, 1);
    assert.equal(codeOf(await t.execute(update, { id: 'missing', m: {} })), 'NOT_FOUND');

    const del = dataOf<{ deleteDocuments: { deletedDocuments: number; deletedChunks: number } }>(
      await t.execute(`mutation($ids: [ID!]!) { deleteDocuments(ids: $ids) { deletedDocuments deletedChunks } }`, {
        ids: [laptops.id, 'unknown-id'],
      }),
    );
    assert.deepEqual(del.deleteDocuments, { deletedDocuments: 1, deletedChunks: laptops.chunkCount });
    const doc = dataOf<{ document: null }>(await t.execute(`query($id: ID!) { document(id: $id) { id } }`, { id: laptops.id }));
    assert.equal(doc.document, null);
  });

  it('reports live stats, renames, and deletes a collection with counts', async () => {
    const get = `query($name: String) { collection(name: $name) { id name stats { documents chunks vectorIndex { approximate indexedFraction } } } }`;
    const before = dataOf<{
      collection: {
        id: string;
        stats: { documents: number; chunks: number; vectorIndex: { approximate: boolean; indexedFraction: number } };
      };
    }>(await t.execute(get, { name: 'handbook' }));
    assert.equal(before.collection.stats.documents, 2);
    // A handful of chunks: searched by an exact scan (the graph starts at 5,000).
    assert.deepEqual(before.collection.stats.vectorIndex, { approximate: false, indexedFraction: 1 });
    const renamed = dataOf<{ updateCollection: { name: string } }>(
      await t.execute(`mutation($id: ID!) { updateCollection(id: $id, input: { name: "handbook2", description: "renamed" }) { name } }`, {
        id: before.collection.id,
      }),
    );
    assert.equal(renamed.updateCollection.name, 'handbook2');
    const deleted = dataOf<{ deleteCollection: { deletedDocuments: number; deletedChunks: number } }>(
      await t.execute(`mutation($id: ID!) { deleteCollection(id: $id) { deletedDocuments deletedChunks } }`, { id: before.collection.id }),
    );
    assert.deepEqual(deleted.deleteCollection, { deletedDocuments: 2, deletedChunks: before.collection.stats.chunks });
    assert.equal(dataOf<{ collection: null }>(await t.execute(get, { name: 'handbook2' })).collection, null);
    assert.equal(
      codeOf(await t.execute(`mutation($id: ID!) { deleteCollection(id: $id) { id } }`, { id: before.collection.id })),
      'NOT_FOUND',
    );
    const list = dataOf<{ collections: { totalCount: number; edges: { node: { name: string } }[] } }>(
      await t.execute(`{ collections(first: 10) { totalCount edges { node { name } } } }`),
    );
    assert.deepEqual(
      list.collections.edges.map((e) => e.node.name),
      ['notes'],
    );
  });
});

describe('embedder mismatch', () => {
  it('refuses to search a collection built with another embedder, with a clear CONFLICT', async () => {
    const first = await createTestApp({ KBQL_EMBEDDING_DIMENSIONS: '256' });
    dataOf(await first.execute(CREATE, { input: { name: 'kb' } }));
    dataOf(await first.execute(INGEST, { c: 'kb', docs: [{ id: 'a', content: 'Some text about apples.' }] }));
    await first.app.stop();
    const second = await createApp(loadConfig({ NODE_ENV: 'test', KBQL_LOG_LEVEL: 'silent', KBQL_DATA_DIR: first.dataDir }));
    try {
      const res = await second.apollo.executeOperation(
        { query: SEARCH, variables: { c: 'kb', q: 'apples', mode: 'VECTOR' } },
        { contextValue: createContext(second.store, 'r') },
      );
      assert.ok(res.body.kind === 'single');
      const error = res.body.singleResult.errors?.[0];
      assert.equal(error?.extensions?.code, 'CONFLICT');
      assert.equal(error?.extensions?.reason, 'EMBEDDER_MISMATCH');
      assert.match(error.message, /256 dims/);
    } finally {
      await second.stop();
      await first.close();
    }
  });
});
