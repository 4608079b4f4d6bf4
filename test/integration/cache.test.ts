import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { HashEmbedder } from '../../src/adapters/embedders/hash.embedder';
import { ExtractiveSynthesizer } from '../../src/adapters/synthesizers/extractive.synthesizer';
import { createContext } from '../../src/app/context';
import { DEVELOPMENT_PRINCIPAL } from '../../src/modules/auth/principal';
import { METRICS } from '../../src/observability/metrics';
import type { AnswerSynthesizer, Synthesis, SynthesisRequest } from '../../src/ports/answer-synthesizer.port';
import type { Embedder } from '../../src/ports/embedder.port';
import type { Filter, KnowledgeStore } from '../../src/ports/knowledge-store.port';
import { codeOf, createTestApp, dataOf, type TestApp } from '../helpers/test-app';

class CountingEmbedder implements Embedder {
  readonly inner = new HashEmbedder();
  readonly info = this.inner.info;
  readonly maxBatchSize = 2048;
  calls = 0;
  embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.calls++;
    return this.inner.embed(texts);
  }
}

class CountingSynthesizer implements AnswerSynthesizer {
  readonly inner = new ExtractiveSynthesizer();
  readonly name = this.inner.name;
  calls = 0;
  synthesize(request: SynthesisRequest, signal?: AbortSignal): Promise<Synthesis> {
    this.calls++;
    return this.inner.synthesize(request, signal);
  }
}

const INGEST = `mutation($c: String!, $docs: [DocumentInput!]!) { ingestDocuments(collection: $c, documents: $docs) {
  indexed unchanged failed results { status document { id } } } }`;
const SEARCH = `query($c: String!, $q: String!) { search(collection: $c, query: $q, topK: 5) {
  collection { name version } hits { score chunk { text } document { externalId title metadata updatedAt } } } }`;
const ASK = `query($c: String!, $q: String!) { ask(collection: $c, question: $q) {
  answer abstained sources { n document { externalId metadata } chunk { text } } citations { marker source { n document { externalId } } } } }`;

interface SearchData {
  search: {
    collection: { name: string; version: number };
    hits: { chunk: { text: string }; document: { externalId: string; title: string; metadata: Record<string, unknown> } }[];
  };
}
interface AskData {
  ask: {
    answer: string | null;
    abstained: boolean;
    sources: { document: { externalId: string; metadata: Record<string, unknown> }; chunk: { text: string } }[];
  };
}

const DOCS = [
  {
    id: 'vacation',
    title: 'Vacation policy',
    content: 'Employees receive 25 days of paid vacation per calendar year. Unused vacation days can be carried over until March 31.',
    metadata: { team: 'hr', visibility: 'public' },
  },
  {
    id: 'laptops',
    title: 'Laptop refresh',
    content: 'Every engineer gets a new laptop every three years. Order laptops through the IT service desk.',
    metadata: { team: 'it', visibility: 'public' },
  },
  {
    id: 'parking',
    title: 'Staff parking',
    content: 'Staff parking is in garage B, level minus two. The parking garage code changes every month.',
    metadata: { team: 'facilities', visibility: 'staff' },
  },
];

/** `public` callers see documents with visibility "public"; any other scope sees everything. */
const accessFilter = (scope: string): Filter | undefined =>
  scope === 'public' ? { kind: 'condition', field: { type: 'metadata', key: 'visibility' }, op: 'eq', value: 'public' } : undefined;

describe('result cache (real schema, in process, in-memory cache)', () => {
  let t: TestApp;
  const embedder = new CountingEmbedder();
  const synthesizer = new CountingSynthesizer();
  let request = 0;

  const run = async <T>(query: string, variables: Record<string, unknown>, scope?: string) => {
    const response = await t.app.apollo.executeOperation(
      { query, variables },
      { contextValue: createContext(t.app.store, `r${++request}`, { scope }) },
    );
    if (response.body.kind !== 'single') throw new Error('expected a single result');
    return response.body.singleResult as { data?: T | null; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] };
  };
  const search = async (c: string, q: string, scope?: string) => dataOf<SearchData>(await run<SearchData>(SEARCH, { c, q }, scope)).search;
  const ask = async (c: string, q: string, scope?: string) => dataOf<AskData>(await run<AskData>(ASK, { c, q }, scope)).ask;
  const ingest = async (c: string, docs: unknown[]) =>
    dataOf<{
      ingestDocuments: { indexed: number; unchanged: number; failed: number; results: { status: string; document: { id: string } }[] };
    }>(await t.execute(INGEST, { c, docs })).ingestDocuments;
  /** Hits so far of either layer: the result cache, or the response cache in front of execution (from their metrics). */
  const resultHits = async () => {
    const metric = await t.app.metrics.registry.getSingleMetric(METRICS.cacheRequests)!.get();
    return metric.values
      .filter((v) => (v.labels.cache === 'result' || v.labels.cache === 'response') && v.labels.result === 'hit')
      .reduce((sum, v) => sum + v.value, 0);
  };
  /** Runs `read` twice; asserts the second was a cache hit. Returns the first result. */
  const cachedTwice = async <T>(read: () => Promise<T>): Promise<T> => {
    const first = await read();
    const hits = await resultHits();
    const second = await read();
    assert.equal(await resultHits(), hits + 1, 'the repeated request is a cache hit');
    assert.deepEqual(second, first);
    return first;
  };
  /** Runs `read` once and asserts it was not served from the cache. */
  const fresh = async <T>(read: () => Promise<T>): Promise<T> => {
    const hits = await resultHits();
    const value = await read();
    assert.equal(await resultHits(), hits, 'computed, not served from the cache');
    return value;
  };

  before(async () => {
    t = await createTestApp({}, { embedder, synthesizer, accessFilter });
    dataOf(await t.execute(`mutation { createCollection(input: { name: "kb" }) { id } }`));
    assert.equal((await ingest('kb', DOCS)).indexed, 3);
  });
  after(() => t.close());

  it('answers a repeated ask from the cache: no provider call, no synthesis, the same answer', async () => {
    const question = 'How many vacation days do employees get?';
    const first = await ask('kb', question, 'staff');
    assert.match(first.answer ?? '', /25 days/);
    const calls = { embed: embedder.calls, synth: synthesizer.calls };
    const hits = await resultHits();
    const again = await ask('kb', `  ${question} `, 'staff'); // same question once trimmed
    assert.deepEqual(again, first);
    assert.equal(await resultHits(), hits + 1);
    assert.deepEqual({ embed: embedder.calls, synth: synthesizer.calls }, calls);
  });

  it('is invalidated by ingesting a new document', async () => {
    const before = await cachedTwice(() => search('kb', 'sabbatical leave after five years', 'staff'));
    assert.ok(!before.hits.some((h) => h.document.externalId === 'sabbatical'));
    await ingest('kb', [
      {
        id: 'sabbatical',
        title: 'Sabbatical',
        content: 'After five years employees may take a sabbatical leave of three months.',
        metadata: { visibility: 'public' },
      },
    ]);
    const after = await fresh(() => search('kb', 'sabbatical leave after five years', 'staff'));
    assert.equal(after.hits[0]!.document.externalId, 'sabbatical');
    assert.ok(after.collection.version > before.collection.version);
  });

  it('is invalidated by re-ingesting a changed document', async () => {
    const question = 'How many days of paid vacation per calendar year?';
    const before = await cachedTwice(() => ask('kb', question, 'staff'));
    assert.match(before.answer ?? '', /25 days/);
    const synth = synthesizer.calls;
    const result = await ingest('kb', [{ ...DOCS[0], content: DOCS[0]!.content.replace('25 days', '30 days') }]);
    assert.equal(result.indexed, 1);
    const after = await fresh(() => ask('kb', question, 'staff'));
    assert.match(after.answer ?? '', /30 days/);
    assert.doesNotMatch(after.answer ?? '', /25 days/);
    assert.equal(synthesizer.calls, synth + 1);
  });

  it('is invalidated by re-ingesting unchanged content with new metadata', async () => {
    const before = await cachedTwice(() => search('kb', 'new laptop every three years', 'staff'));
    assert.equal(before.hits[0]!.document.metadata.team, 'it');
    const result = await ingest('kb', [{ ...DOCS[1], metadata: { team: 'it-ops', visibility: 'public' } }]);
    assert.equal(result.unchanged, 1);
    const after = await fresh(() => search('kb', 'new laptop every three years', 'staff'));
    assert.equal(after.hits[0]!.document.metadata.team, 'it-ops');
  });

  it('is invalidated by updateDocumentMetadata', async () => {
    const before = await cachedTwice(() => search('kb', 'garage code', 'staff'));
    const parking = before.hits.find((h) => h.document.externalId === 'parking');
    assert.ok(parking);
    const id = (await ingest('kb', [DOCS[2]])).results[0]!.document.id;
    dataOf(await t.execute(`mutation($id: ID!) { updateDocumentMetadata(id: $id, metadata: { floor: -2 }, merge: true) { id } }`, { id }));
    const after = await fresh(() => search('kb', 'garage code', 'staff'));
    assert.equal(after.hits.find((h) => h.document.externalId === 'parking')!.document.metadata.floor, -2);
  });

  it('is invalidated by deleteDocuments: a deleted document is never served', async () => {
    await ingest('kb', [
      { id: 'temp', title: 'Temporary', content: 'The cafeteria serves breakfast from seven to nine.', metadata: { visibility: 'public' } },
    ]);
    const question = 'When does the cafeteria serve breakfast?';
    const before = await cachedTwice(() => ask('kb', question, 'staff'));
    assert.equal(before.sources[0]!.document.externalId, 'temp');
    const beforeSearch = await cachedTwice(() => search('kb', 'cafeteria breakfast', 'staff'));
    assert.equal(beforeSearch.hits[0]!.document.externalId, 'temp');
    const id = (
      await ingest('kb', [
        {
          id: 'temp',
          title: 'Temporary',
          content: 'The cafeteria serves breakfast from seven to nine.',
          metadata: { visibility: 'public' },
        },
      ])
    ).results[0]!.document.id;
    dataOf(await t.execute(`mutation($ids: [ID!]!) { deleteDocuments(ids: $ids) { deletedDocuments } }`, { ids: [id] }));
    const after = await fresh(() => ask('kb', question, 'staff'));
    assert.ok(after.sources.every((s) => s.document.externalId !== 'temp'));
    const afterSearch = await fresh(() => search('kb', 'cafeteria breakfast', 'staff'));
    assert.ok(afterSearch.hits.every((h) => h.document.externalId !== 'temp'));
  });

  it('is invalidated by renaming or re-describing the collection, and by deleting it', async () => {
    const created = dataOf<{ createCollection: { id: string } }>(
      await t.execute(`mutation { createCollection(input: { name: "rename-me" }) { id } }`),
    );
    const id = created.createCollection.id;
    await ingest('rename-me', [DOCS[0]]);
    const before = await cachedTwice(() => search('rename-me', 'vacation days', 'staff'));
    assert.equal(before.collection.name, 'rename-me');

    dataOf(await t.execute(`mutation($id: ID!) { updateCollection(id: $id, input: { description: "HR only" }) { id } }`, { id }));
    const redescribed = await fresh(() => search('rename-me', 'vacation days', 'staff'));
    assert.ok(redescribed.collection.version > before.collection.version);

    dataOf(await t.execute(`mutation($id: ID!) { updateCollection(id: $id, input: { name: "renamed" }) { id } }`, { id }));
    assert.equal(codeOf(await run(SEARCH, { c: 'rename-me', q: 'vacation days' }, 'staff')), 'NOT_FOUND');
    const renamed = await fresh(() => search('renamed', 'vacation days', 'staff'));
    assert.equal(renamed.collection.name, 'renamed');
    await cachedTwice(() => ask('renamed', 'How many vacation days?', 'staff'));

    dataOf(await t.execute(`mutation($id: ID!) { deleteCollection(id: $id) { id } }`, { id }));
    assert.equal(codeOf(await run(SEARCH, { c: 'renamed', q: 'vacation days' }, 'staff')), 'NOT_FOUND');
    assert.equal(codeOf(await run(ASK, { c: 'renamed', q: 'How many vacation days?' }, 'staff')), 'NOT_FOUND');

    // A new collection under the old name starts empty: nothing of the deleted one is served.
    dataOf(await t.execute(`mutation { createCollection(input: { name: "renamed" }) { id } }`));
    const empty = await fresh(() => search('renamed', 'vacation days', 'staff'));
    assert.deepEqual(empty.hits, []);
  });

  it('never shares results between scopes (two callers with different access)', async () => {
    const question = 'Where is the staff parking garage?';
    const staff = await ask('kb', question, 'staff');
    assert.ok(
      staff.sources.some((s) => s.document.externalId === 'parking'),
      'staff sees the parking page',
    );
    const pub = await fresh(() => ask('kb', question, 'public'));
    assert.ok(pub.sources.length > 0);
    assert.ok(
      pub.sources.every((s) => s.document.metadata.visibility === 'public'),
      'public sees public documents only',
    );
    assert.doesNotMatch(pub.answer ?? '', /garage B/);
    // Each scope now has its own entry: repeated calls hit, and still differ.
    assert.deepEqual(await cachedTwice(() => ask('kb', question, 'public')), pub);
    assert.deepEqual(await cachedTwice(() => ask('kb', question, 'staff')), staff);

    // The other order: the public caller first, then staff must not get the public (narrower) result.
    const publicFirst = await search('kb', 'garage B level minus two', 'public');
    assert.ok(publicFirst.hits.every((h) => h.document.externalId !== 'parking'));
    const staffAfter = await fresh(() => search('kb', 'garage B level minus two', 'staff'));
    assert.equal(staffAfter.hits[0]!.document.externalId, 'parking');
    // Without a scope in the context the caller is public.
    assert.deepEqual((await search('kb', 'garage B level minus two')).hits, publicFirst.hits);
  });
});

describe('per-request loaders', () => {
  let t: TestApp;
  let dir: string;
  let getDocumentsCalls = 0;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-loaders-'));
    const inner = new EmbeddedKnowledgeStore({ dataDir: dir });
    // Counts batched document reads (what the document loader turns N field resolutions into).
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'getDocuments') {
          return (ids: string[]) => {
            getDocumentsCalls++;
            return target.getDocuments(ids);
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as KnowledgeStore;
    t = await createTestApp({}, { store });
    dataOf(await t.execute(`mutation { createCollection(input: { name: "kb" }) { id } }`));
    dataOf(await t.execute(INGEST, { c: 'kb', docs: DOCS }));
  });
  after(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('are built per request and batch the document reads of one request', async () => {
    const a = createContext(t.app.store, 'a');
    const b = createContext(t.app.store, 'b');
    assert.notEqual(a.loaders.document, b.loaders.document);
    assert.notEqual(a.loaders.chunk, b.loaders.chunk);
    assert.notEqual(a.loaders.collection, b.loaders.collection);
    assert.equal(a.scope, 'public');

    getDocumentsCalls = 0;
    const found = dataOf<{ search: { hits: { chunk: { document: { externalId: string } } }[] } }>(
      await t.execute(
        `{ search(collection: "kb", query: "vacation laptop parking", mode: KEYWORD, topK: 10) { hits { chunk { document { externalId } } } } }`,
      ),
    );
    assert.ok(found.search.hits.length >= 3);
    assert.equal(getDocumentsCalls, 1, 'all Chunk.document fields of the request in one store read');

    const firstDoc = (await t.app.services.documents.list('kb', null, { first: 1 }, DEVELOPMENT_PRINCIPAL)).edges[0]!.node;
    const chunk = (await t.app.store.listChunks(firstDoc.id, { offset: 0, limit: 1 })).items[0]!;
    assert.equal((await a.loaders.chunk.load(chunk.id))?.text, chunk.text);
    assert.equal(await a.loaders.chunk.load('no-such-chunk'), null);
  });

  it('never carry what one request loaded into the next', async () => {
    const query = `query($id: ID!) { document(id: $id) { externalId } }`;
    const docs = await t.app.services.documents.list('kb', null, { first: 10 }, DEVELOPMENT_PRINCIPAL);
    const target = docs.edges.find((e) => e.node.externalId === 'parking')!.node;
    const first = await t.app.apollo.executeOperation(
      { query, variables: { id: target.id } },
      { contextValue: createContext(t.app.store, 'one', { scope: 'staff' }) },
    );
    assert.equal(
      first.body.kind === 'single' && (first.body.singleResult.data as { document: { externalId: string } }).document.externalId,
      'parking',
    );
    dataOf(await t.execute(`mutation($ids: [ID!]!) { deleteDocuments(ids: $ids) { deletedDocuments } }`, { ids: [target.id] }));
    const second = await t.app.apollo.executeOperation(
      { query, variables: { id: target.id } },
      { contextValue: createContext(t.app.store, 'two', { scope: 'staff' }) },
    );
    assert.equal(second.body.kind === 'single' && (second.body.singleResult.data as { document: null }).document, null);
  });
});
