import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { FilterValue } from 'weaviate-client';
import type { HybridOptions, NearVectorOptions, Bm25Options, WriteObject } from '../../src/adapters/weaviate/weaviate.client';
import {
  compareUtf8,
  decodeFilterText,
  encodeFilterText,
  flattenMetadata,
  matchesDocument,
  translateFilter,
  type TranslatedFilter,
} from '../../src/adapters/weaviate/weaviate.filters';
import {
  parseHybridExplain,
  queryTerms,
  WeaviateKnowledgeStore,
  weaviateTenantFor,
  type WeaviateStoreOptions,
} from '../../src/adapters/weaviate/weaviate.knowledge-store';
import { clientErrors, grpcRetryOptions } from '../../src/adapters/weaviate/weaviate.client-internals';
import { isTransientError, Resilience } from '../../src/adapters/weaviate/weaviate.resilience';
import { isAppError, type ErrorCode } from '../../src/errors';
import { chunkId, documentId, sha256Hex } from '../../src/ids';
import type { CollectionRecord, DocumentRecord, DocumentWrite, Filter, FilterScalar } from '../../src/ports/knowledge-store.port';
import { defineKnowledgeStoreContractSuite } from '../contract/knowledge-store.contract';
import { FakeWeaviate, grpcError, restError } from '../helpers/fake-weaviate';

const DIM = 4;
const URL = 'http://weaviate.test:8080';

function withCode(code: ErrorCode, message?: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(isAppError(error), `expected AppError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return true;
  };
}

async function open(options: Partial<WeaviateStoreOptions> = {}, fake = new FakeWeaviate()) {
  const store = new WeaviateKnowledgeStore(
    { url: URL, timeoutMs: 500, insertTimeoutMs: 500, initTimeoutMs: 500, retries: 0, breakerThreshold: 100, ...options },
    { connect: fake.connect },
  );
  return { store, fake };
}

async function collection(store: WeaviateKnowledgeStore, name = `c_${randomUUID().slice(0, 8)}`): Promise<CollectionRecord> {
  return store.createCollection({
    name,
    description: null,
    chunking: { strategy: 'SENTENCE', chunkSize: 100, chunkOverlap: 10 },
    embedder: { name: 'test', dimensions: DIM },
  });
}

function doc(externalId: string, texts: string[], extra: Partial<DocumentWrite> = {}): DocumentWrite {
  const chunks = texts.map((text, index) => {
    const v = new Float32Array(DIM);
    v[index % DIM] = 1;
    v[(index + 1) % DIM] = 0.5;
    return { index, text, startOffset: index * 10, endOffset: index * 10 + text.length, vector: v };
  });
  return {
    externalId,
    title: null,
    source: null,
    contentType: 'TEXT',
    metadata: {},
    contentHash: sha256Hex(texts.join('\n')),
    charCount: texts.join('\n').length,
    chunks,
    ...extra,
  };
}

const axis = (i: number): Float32Array => {
  const v = new Float32Array(DIM);
  v[i] = 1;
  return v;
};

const lastArgs = <T>(fake: FakeWeaviate, method: string): T => {
  const call = [...fake.calls].reverse().find((c) => c.method === method);
  assert.ok(call, `a ${method} call was made`);
  return call.args as T;
};

// ------------------------------------------------------------------ pure: encoding and filters

describe('weaviate filter encoding', () => {
  it('round-trips any string, keeps byte order and makes substrings aligned and wildcard-free', () => {
    const samples = ['', ' en ', 'hello world', 'Hello there', 'a*b?c', 'line\nbreak', 'é', 'ß', '日本', '😀', 'Z', 'ZZ', '\u0000'];
    for (const s of samples) {
      const e = encodeFilterText(s);
      assert.equal(decodeFilterText(e), s);
      assert.match(e, /^Z([A-P][a-p])*$/, 'letters only: no whitespace, no * ? or line break');
    }
    for (const a of samples) {
      for (const b of samples) {
        assert.equal(Math.sign(compareUtf8(encodeFilterText(a), encodeFilterText(b))), Math.sign(compareUtf8(a, b)), `${a} vs ${b}`);
        // The Like pattern is *<body>*: a match can only start at a byte boundary.
        const body = encodeFilterText(b).slice(1);
        assert.equal(encodeFilterText(a).slice(1).includes(body), Buffer.from(a).includes(Buffer.from(b)), `${a} ⊇ ${b}`);
      }
    }
    assert.throws(() => decodeFilterText('not encoded'));
  });

  it('flattens metadata into typed properties, splitting mixed arrays and skipping null and objects', () => {
    assert.deepEqual(
      flattenMetadata({
        lang: 'en',
        year: 2020,
        draft: false,
        tags: ['a', 'b'],
        mixed: [1, 'x', true, null, [2]],
        none: null,
        nested: { x: 1 },
        empty: [],
      }),
      {
        meta_lang_s: encodeFilterText('en'),
        meta_year_n: 2020,
        meta_draft_b: false,
        meta_tags_sa: [encodeFilterText('a'), encodeFilterText('b')],
        meta_mixed_sa: [encodeFilterText('x')],
        meta_mixed_na: [1],
        meta_mixed_ba: [true],
      },
    );
    // Weaviate property names are unique regardless of case: keys differing in case or underscores stay apart.
    const names = Object.keys(flattenMetadata({ Lang: 'x', lang: 'y', a_b: 1, aB: 2, A_s: 3, a_s: [4] }));
    assert.deepEqual(names, ['meta__lang_s', 'meta_lang_s', 'meta_a__b_n', 'meta_a_b_n', 'meta__a__s_n', 'meta_a__s_na']);
    assert.equal(new Set(names.map((n) => n.toLowerCase())).size, names.length);
  });
});

describe('translateFilter', () => {
  const every = (): boolean => true;
  const only =
    (...names: string[]) =>
    (p: string): boolean =>
      names.includes(p);
  const m = (key: string) => ({ type: 'metadata' as const, key });
  const cond = (
    field: Extract<Filter, { kind: 'condition' }>['field'],
    op: Extract<Filter, { kind: 'condition' }>['op'],
    value: FilterScalar | FilterScalar[],
  ): Filter => ({
    kind: 'condition',
    field,
    op,
    value,
  });
  const leaf = (operator: FilterValue['operator'], property: string, value: unknown): TranslatedFilter => ({
    kind: 'filter',
    filter: { operator, target: { property }, value },
  });
  const E = encodeFilterText;

  it('eq / ne / range pick the property of the value type', () => {
    assert.deepEqual(translateFilter(cond(m('lang'), 'eq', 'en'), every), leaf('Equal', 'meta_lang_s', E('en')));
    assert.deepEqual(translateFilter(cond(m('year'), 'eq', 2021), every), leaf('Equal', 'meta_year_n', 2021));
    assert.deepEqual(translateFilter(cond(m('draft'), 'eq', false), every), leaf('Equal', 'meta_draft_b', false));
    assert.deepEqual(translateFilter(cond(m('lang'), 'ne', 'en'), every), leaf('NotEqual', 'meta_lang_s', E('en')));
    assert.deepEqual(translateFilter(cond(m('year'), 'gt', 2020), every), leaf('GreaterThan', 'meta_year_n', 2020));
    assert.deepEqual(translateFilter(cond(m('year'), 'gte', 2020.5), every), leaf('GreaterThanEqual', 'meta_year_n', 2020.5));
    assert.deepEqual(translateFilter(cond(m('note'), 'lt', 'hello'), every), leaf('LessThan', 'meta_note_s', E('hello')));
    assert.deepEqual(translateFilter(cond(m('note'), 'lte', 'b'), every), leaf('LessThanEqual', 'meta_note_s', E('b')));
  });

  it('in → ContainsAny per value type (ints and floats apart: the client serialises homogeneous arrays only)', () => {
    assert.deepEqual(translateFilter(cond(m('year'), 'in', [2019.5, 2021, '2022', true, 2021]), every), {
      kind: 'filter',
      filter: {
        operator: 'Or',
        value: null,
        filters: [
          { operator: 'ContainsAny', target: { property: 'meta_year_s' }, value: [E('2022')] },
          { operator: 'ContainsAny', target: { property: 'meta_year_n' }, value: [2021] },
          { operator: 'ContainsAny', target: { property: 'meta_year_n' }, value: [2019.5] },
          { operator: 'ContainsAny', target: { property: 'meta_year_b' }, value: [true] },
        ],
      },
    });
    assert.deepEqual(translateFilter(cond(m('lang'), 'in', ['fr', 'de']), every), leaf('ContainsAny', 'meta_lang_s', [E('fr'), E('de')]));
  });

  it('contains: array elements by ContainsAny, strings by Like over the encoding (wildcards and line breaks are data)', () => {
    assert.deepEqual(translateFilter(cond(m('tags'), 'contains', 'a*b?\n'), every), {
      kind: 'filter',
      filter: {
        operator: 'Or',
        value: null,
        filters: [
          { operator: 'ContainsAny', target: { property: 'meta_tags_sa' }, value: [E('a*b?\n')] },
          { operator: 'Like', target: { property: 'meta_tags_s' }, value: `*${E('a*b?\n').slice(1)}*` },
        ],
      },
    });
    assert.doesNotMatch(`${E('a*b?\n').slice(1)}`, /[*?\n]/);
    assert.deepEqual(translateFilter(cond(m('tags'), 'contains', 1), every), leaf('ContainsAny', 'meta_tags_na', [1]));
    assert.deepEqual(translateFilter(cond(m('tags'), 'contains', true), every), leaf('ContainsAny', 'meta_tags_ba', [true]));
  });

  it('builtins filter their encoded copies; a number or boolean never matches them', () => {
    const b = (name: 'documentId' | 'externalId' | 'source' | 'title') => ({ type: 'builtin' as const, name });
    assert.deepEqual(translateFilter(cond(b('externalId'), 'eq', 'doc-1'), every), leaf('Equal', 'fx_externalId', E('doc-1')));
    assert.deepEqual(translateFilter(cond(b('documentId'), 'eq', 'x'), every), leaf('Equal', 'fx_documentId', E('x')));
    assert.deepEqual(translateFilter(cond(b('title'), 'contains', 'a'), every), leaf('Like', 'fx_title', `*${E('a').slice(1)}*`));
    assert.deepEqual(translateFilter(cond(b('source'), 'ne', 'x'), every), leaf('NotEqual', 'fx_source', E('x')));
    assert.deepEqual(translateFilter(cond(b('externalId'), 'eq', 1), every), { kind: 'none' });
    assert.deepEqual(translateFilter(cond(b('externalId'), 'ne', true), every), { kind: 'all' });
  });

  it('decides conditions on properties the schema lacks instead of sending them (Weaviate rejects unknown properties)', () => {
    const none = only();
    assert.deepEqual(translateFilter(cond(m('x'), 'eq', 'a'), none), { kind: 'none' });
    assert.deepEqual(translateFilter(cond(m('x'), 'ne', 'a'), none), { kind: 'all' });
    assert.deepEqual(translateFilter(cond(m('x'), 'gt', 1), none), { kind: 'none' });
    assert.deepEqual(translateFilter(cond(m('x'), 'in', ['a', 1]), none), { kind: 'none' });
    // contains on a key only ever seen as an array keeps the array half
    assert.deepEqual(translateFilter(cond(m('t'), 'contains', 'r'), only('meta_t_sa')), leaf('ContainsAny', 'meta_t_sa', [E('r')]));
    const and: Filter = { kind: 'and', filters: [cond(m('a'), 'eq', 'x'), cond(m('b'), 'ne', 'y')] };
    assert.deepEqual(translateFilter(and, only('meta_a_s')), leaf('Equal', 'meta_a_s', E('x')), 'true operands drop out of and');
    assert.deepEqual(translateFilter(and, only('meta_b_s')), { kind: 'none' }, 'a false operand makes and false');
    const or: Filter = { kind: 'or', filters: [cond(m('a'), 'eq', 'x'), cond(m('b'), 'ne', 'y')] };
    assert.deepEqual(translateFilter(or, only('meta_a_s')), { kind: 'all' }, 'a true operand makes or true');
    assert.deepEqual(translateFilter(or, only('meta_a_s', 'meta_b_s')), {
      kind: 'filter',
      filter: {
        operator: 'Or',
        value: null,
        filters: [leaf('Equal', 'meta_a_s', E('x')), leaf('NotEqual', 'meta_b_s', E('y'))].map(
          (t) => (t as { filter: FilterValue }).filter,
        ),
      },
    });
  });

  it('refuses what Weaviate cannot evaluate exactly with BAD_USER_INPUT, never dropping it', () => {
    assert.throws(() => translateFilter(cond(m('n'), 'eq', 2 ** 60), every), withCode('BAD_USER_INPUT', /2\^53/));
    assert.throws(() => translateFilter(cond(m('n'), 'in', [1, 2 ** 60]), every), withCode('BAD_USER_INPUT'));
    assert.throws(() => translateFilter(cond(m('n'), 'gt', true), every), withCode('BAD_USER_INPUT'));
  });

  it('matchesDocument applies the same semantics in process', () => {
    const d = {
      id: 'd',
      externalId: 'e',
      title: null,
      source: 'http://x',
      metadata: { lang: 'en', tags: ['a'], n: 5 },
    } as unknown as DocumentRecord;
    assert.equal(matchesDocument(cond(m('lang'), 'eq', 'en'), d), true);
    assert.equal(matchesDocument(cond(m('missing'), 'ne', 'en'), d), true);
    assert.equal(matchesDocument(cond({ type: 'builtin', name: 'title' }, 'ne', 'x'), d), true);
    assert.equal(matchesDocument(cond(m('tags'), 'contains', 'a'), d), true);
    assert.equal(matchesDocument(cond(m('n'), 'gt', '4'), d), false);
    assert.equal(matchesDocument(cond(m('n'), 'in', [4, 5]), d), true);
  });

  it('parses Weaviate’s relativeScoreFusion explainScore and its query tokenisation', () => {
    const id = randomUUID();
    const both =
      `BM25F_x\nHybrid (Result Set keyword,bm25) Document ${id}: original score 2.3456, normalized score: 0.6 - \n` +
      `Hybrid (Result Set vector,hybridVector) Document ${id}: original score 0.99999994, normalized score: 0.4`;
    assert.deepEqual(parseHybridExplain(both), { vector: 0.99999994, keyword: 2.3456 });
    assert.deepEqual(
      parseHybridExplain(`\nHybrid (Result Set vector,nearVector) Document ${id}: original score 1e-05, normalized score: 0`),
      { vector: 1e-5, keyword: null },
    );
    assert.deepEqual(parseHybridExplain(''), { vector: null, keyword: null });
    assert.deepEqual(queryTerms('The zebra" OR NEAR(* ^fence:) AND -'), ['zebra', 'near', 'fence']);
    assert.deepEqual(queryTerms('"*()^:-'), []);
  });
});

// ------------------------------------------------------------------ the store at the client boundary

describe('WeaviateKnowledgeStore over the fake client', () => {
  it('creates prefixed collections: cosine HNSW vectors supplied by kbql, BM25 on text, typed metadata properties', async () => {
    const { store, fake } = await open({ collectionPrefix: 'Acme' });
    await store.init();
    const c = await collection(store);
    const chunks = `AcmeChunks_${c.id.replace(/-/g, '')}`;
    const claim = fake.collectionNames().find((n) => /^AcmeName_[0-9a-f]{40}$/.test(n));
    assert.ok(claim, 'the name claim is a collection');
    assert.deepEqual(fake.collectionNames().sort(), ['AcmeDocuments', 'AcmeRegistry', chunks, claim].sort());
    assert.deepEqual(
      { ...fake.specOf(claim), description: '' },
      {
        name: claim,
        description: '',
        properties: [],
        vectors: 'none',
        multiTenant: false,
        invertedIndex: { bm25K1: 1.2, bm25B: 0.75, indexNullState: false },
      },
    );
    const spec = fake.specOf(chunks)!;
    assert.equal(spec.vectors, 'hnsw-cosine');
    assert.equal(spec.multiTenant, false);
    assert.deepEqual(spec.invertedIndex, { bm25K1: 1.2, bm25B: 0.75, indexNullState: true });
    assert.deepEqual(
      spec.properties.find((p) => p.name === 'text'),
      { name: 'text', dataType: 'text', tokenization: 'word', indexFilterable: false, indexSearchable: true },
    );
    assert.equal(fake.specOf('AcmeRegistry')!.vectors, 'none');

    await store.upsertDocument(c.id, doc('d', ['one'], { metadata: { year: 2020, lang: 'en', tags: ['a', 1] } }));
    const added = fake.calls
      .filter((call) => call.method === 'addProperty' && call.collection === chunks)
      .map((call) => call.args[1] as { name: string; dataType: string });
    assert.deepEqual(added.map((p) => [p.name, p.dataType]).sort(), [
      ['meta_lang_s', 'text'],
      ['meta_tags_na', 'number[]'],
      ['meta_tags_sa', 'text[]'],
      ['meta_year_n', 'number'],
    ]);
    await store.close();
  });

  it('writes objects under deterministic v5 ids, so re-ingestion overwrites exactly', async () => {
    const { store, fake } = await open();
    const c = await collection(store);
    const chunks = `KbqlChunks_${c.id.replace(/-/g, '')}`;
    const d = await store.upsertDocument(c.id, doc('ext', ['a', 'b', 'c']));
    assert.equal(d.id, documentId(c.id, 'ext'));
    assert.deepEqual(
      fake
        .objects(chunks)
        .map((o) => o.id)
        .sort(),
      [0, 1, 2].map((i) => chunkId(d.id, i)).sort(),
    );
    assert.deepEqual(
      fake.objects('KbqlDocuments').map((o) => o.id),
      [d.id],
    );
    await store.upsertDocument(c.id, doc('ext', ['a', 'b', 'c']));
    assert.equal(fake.objects(chunks).length, 3);
    assert.equal(fake.objects('KbqlDocuments').length, 1);
    const chunk = fake.objects(chunks).find((o) => o.id === chunkId(d.id, 1))!;
    assert.deepEqual(chunk.vector, [0, 1, 0.5, 0]);
    assert.equal(chunk.properties['chunkIndex'], 1);
    assert.equal(chunk.properties['documentId'], d.id);
    await store.close();
  });

  it('sends nearVector, bm25 and hybrid the documented arguments, widening the window past ties', async () => {
    const { store, fake } = await open();
    const c = await collection(store);
    await store.upsertDocument(c.id, doc('d', ['alpha beta', 'beta gamma', 'gamma delta']));
    const filter: Filter = { kind: 'condition', field: { type: 'builtin', name: 'externalId' }, op: 'eq', value: 'd' };

    await store.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: axis(0), alpha: 0.5, limit: 2, offset: 1, filter });
    const [vector, near] = lastArgs<[number[], NearVectorOptions]>(fake, 'nearVector');
    assert.deepEqual(vector, [1, 0, 0, 0]);
    assert.deepEqual(
      { ...near, filters: undefined },
      {
        filters: undefined,
        limit: 4,
        offset: 0,
        targetVector: 'default',
        returnMetadata: ['distance'],
        returnProperties: near.returnProperties,
      },
    );
    assert.deepEqual(near.filters, { operator: 'Equal', target: { property: 'fx_externalId' }, value: encodeFilterText('d') });

    await store.search({ collectionId: c.id, mode: 'KEYWORD', text: 'beta', alpha: 0.5, limit: 5, offset: 0 });
    const [query, bm25] = lastArgs<[string, Bm25Options]>(fake, 'bm25');
    assert.equal(query, 'beta');
    assert.deepEqual(
      [bm25.queryProperties, bm25.returnMetadata, bm25.limit, bm25.offset, bm25.filters],
      [['text'], ['score'], 6, 0, undefined],
    );

    const hits = await store.search({
      collectionId: c.id,
      mode: 'HYBRID',
      text: 'gamma',
      vector: axis(2),
      alpha: 0.3,
      limit: 3,
      offset: 0,
    });
    const [hq, hybrid] = lastArgs<[string, HybridOptions]>(fake, 'hybrid');
    assert.equal(hq, 'gamma');
    assert.deepEqual(
      [hybrid.alpha, hybrid.fusionType, hybrid.limit, hybrid.offset, hybrid.queryProperties, hybrid.targetVector, hybrid.returnMetadata],
      [0.3, 'RelativeScore', 4, 0, ['text'], 'default', ['score', 'explainScore']],
    );
    assert.deepEqual(hybrid.vector, [0, 0, 1, 0]);
    assert.ok(
      hits.every((h) => h.vectorScore !== null),
      'vector side parsed from explainScore',
    );
    assert.deepEqual(
      hits.map((h) => h.keywordScore !== null),
      hits.map((h) => h.chunk.text.includes('gamma')),
    );

    // Four equal vectors across the page boundary: the window doubles until the tie group is complete.
    const same = new Float32Array([1, 1, 0, 0]);
    await store.upsertDocument(c.id, {
      ...doc('ties', ['t0', 't1', 't2', 't3']),
      chunks: [0, 1, 2, 3].map((index) => ({ index, text: `t${index}`, startOffset: 0, endOffset: 2, vector: same })),
    });
    const before = fake.count('nearVector');
    const page = await store.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: same, alpha: 0.5, limit: 2, offset: 0 });
    const ids = [0, 1, 2, 3].map((i) => chunkId(documentId(c.id, 'ties'), i)).sort();
    assert.deepEqual(
      page.map((h) => h.chunk.id),
      ids.slice(0, 2),
      'the two smallest chunk ids of the tie',
    );
    const limits = fake.calls
      .filter((x) => x.method === 'nearVector')
      .slice(before)
      .map((x) => (x.args[1] as NearVectorOptions).limit);
    assert.deepEqual(limits, [3, 6], 'k = offset + limit + 1 (3 of the 4 tied hits), doubled once to see past the tie');
    await store.close();
  });

  it('a batch with a per-object error fails the upsert with AppError and leaves the document invisible', async () => {
    const { store, fake } = await open();
    const c = await collection(store);
    fake.failObjects((_col, object: WriteObject) => (object.properties['chunkIndex'] === 2 ? 'shard is read-only' : null));
    await assert.rejects(
      store.upsertDocument(c.id, doc('new', ['one', 'two', 'three', 'four'])),
      withCode('UPSTREAM_UNAVAILABLE', /rejected 1 of 4/),
    );
    fake.failObjects(null);
    const id = documentId(c.id, 'new');
    assert.deepEqual(await store.getDocuments([id]), [null]);
    assert.equal(fake.objects(`KbqlChunks_${c.id.replace(/-/g, '')}`).length, 0, 'the partial chunks of a new document are removed');
    assert.deepEqual(
      await store.search({ collectionId: c.id, mode: 'KEYWORD', text: 'one two three four', alpha: 0.5, limit: 10, offset: 0 }),
      [],
    );
    assert.deepEqual(await store.collectionStats(c.id), { documents: 0, chunks: 0 });

    // A replacement whose record write fails keeps the old record; the chunks already overwritten are hidden.
    const old = await store.upsertDocument(c.id, doc('kept', ['old a', 'old b', 'old c']));
    fake.fail({ method: 'insertMany', collection: 'KbqlDocuments', times: 1, mode: 'down' });
    await assert.rejects(store.upsertDocument(c.id, doc('kept', ['new a', 'new b'])), withCode('UPSTREAM_UNAVAILABLE'));
    assert.deepEqual(await store.getDocuments([old.id]), [old]);
    const visible = await store.listChunks(old.id, { offset: 0, limit: 10 });
    assert.deepEqual(
      visible.items.map((ch) => ch.text),
      ['old c'],
      'only the not-yet-overwritten old chunk is visible',
    );
    assert.equal(visible.total, 1);
    const hits = await store.search({ collectionId: c.id, mode: 'KEYWORD', text: 'new old a b c', alpha: 0.5, limit: 10, offset: 0 });
    assert.deepEqual(
      hits.map((h) => h.chunk.text),
      ['old c'],
      'no chunk of the uncommitted version is returned',
    );
    // Re-ingestion is exact.
    await store.upsertDocument(c.id, doc('kept', ['new a', 'new b']));
    assert.deepEqual(
      (await store.listChunks(old.id, { offset: 0, limit: 10 })).items.map((ch) => ch.text),
      ['new a', 'new b'],
    );
    await store.close();
  });

  it('stale chunks are invisible even when their deletion fails, and the next write removes them', async () => {
    const { store, fake } = await open();
    const c = await collection(store);
    const chunks = `KbqlChunks_${c.id.replace(/-/g, '')}`;
    const d = await store.upsertDocument(c.id, doc('s', ['x one', 'x two', 'x three']));
    fake.fail({ method: 'deleteMany', collection: 'KbqlChunks', times: 1, mode: 'rejected' });
    await assert.rejects(store.upsertDocument(c.id, doc('s', ['y one'])), withCode('INTERNAL_SERVER_ERROR'));
    assert.equal(fake.objects(chunks).length, 3, 'the stale chunks are still stored');
    assert.equal((await store.getDocuments([d.id]))[0]!.chunkCount, 1);
    assert.deepEqual(
      (await store.search({ collectionId: c.id, mode: 'KEYWORD', text: 'x y one two three', alpha: 0.5, limit: 10, offset: 0 })).map(
        (h) => h.chunk.text,
      ),
      ['y one'],
    );
    assert.deepEqual(await store.getChunks([chunkId(d.id, 1), chunkId(d.id, 0)]).then((r) => r.map((ch) => ch?.text ?? null)), [
      null,
      'y one',
    ]);
    assert.deepEqual(await store.collectionStats(c.id), { documents: 1, chunks: 1 });
    await store.upsertDocument(c.id, doc('s', ['y one']));
    assert.equal(fake.objects(chunks).length, 1);
    await store.close();
  });

  it('loops batch deletes, which Weaviate caps per call', async () => {
    const { store, fake } = await open();
    fake.deleteCap = 3;
    const c = await collection(store);
    const chunks = `KbqlChunks_${c.id.replace(/-/g, '')}`;
    const d = await store.upsertDocument(
      c.id,
      doc(
        'big',
        Array.from({ length: 8 }, (_, i) => `chunk ${i}`),
      ),
    );
    const before = fake.count('deleteMany', chunks);
    assert.deepEqual(await store.deleteDocuments([d.id]), { documents: 1, chunks: 8 });
    assert.equal(fake.count('deleteMany', chunks) - before, 4, '3 + 3 + 2 + a call that matches nothing');
    assert.equal(fake.objects(chunks).length, 0);

    const shrink = await store.upsertDocument(
      c.id,
      doc(
        'shrink',
        Array.from({ length: 7 }, (_, i) => `s ${i}`),
      ),
    );
    await store.upsertDocument(c.id, doc('shrink', ['s 0']));
    assert.deepEqual(
      fake.objects(chunks).map((o) => o.id),
      [chunkId(shrink.id, 0)],
    );
    await store.close();
  });

  it('keeps metadata keys that differ only in case apart (Weaviate property names ignore case)', async () => {
    const { store } = await open();
    const c = await collection(store);
    await store.upsertDocument(c.id, doc('upper', ['u'], { metadata: { Lang: 'x' } }));
    await store.upsertDocument(c.id, doc('lower', ['l'], { metadata: { lang: 'x' } }));
    const eqX = (key: string): Filter => ({ kind: 'condition', field: { type: 'metadata', key }, op: 'eq', value: 'x' });
    assert.deepEqual(
      (await store.listDocuments(c.id, { offset: 0, limit: 10 }, eqX('Lang'))).items.map((d) => d.externalId),
      ['upper'],
    );
    const hits = await store.search({
      collectionId: c.id,
      mode: 'VECTOR',
      text: '',
      vector: axis(0),
      alpha: 0.5,
      limit: 10,
      offset: 0,
      filter: eqX('lang'),
    });
    assert.deepEqual(
      hits.map((h) => h.document.externalId),
      ['lower'],
    );
    await store.close();
  });

  it('rewrites the chunks’ filter properties on a metadata update, keeping ids, texts and vectors', async () => {
    const { store, fake } = await open();
    const c = await collection(store);
    const chunks = `KbqlChunks_${c.id.replace(/-/g, '')}`;
    const d = await store.upsertDocument(c.id, doc('m', ['first', 'second'], { metadata: { team: 'a' } }));
    const vectors = new Map(fake.objects(chunks).map((o) => [o.id, o.vector]));
    await store.updateDocumentMetadata(d.id, { team: 'b', n: 3 });
    for (const o of fake.objects(chunks)) {
      assert.deepEqual(o.vector, vectors.get(o.id));
      assert.equal(o.properties['meta_team_s'], encodeFilterText('b'));
      assert.equal(o.properties['meta_n_n'], 3);
    }
    const team = (value: string): Filter => ({ kind: 'condition', field: { type: 'metadata', key: 'team' }, op: 'eq', value });
    const search = (filter: Filter) =>
      store.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: axis(0), alpha: 0.5, limit: 10, offset: 0, filter });
    assert.equal((await search(team('b'))).length, 2);
    assert.equal((await search(team('a'))).length, 0);
    await store.close();
  });

  it('never returns a chunk whose copied metadata got ahead of its document record (interrupted metadata update)', async () => {
    const { store, fake } = await open();
    const c = await collection(store);
    const d = await store.upsertDocument(c.id, doc('m', ['alpha', 'beta'], { metadata: { team: 'a' } }));
    fake.fail({ method: 'insertMany', collection: 'KbqlDocuments', times: 1, mode: 'down' });
    await assert.rejects(store.updateDocumentMetadata(d.id, { team: 'b' }), withCode('UPSTREAM_UNAVAILABLE'));
    assert.deepEqual((await store.getDocuments([d.id]))[0]!.metadata, { team: 'a' }, 'the record is the commit point');
    const team = (value: string): Filter => ({ kind: 'condition', field: { type: 'metadata', key: 'team' }, op: 'eq', value });
    for (const mode of ['VECTOR', 'KEYWORD', 'HYBRID'] as const) {
      const hits = await store.search({
        collectionId: c.id,
        mode,
        text: 'alpha beta',
        vector: axis(0),
        alpha: 0.5,
        limit: 10,
        offset: 0,
        filter: team('b'),
      });
      assert.deepEqual(hits, [], `${mode}: Weaviate matched the rewritten chunks, the record says otherwise`);
    }
    await store.updateDocumentMetadata(d.id, { team: 'b' });
    assert.equal(
      (
        await store.search({
          collectionId: c.id,
          mode: 'VECTOR',
          text: '',
          vector: axis(0),
          alpha: 0.5,
          limit: 10,
          offset: 0,
          filter: team('b'),
        })
      ).length,
      2,
    );
    await store.close();
  });

  it('routes every call of a tenant view to its tenant; one tenant never sees another’s data', async () => {
    const fake = new FakeWeaviate();
    const { store: root } = await open({ multiTenant: true }, fake);
    await root.init();
    const a = root.withTenant('tenant-a');
    const b = root.withTenant('tenant-b');
    const ca = await collection(a, 'shared-name');
    const cb = await collection(b, 'shared-name');
    const da = await a.upsertDocument(ca.id, doc('d', ['secret of a']));
    assert.equal(fake.specOf('KbqlDocuments')!.multiTenant, true);
    const dataCalls = fake.calls.filter((c) =>
      ['insertMany', 'insert', 'fetchObjects', 'deleteMany', 'aggregate', 'nearVector', 'bm25', 'hybrid'].includes(c.method),
    );
    assert.ok(
      dataCalls.length > 0 && dataCalls.every((c) => c.tenant === 'tenant-a' || c.tenant === 'tenant-b'),
      'no data call without a tenant',
    );
    assert.deepEqual(fake.objects('KbqlDocuments', 'tenant-b'), []);

    assert.equal(await b.getCollection(ca.id), null);
    assert.deepEqual(await b.getDocuments([da.id]), [null]);
    assert.deepEqual(await b.getChunks([chunkId(da.id, 0)]), [null]);
    assert.deepEqual(
      (await b.listCollections({ offset: 0, limit: 10 })).items.map((x) => x.id),
      [cb.id],
    );
    await assert.rejects(
      b.search({ collectionId: ca.id, mode: 'KEYWORD', text: 'secret', alpha: 0.5, limit: 10, offset: 0 }),
      withCode('NOT_FOUND'),
    );
    assert.equal((await a.search({ collectionId: ca.id, mode: 'KEYWORD', text: 'secret', alpha: 0.5, limit: 10, offset: 0 })).length, 1);
    assert.deepEqual(await b.deleteDocuments([da.id]), { documents: 0, chunks: 0 });
    assert.equal((await a.getDocuments([da.id]))[0]?.id, da.id);

    await a.close();
    assert.equal((await b.listCollections({ offset: 0, limit: 1 })).total, 1, 'closing a view leaves the shared connection open');
    await assert.rejects(root.listCollections({ offset: 0, limit: 1 }), withCode('INTERNAL_SERVER_ERROR', /withTenant/));
    assert.throws(() => root.withTenant('bad tenant!'), withCode('BAD_USER_INPUT'));
    const single = (await open()).store;
    assert.throws(() => single.withTenant('x'), withCode('INTERNAL_SERVER_ERROR'));
    await root.close();
  });

  it('bindTenants: each kbql tenant’s chunks live in a Weaviate tenant of its own, created on demand; records stay in the home tenant', async () => {
    const fake = new FakeWeaviate();
    const { store } = await open({ multiTenant: true, tenant: 'home', bindTenants: true }, fake);
    await store.init();
    const make = (tenant: string) =>
      store.createCollection({
        tenant,
        name: 'kb',
        description: null,
        chunking: { strategy: 'SENTENCE', chunkSize: 100, chunkOverlap: 10 },
        embedder: { name: 'test', dimensions: DIM },
      });
    const ca = await make('acme');
    const cb = await make('globex.eu');
    const shardB = weaviateTenantFor('globex.eu');
    assert.match(shardB, /^kbqlh-[0-9a-f]{40}$/, 'a kbql tenant Weaviate would refuse is hashed');
    assert.equal(weaviateTenantFor('acme'), 'acme');
    const chunksOf = (c: CollectionRecord) => `KbqlChunks_${c.id.replace(/-/g, '')}`;
    const da = await store.upsertDocument(ca.id, doc('d', ['acme secret text', 'more acme']));
    await store.upsertDocument(cb.id, doc('d', ['globex text']));

    assert.equal(fake.objects(chunksOf(ca), 'acme').length, 2, "acme's chunks in Weaviate tenant acme");
    assert.equal(fake.objects(chunksOf(cb), shardB).length, 1);
    assert.equal(fake.objects(chunksOf(ca), 'home').length, 0, 'none in the home tenant');
    assert.equal(fake.objects('KbqlDocuments', 'home').length, 2, 'document records stay home');
    const created = fake.calls.filter((c) => c.method === 'ensureTenant').map((c) => `${c.collection}/${String(c.args[1])}`);
    assert.ok(created.includes(`${chunksOf(ca)}/acme`) && created.includes(`${chunksOf(cb)}/${shardB}`), created.join());

    // Every path that touches chunks goes to the owner's shard: search, listChunks, getChunks, metadata, delete.
    assert.equal(
      (await store.search({ collectionId: ca.id, mode: 'KEYWORD', text: 'secret', alpha: 0.5, limit: 10, offset: 0 })).length,
      1,
    );
    assert.equal(
      (await store.search({ collectionId: cb.id, mode: 'VECTOR', text: '', vector: axis(0), alpha: 1, limit: 10, offset: 0 })).length,
      1,
    );
    assert.equal((await store.listChunks(da.id, { offset: 0, limit: 10 })).total, 2);
    assert.equal((await store.getChunks([chunkId(da.id, 1)]))[0]?.text, 'more acme');
    await store.updateDocumentMetadata(da.id, { team: 'red' });
    assert.equal(fake.objects(chunksOf(ca), 'acme').filter((o) => JSON.stringify(o).includes('red')).length, 2);
    const dataMethods = ['insertMany', 'insert', 'fetchObjects', 'deleteMany', 'aggregate', 'nearVector', 'bm25', 'hybrid'];
    const wrong = fake.calls.filter(
      (c) =>
        c.collection?.startsWith('KbqlChunks_') &&
        dataMethods.includes(c.method) &&
        c.tenant !== (c.collection === chunksOf(ca) ? 'acme' : shardB),
    );
    assert.deepEqual(
      wrong.map((c) => `${c.method} ${c.collection} ${c.tenant}`),
      [],
    );

    // A fresh store (another replica: nothing cached) finds the same shards.
    const { store: replica } = await open({ multiTenant: true, tenant: 'home', bindTenants: true }, fake);
    assert.deepEqual(await replica.deleteDocuments([da.id]), { documents: 1, chunks: 2 });
    assert.deepEqual(fake.objects(chunksOf(ca), 'acme'), []);
    assert.equal(
      (await replica.search({ collectionId: cb.id, mode: 'KEYWORD', text: 'globex', alpha: 0.5, limit: 10, offset: 0 })).length,
      1,
    );
    await replica.close();
    await store.close();
    assert.throws(() => new WeaviateKnowledgeStore({ url: URL, bindTenants: true }), TypeError);
  });

  it('takes over a stale name claim after the grace period, and refuses a live one', async () => {
    const { store, fake } = await open();
    const c = await collection(store, 'taken');
    await assert.rejects(collection(store, 'taken'), withCode('CONFLICT'));
    const [claim] = fake.collectionNames().filter((n) => n.startsWith('KbqlName_'));
    assert.ok(claim, 'the claim is a Weaviate collection of its own');
    const held = JSON.parse((await fake.collectionDescription(claim))!) as { collectionId: string; claimedAt: number };
    assert.equal(held.collectionId, c.id);

    // The collection is deleted but releasing its name fails: the claim outlives it.
    fake.fail({ method: 'collectionDescription', mode: 'rejected' });
    await assert.rejects(store.deleteCollection(c.id), withCode('INTERNAL_SERVER_ERROR'));
    fake.clearFailures();
    assert.equal(await store.getCollection(c.id), null);
    assert.equal(await store.getCollectionByName('taken'), null);
    // Within the grace period it may be a create still in progress (record not written yet): refused.
    await assert.rejects(collection(store, 'taken'), withCode('CONFLICT'));
    // Past it, a claim whose collection does not carry the name is taken over.
    fake.setDescription(claim, JSON.stringify({ ...held, claimedAt: Date.now() - 121_000 }));
    const again = await collection(store, 'taken');
    assert.equal((await store.getCollectionByName('taken'))!.id, again.id);
    assert.deepEqual(
      fake.collectionNames().filter((n) => n.startsWith('KbqlName')),
      [claim],
      'one claim, and no release marker left behind',
    );
    await store.deleteCollection(again.id);
    assert.deepEqual(
      fake.collectionNames().filter((n) => n.startsWith('KbqlName')),
      [],
      'deleting the collection releases its name',
    );
    assert.equal((await collection(store, 'taken')).name, 'taken', 'and the name is free again');
    await store.close();
  });

  // Two replicas share one Weaviate; one is slow between Weaviate's "id exists?" check and its write of a claim.
  async function raceOnSlowReplica<T>(fake: FakeWeaviate, slow: () => Promise<T>, fast: () => Promise<T>) {
    const pause = fake.pauseNextInsert();
    const slowRun = slow();
    const slowSettled = slowRun.then(
      () => undefined,
      () => undefined,
    );
    await Promise.race([pause.reached, slowSettled]);
    const fastResult = await fast().then(
      (value) => ({ status: 'fulfilled' as const, value }),
      (reason: unknown) => ({ status: 'rejected' as const, reason }),
    );
    pause.resume();
    const slowResult = await slowRun.then(
      (value) => ({ status: 'fulfilled' as const, value }),
      (reason: unknown) => ({ status: 'rejected' as const, reason }),
    );
    return [slowResult, fastResult];
  }

  it('two replicas creating one name at once: exactly one wins, the other gets CONFLICT', async () => {
    const fake = new FakeWeaviate();
    const { store: a } = await open({}, fake);
    const { store: b } = await open({}, fake);
    await a.init();
    await b.init();
    const results = await raceOnSlowReplica(
      fake,
      () => collection(b, 'race'),
      () => collection(a, 'race'),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one create succeeds');
    const lost = results.find((r) => r.status === 'rejected');
    assert.ok(
      lost && isAppError(lost.reason) && lost.reason.code === 'CONFLICT',
      `the other: ${String(lost && 'reason' in lost ? lost.reason : '')}`,
    );
    const named = (await a.listCollections({ offset: 0, limit: 10 })).items.filter((x) => x.name === 'race');
    assert.equal(named.length, 1, 'one collection carries the name');
    await a.close();
    await b.close();
  });

  it('two replicas renaming two collections to one name at once: exactly one wins', async () => {
    const fake = new FakeWeaviate();
    const { store: a } = await open({}, fake);
    const { store: b } = await open({}, fake);
    const ca = await collection(a, 'first');
    const cb = await collection(b, 'second');
    const results = await raceOnSlowReplica(
      fake,
      () => b.updateCollection(cb.id, { name: 'target' }),
      () => a.updateCollection(ca.id, { name: 'target' }),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one rename succeeds');
    const names = (await a.listCollections({ offset: 0, limit: 10 })).items.map((x) => x.name).sort();
    assert.equal(names.filter((n) => n === 'target').length, 1, `names now: ${names.join(', ')}`);
    assert.equal(names.length, 2);
    await a.close();
    await b.close();
  });
});

describe('WeaviateKnowledgeStore resilience', () => {
  it('retries transient REST and batch-delete failures, with backoff; never a 4xx', async () => {
    const { store, fake } = await open({ retries: 2, retryInitialDelayMs: 5, retryMaxDelayMs: 10 });
    const c = await collection(store);
    // REST (a name without an index object is looked up in its claim collection, over REST): refused connections
    // and 5xx are retried.
    for (const mode of ['down', 'serverError'] as const) {
      fake.fail({ method: 'collectionDescription', times: 2, mode });
      const before = fake.count('collectionDescription');
      assert.equal(await store.getCollectionByName('nobody'), null);
      assert.equal(fake.count('collectionDescription') - before, 3, `${mode}: two retries, then success`);
    }
    fake.fail({ method: 'collectionDescription', times: 5, mode: 'serverError' });
    let before = fake.count('collectionDescription');
    await assert.rejects(store.getCollectionByName('nobody'), withCode('UPSTREAM_UNAVAILABLE', /weaviate\.test:8080.*HTTP 500/));
    assert.equal(fake.count('collectionDescription') - before, 3, 'gives up after 2 retries');
    fake.clearFailures();

    // gRPC batch delete: weaviate-client does not retry it, so kbql does.
    const d = await store.upsertDocument(c.id, doc('r', ['one']));
    fake.fail({ method: 'deleteMany', times: 2, mode: 'down' });
    before = fake.count('deleteMany');
    assert.deepEqual(await store.deleteDocuments([d.id]), { documents: 1, chunks: 1 });
    assert.ok(fake.count('deleteMany') - before >= 3, 'UNAVAILABLE on batch delete is retried');

    fake.fail({ method: 'collectionDescription', times: 1, mode: 'rejected' });
    before = fake.count('collectionDescription');
    await assert.rejects(store.getCollectionByName('nobody'), withCode('INTERNAL_SERVER_ERROR', /HTTP 422/));
    assert.equal(fake.count('collectionDescription') - before, 1, 'a 4xx is never retried');
    await store.close();
  });

  it('does not retry a gRPC UNAVAILABLE the client already retried: at most 1 + 5 requests per call', async () => {
    const { store, fake } = await open({ retries: 2, retryInitialDelayMs: 5, retryMaxDelayMs: 10 });
    const c = await collection(store);
    const search = () => store.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: axis(0), alpha: 0.5, limit: 1, offset: 0 });
    fake.fail({ method: 'nearVector', mode: 'down' });
    const calls = fake.count('nearVector');
    const requests = fake.requests('nearVector');
    await assert.rejects(search(), withCode('UPSTREAM_UNAVAILABLE', /UNAVAILABLE/));
    assert.equal(fake.count('nearVector') - calls, 1, 'kbql adds no retries of its own');
    // The bound docs/weaviate.md states: weaviate-client 3.12's 1 + retryMaxAttempts (5), never × kbql's 1 + retries.
    assert.equal(fake.requests('nearVector') - requests, 6);
    assert.equal(store.breakerState, 'closed');
    await store.close();
  });

  it('never retries gRPC INTERNAL (the client does not either) and reports it as INTERNAL_SERVER_ERROR', async () => {
    const { store, fake } = await open({ retries: 2, retryInitialDelayMs: 5 });
    const c = await collection(store);
    for (const method of ['nearVector', 'insertMany', 'deleteMany'] as const) fake.fail({ method, mode: 'serverError' });
    const before = { search: fake.requests('nearVector'), insert: fake.requests('insertMany') };
    await assert.rejects(
      store.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: axis(0), alpha: 0.5, limit: 1, offset: 0 }),
      withCode('INTERNAL_SERVER_ERROR', /INTERNAL/),
    );
    await assert.rejects(store.upsertDocument(c.id, doc('i', ['x'])), withCode('INTERNAL_SERVER_ERROR', /INTERNAL/));
    assert.equal(fake.requests('nearVector') - before.search, 1);
    assert.equal(fake.requests('insertMany') - before.insert, 1);
    await store.close();
  });

  it('reports refused credentials as UPSTREAM_UNAVAILABLE with reason WEAVIATE_UNAUTHENTICATED / WEAVIATE_FORBIDDEN, unretried', async () => {
    const { store, fake } = await open({ retries: 2, retryInitialDelayMs: 5, breakerThreshold: 2 });
    const c = await collection(store);
    const search = () => store.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: axis(0), alpha: 0.5, limit: 1, offset: 0 });
    const cases = [
      { method: 'isReady', mode: 'unauthenticated', reason: 'WEAVIATE_UNAUTHENTICATED', call: () => store.ping() },
      { method: 'isReady', mode: 'forbidden', reason: 'WEAVIATE_FORBIDDEN', call: () => store.ping() },
      {
        method: 'collectionDescription',
        mode: 'unauthenticated',
        reason: 'WEAVIATE_UNAUTHENTICATED',
        call: () => store.getCollectionByName('nobody'),
      },
      { method: 'collectionDescription', mode: 'forbidden', reason: 'WEAVIATE_FORBIDDEN', call: () => store.getCollectionByName('nobody') },
      { method: 'nearVector', mode: 'unauthenticated', reason: 'WEAVIATE_UNAUTHENTICATED', call: search },
      { method: 'nearVector', mode: 'forbidden', reason: 'WEAVIATE_FORBIDDEN', call: search },
    ] as const;
    for (const k of cases) {
      fake.clearFailures();
      fake.fail({ method: k.method, mode: k.mode });
      for (let i = 0; i < 3; i++) {
        const before = fake.count(k.method);
        await assert.rejects(k.call(), (error: unknown) => {
          withCode('UPSTREAM_UNAVAILABLE', /credentials/)(error);
          assert.equal((error as { details: { reason?: unknown } }).details.reason, k.reason, `${k.method} ${k.mode}`);
          return true;
        });
        assert.equal(fake.count(k.method) - before, 1, `${k.method} ${k.mode}: not retried`);
      }
      assert.equal(store.breakerState, 'closed', 'a bad key says nothing about Weaviate being down');
    }
    await store.close();
  });

  it('refused credentials at start-up (wrapped in WeaviateStartUpError) fail init at once, not after retries', async () => {
    for (const [mode, reason] of [
      ['unauthenticated', 'WEAVIATE_UNAUTHENTICATED'],
      ['forbidden', 'WEAVIATE_FORBIDDEN'],
    ] as const) {
      const refusing = new FakeWeaviate().fail({ method: 'connect', mode });
      const { store: starting } = await open({ initTimeoutMs: 2_000, retries: 5, retryInitialDelayMs: 20 }, refusing);
      const started = performance.now();
      await assert.rejects(starting.init(), (error: unknown) => {
        withCode('UPSTREAM_UNAVAILABLE', /refused kbql's credentials/)(error);
        assert.equal((error as { details: { reason?: unknown } }).details.reason, reason);
        return true;
      });
      assert.equal(refusing.connects.length, 1, 'not retried at start-up');
      assert.ok(performance.now() - started < 500);
      await starting.close();
    }
  });

  it('opens the circuit after N consecutive failures, fails fast, and closes again after the half-open delay', async () => {
    const { store, fake } = await open({ breakerThreshold: 3, breakerHalfOpenAfterMs: 150 });
    const c = await collection(store);
    fake.fail({ mode: 'down' });
    for (let i = 0; i < 3; i++) await assert.rejects(store.getCollection(c.id), withCode('UPSTREAM_UNAVAILABLE'));
    assert.equal(store.breakerState, 'open');
    const calls = fake.calls.length;
    const started = performance.now();
    await assert.rejects(store.getCollection(c.id), withCode('UPSTREAM_UNAVAILABLE', /circuit open/));
    assert.equal(fake.calls.length, calls, 'an open circuit does not call Weaviate');
    assert.ok(performance.now() - started < 200, 'and fails fast');
    fake.clearFailures();
    await new Promise((resolve) => setTimeout(resolve, 170));
    assert.deepEqual(await store.collectionStats(c.id), { documents: 0, chunks: 0 });
    assert.equal(store.breakerState, 'closed');

    // Refusals say nothing about Weaviate's health: they never open the circuit.
    fake.fail({ mode: 'rejected' });
    for (let i = 0; i < 4; i++) await assert.rejects(store.getCollection(c.id), withCode('INTERNAL_SERVER_ERROR'));
    assert.equal(store.breakerState, 'closed');
    await store.close();
  });

  it('bounds a hanging call with UPSTREAM_TIMEOUT', async () => {
    const { store, fake } = await open({ timeoutMs: 80 });
    const c = await collection(store);
    fake.fail({ method: 'bm25', mode: 'hang' });
    const started = performance.now();
    await assert.rejects(
      store.search({ collectionId: c.id, mode: 'KEYWORD', text: 'x', alpha: 0.5, limit: 1, offset: 0 }),
      withCode('UPSTREAM_TIMEOUT', /within 80 ms/),
    );
    const took = performance.now() - started;
    assert.ok(took >= 70 && took < 1_000, `timed out after ${took} ms`);
    await store.close();
  });

  it('init against an unreachable or hanging Weaviate fails within the bound, naming the URL', async () => {
    for (const mode of ['down', 'hang'] as const) {
      const fake = new FakeWeaviate().fail({ method: 'connect', mode });
      const { store } = await open({ initTimeoutMs: 200, retries: 5, retryInitialDelayMs: 20 }, fake);
      const started = performance.now();
      await assert.rejects(
        store.init(),
        withCode('UPSTREAM_UNAVAILABLE', /Weaviate at http:\/\/weaviate\.test:8080 \(gRPC weaviate\.test:50051\) is unreachable/),
      );
      const took = performance.now() - started;
      assert.ok(took >= 150 && took < 1_000, `${mode}: failed after ${Math.round(took)} ms (bound 200 ms)`);
      if (mode === 'down') assert.ok(fake.connects.length > 1, 'connecting is retried within the bound');
      fake.clearFailures();
      await store.init();
      await store.ping();
      await store.close();
    }
  });

  it('a connection opened lazily by a call tries once, through the breaker, so a dead Weaviate fails fast', async () => {
    const fake = new FakeWeaviate().fail({ method: 'connect', mode: 'down' });
    const { store } = await open({ retries: 3, retryInitialDelayMs: 5, breakerThreshold: 2, breakerHalfOpenAfterMs: 60_000 }, fake);
    await assert.rejects(store.getCollection(randomUUID()), withCode('UPSTREAM_UNAVAILABLE', /unreachable \(fetch failed\)/));
    await assert.rejects(store.getCollection(randomUUID()), withCode('UPSTREAM_UNAVAILABLE'));
    assert.equal(fake.connects.length, 2, 'one attempt per call');
    await assert.rejects(store.listCollections({ offset: 0, limit: 1 }), withCode('UPSTREAM_UNAVAILABLE', /circuit open/));
    assert.equal(fake.connects.length, 2, 'the open circuit does not even try');
    await store.close();
  });

  it('passes its timeouts to the client and reports readiness through ping', async () => {
    const fake = new FakeWeaviate();
    const { store } = await open(
      { url: 'https://db.example:443/weaviate', grpcPort: 443, apiKey: 'k', timeoutMs: 1500, insertTimeoutMs: 4000, initTimeoutMs: 2500 },
      fake,
    );
    await store.init();
    assert.deepEqual(fake.connects[0], {
      httpHost: 'db.example',
      httpPort: 443,
      httpSecure: true,
      httpPath: '/weaviate',
      grpcHost: 'db.example',
      grpcPort: 443,
      grpcSecure: true,
      apiKey: 'k',
      timeouts: { initMs: 2500, queryMs: 1500, insertMs: 4000 },
    });
    fake.ready = false;
    await assert.rejects(store.ping(), withCode('UPSTREAM_UNAVAILABLE', /not ready/));
    fake.ready = true;
    await store.ping();
    await store.close();
    await assert.rejects(store.ping(), withCode('UPSTREAM_UNAVAILABLE', /closed/));
  });

  it('ping checks gRPC too: REST ready with gRPC unreachable is not ready', async () => {
    for (const options of [{}, { multiTenant: true, tenant: 'home' }]) {
      const { store, fake } = await open(options);
      await store.init();
      await store.ping();
      fake.fail({ method: 'fetchObjects', mode: 'down' });
      await assert.rejects(store.ping(), withCode('UPSTREAM_UNAVAILABLE', /gRPC readiness check/));
      assert.equal(fake.count('isReady'), 2, 'REST said ready both times');
      await store.close();
    }
  });

  it("routes weaviate-client's gRPC retry lines to kbql's logger instead of console.warn", async (t) => {
    const lines: { message: string; fields: Record<string, unknown> }[] = [];
    const warn = t.mock.method(console, 'warn', () => undefined);
    const fake = new FakeWeaviate();
    const store = new WeaviateKnowledgeStore(
      { url: URL, retries: 0 },
      { connect: fake.connect, log: (message, fields) => lines.push({ message, fields }) },
    );
    // The very hook weaviate-client 3.12 calls before each of its gRPC retries (grpc/retry.js).
    grpcRetryOptions.onRetryableError?.(new Error('/weaviate.v1.Weaviate/Search UNAVAILABLE: No connection established'), 0, 512);
    assert.equal(warn.mock.callCount(), 0, 'nothing on console.warn');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!.message, /retries/);
    assert.deepEqual({ attempt: lines[0]!.fields['attempt'], delayMs: lines[0]!.fields['delayMs'] }, { attempt: 1, delayMs: 512 });
    await store.close();
  });

  it('classifies errors: transient = connection, 5xx, UNAVAILABLE, DEADLINE_EXCEEDED; never 4xx, INTERNAL or credentials', () => {
    assert.equal(isTransientError(restError(503, 'x')), true);
    assert.equal(isTransientError(restError(429, 'x')), false);
    assert.equal(isTransientError(restError(404, 'x')), false);
    assert.equal(isTransientError(restError(401, 'x')), false);
    assert.equal(isTransientError(restError(403, 'x')), false);
    assert.equal(isTransientError(grpcError('nearVector', 'DEADLINE_EXCEEDED', 'deadline')), true);
    assert.equal(isTransientError(grpcError('nearVector', 'UNAVAILABLE', 'down')), true);
    assert.equal(isTransientError(grpcError('nearVector', 'INTERNAL', 'boom')), false);
    assert.equal(isTransientError(grpcError('nearVector', 'UNAUTHENTICATED', 'who')), false);
    assert.equal(isTransientError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })), true);
    assert.equal(isTransientError(new Error('invalid filter')), false);
    assert.throws(() => new Resilience({ target: 'x', retries: -1 }), RangeError);
  });
});

describe('FakeWeaviate stays faithful to the server and the client', () => {
  it("throws weaviate-client's own error classes with gRPC status text, never an HTTP status on a gRPC call", async () => {
    const fake = new FakeWeaviate();
    await fake.createCollection({
      name: 'T',
      description: '',
      properties: [],
      vectors: 'hnsw-cosine',
      multiTenant: false,
      invertedIndex: { bm25K1: 1.2, bm25B: 0.75, indexNullState: false },
    });
    const expected = [
      [
        'nearVector',
        clientErrors.WeaviateQueryError,
        /^Query call with protocol gRPC failed with message: \/weaviate\.v1\.Weaviate\/Search UNAVAILABLE: /,
      ],
      ['aggregate', clientErrors.WeaviateQueryError, /Weaviate\/Aggregate UNAVAILABLE: /],
      [
        'insertMany',
        clientErrors.WeaviateBatchError,
        /^Batch objects insert failed with message: \/weaviate\.v1\.Weaviate\/BatchObjects UNAVAILABLE: /,
      ],
      [
        'deleteMany',
        clientErrors.WeaviateDeleteManyError,
        /^Delete many failed with message: \/weaviate\.v1\.Weaviate\/BatchDelete UNAVAILABLE: /,
      ],
    ] as const;
    const col = fake.collection('T');
    const run: Record<string, () => Promise<unknown>> = {
      nearVector: () => col.nearVector([1, 0], { limit: 1, offset: 0, targetVector: 'default', returnProperties: [], returnMetadata: [] }),
      aggregate: () => col.aggregate({}),
      insertMany: () => col.insertMany([]),
      deleteMany: () => col.deleteMany({ operator: 'Equal', target: { property: '_id' }, value: randomUUID() } as FilterValue),
    };
    for (const [method, cls, message] of expected) {
      fake.fail({ method, times: 1, mode: 'down' });
      await assert.rejects(run[method]!(), (error: unknown) => error instanceof cls && message.test(error.message));
    }
    fake.fail({ method: 'collectionDescription', times: 1, mode: 'unauthenticated' });
    await assert.rejects(fake.collectionDescription('T'), (e: unknown) => e instanceof clientErrors.WeaviateUnauthenticatedError);
    fake.fail({ method: 'collectionDescription', times: 1, mode: 'forbidden' });
    await assert.rejects(fake.collectionDescription('T'), (e: unknown) => e instanceof clientErrors.WeaviateInsufficientPermissionsError);
    await assert.rejects(fake.createCollection({ ...fake.specOf('T')! }), (e: unknown) => {
      return e instanceof clientErrors.WeaviateUnexpectedStatusCodeError && e.code === 422 && /already exists/.test(e.message);
    });
  });

  it('batch delete caps the objects deleted per call, not the matches it reports', async () => {
    const fake = new FakeWeaviate();
    await fake.createCollection({
      name: 'T',
      description: '',
      properties: [{ name: 'k', dataType: 'text', tokenization: 'field', indexFilterable: true, indexSearchable: false }],
      vectors: 'none',
      multiTenant: false,
      invertedIndex: { bm25K1: 1.2, bm25B: 0.75, indexNullState: false },
    });
    const col = fake.collection('T');
    await col.insertMany(Array.from({ length: 7 }, () => ({ id: randomUUID(), properties: { k: 'x' } })));
    fake.deleteCap = 3;
    const all = { operator: 'Equal', target: { property: 'k' }, value: 'x' } as FilterValue;
    assert.deepEqual(await col.deleteMany(all), { matches: 7, successful: 3, failed: 0 });
    assert.deepEqual(await col.deleteMany(all), { matches: 4, successful: 3, failed: 0 });
    assert.deepEqual(await col.deleteMany(all), { matches: 1, successful: 1, failed: 0 });
    assert.deepEqual(await col.deleteMany(all), { matches: 0, successful: 0, failed: 0 });
  });
});

// The whole port contract with chunks bound to per-kbql-tenant Weaviate tenants (the contract creates collections in
// several kbql tenants, so several shards are in play).
defineKnowledgeStoreContractSuite('weaviate (in-memory fake, multi-tenant, bindTenants)', async () => {
  const fake = new FakeWeaviate();
  const store = new WeaviateKnowledgeStore(
    {
      url: 'http://weaviate.fake:8080',
      multiTenant: true,
      tenant: 'home',
      bindTenants: true,
      timeoutMs: 2_000,
      initTimeoutMs: 2_000,
      retries: 0,
    },
    { connect: fake.connect },
  );
  return { store, cleanup: () => store.close() };
});
