import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'graphql';
import { createApolloCache, createDocumentStore } from '../../src/adapters/cache/apollo.cache';
import { createKeyvCache } from '../../src/adapters/cache/keyv.cache';
import { LruMap } from '../../src/adapters/cache/lru-map';
import { CachedEmbedder, outputFingerprint, type TextVectors } from '../../src/modules/ingestion/cached-embedder';
import { PUBLIC_SCOPE, QueryResultCache, type CachedAnswer, type CachedSearch } from '../../src/modules/query/query-cache';
import type { CacheKind, CacheStore } from '../../src/ports/cache.port';
import type { Embedder } from '../../src/ports/embedder.port';
import type { DocumentRecord, SearchHit } from '../../src/ports/knowledge-store.port';

/** Counts hook calls by `result:kind[:reason]`. */
function recordingHooks() {
  const counts = new Map<string, number>();
  const add = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  return {
    counts,
    hooks: {
      hit: (kind: CacheKind) => add(`hit:${kind}`),
      miss: (kind: CacheKind) => add(`miss:${kind}`),
      bypass: (kind: CacheKind, reason: string) => add(`bypass:${kind}:${reason}`),
    },
  };
}

/** A CacheStore over a Map that records its calls (TTL ignored). */
class MapStore implements CacheStore {
  readonly data = new Map<string, string>();
  gets = 0;
  async get(key: string) {
    this.gets++;
    return this.data.get(key);
  }
  async getMany(keys: readonly string[]) {
    this.gets += keys.length;
    return keys.map((k) => this.data.get(k));
  }
  async set(key: string, value: string) {
    this.data.set(key, value);
  }
  async setMany(entries: readonly { key: string; value: string }[]) {
    for (const e of entries) this.data.set(e.key, e.value);
  }
  async delete(key: string) {
    this.data.delete(key);
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

const doc = (id: string, title: string): DocumentRecord => ({
  id,
  collectionId: 'c1',
  externalId: `ext-${id}`,
  title,
  source: null,
  contentType: 'TEXT',
  metadata: { team: 'hr', tags: ['a', 'b'], nested: { n: 1 } },
  contentHash: 'h',
  charCount: 10,
  chunkCount: 2,
  createdAt: new Date('2024-05-01T10:00:00.123Z'),
  updatedAt: new Date('2024-06-01T10:00:00.456Z'),
});

const hit = (document: DocumentRecord, index: number, score: number): SearchHit => ({
  chunk: {
    id: `${document.id}-${index}`,
    documentId: document.id,
    collectionId: 'c1',
    index,
    text: `text ${index}`,
    startOffset: 0,
    endOffset: 6,
  },
  document,
  score,
  vectorScore: score / 2,
  keywordScore: index === 0 ? null : 3.5,
});

describe('LruMap', () => {
  it('evicts the least recently used entries past its byte bound', () => {
    const map = new LruMap(4 * (2 * 2 + 64)); // room for four 1-char keys with 1-char values
    for (const k of ['a', 'b', 'c', 'd']) map.set(k, k);
    map.get('a'); // a is now the most recent
    map.set('e', 'e');
    assert.deepEqual([...map.keys()], ['c', 'd', 'a', 'e']);
    assert.equal(map.get('b'), undefined);
    map.set('big', 'x'.repeat(200)); // larger than the bound alone: kept, everything else evicted
    assert.deepEqual([...map.keys()], ['big']);
    map.delete('big');
    assert.equal(map.bytes, 0);
  });
});

describe('Keyv cache (in process)', () => {
  it('stores, finds and expires strings, and reports one hit or miss per key', async () => {
    const { counts, hooks } = recordingHooks();
    const cache = await createKeyvCache({ hooks });
    assert.equal(cache.backend, 'memory');
    assert.equal(cache.available, true);
    const result = cache.store('result');
    await result.set('a', 'alpha|with a bar', 60);
    await result.setMany(
      [
        { key: 'b', value: '' },
        { key: 'c', value: 'gamma' },
      ],
      60,
    );
    assert.equal(await result.get('a'), 'alpha|with a bar');
    assert.deepEqual(await result.getMany(['a', 'b', 'c', 'zzz']), ['alpha|with a bar', '', 'gamma', undefined]);
    // Kinds do not share keys.
    assert.equal(await cache.store('embedding').get('a'), undefined);
    assert.deepEqual(Object.fromEntries(counts), { 'hit:result': 4, 'miss:result': 1, 'miss:embedding': 1 });

    await result.set('short', 'lived', 0.05);
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(await result.get('short'), undefined);
    await result.delete('a');
    assert.equal(await result.get('a'), undefined);
    await cache.close();
    assert.equal(cache.available, false);
    assert.equal(await result.get('c'), undefined, 'a closed cache is bypassed');
    assert.equal(counts.get('bypass:result:unavailable'), 1);
  });

  it('bypasses at once, without throwing, when Redis cannot be reached', async () => {
    const { counts, hooks } = recordingHooks();
    // Port 1 on loopback: nothing listens there.
    const cache = await createKeyvCache({ redisUrl: 'redis://127.0.0.1:1', hooks, connectWaitMs: 50 });
    try {
      assert.equal(cache.backend, 'redis');
      assert.equal(cache.available, false);
      const store = cache.store('embedding');
      const started = performance.now();
      assert.deepEqual(await store.getMany(['x', 'y']), [undefined, undefined]);
      await store.set('x', 'v', 60);
      assert.ok(performance.now() - started < 1000);
      assert.equal(counts.get('bypass:embedding:unavailable'), 3);
    } finally {
      await cache.close();
    }
  });
});

describe('QueryResultCache', () => {
  const embedder = { name: 'kbql-hash-v1', dimensions: 1024 };
  const collection = { id: 'c1', version: 7, embedder };
  const args = { query: 'q', mode: 'HYBRID', alpha: 0.5, topK: 10, offset: 0, filter: null };

  it('keys on collection id and version, active embedder, scope and arguments', () => {
    const key = QueryResultCache.key('search', collection, PUBLIC_SCOPE, args);
    assert.match(key, /^c1:7:[0-9a-f]{12}:[0-9a-f]{64}$/);
    assert.equal(QueryResultCache.key('search', collection, PUBLIC_SCOPE, { ...args }), key);
    const others = [
      QueryResultCache.key('ask', collection, PUBLIC_SCOPE, args),
      QueryResultCache.key('search', { id: 'c1', version: 8, embedder }, PUBLIC_SCOPE, args),
      QueryResultCache.key('search', { id: 'c2', version: 7, embedder }, PUBLIC_SCOPE, args),
      QueryResultCache.key('search', { ...collection, embedder: { ...embedder, dimensions: 512 } }, PUBLIC_SCOPE, args),
      QueryResultCache.key('search', collection, 'staff', args),
      QueryResultCache.key('search', collection, PUBLIC_SCOPE, { ...args, topK: 11 }),
      QueryResultCache.key('search', collection, PUBLIC_SCOPE, { ...args, query: 'Q' }),
    ];
    assert.equal(new Set([key, ...others]).size, others.length + 1);
  });

  it('round-trips search results through JSON: dates, nulls, metadata, one copy per document', async () => {
    const store = new MapStore();
    const cache = new QueryResultCache({ store, ttlSeconds: 60, localEntries: 0 });
    const d1 = doc('d1', 'One');
    const d2 = doc('d2', 'Two');
    const value: CachedSearch = { mode: 'HYBRID', alpha: 0.25, hits: [hit(d1, 0, 0.9), hit(d2, 0, 0.8), hit(d1, 1, 0.7)] };
    let computed = 0;
    const first = await cache.searches('k', async () => (computed++, value));
    assert.deepEqual(first, { value, cached: false });
    await flush();
    assert.equal((store.data.get('k')!.match(/"ext-d1"/g) ?? []).length, 1, 'document d1 stored once');
    const second = await cache.searches('k', async () => (computed++, value));
    assert.equal(computed, 1);
    assert.equal(second.cached, true);
    assert.deepEqual(second.value, value);
    assert.ok(second.value.hits[0]!.document.createdAt instanceof Date);
    assert.equal(second.value.hits[0]!.document, second.value.hits[2]!.document, 'hits of one document share its record');
  });

  it('round-trips answers with citations pointing at their sources', async () => {
    const store = new MapStore();
    const cache = new QueryResultCache({ store, ttlSeconds: 60, localEntries: 0 });
    const sources = [
      { n: 1, ...hit(doc('d1', 'One'), 0, 0.9) },
      { n: 2, ...hit(doc('d2', 'Two'), 3, 0.5) },
    ];
    const answer: CachedAnswer = {
      answer: 'Twenty-five days [2].',
      abstained: false,
      abstentionReason: null,
      citations: [{ marker: 2, sentence: 'Twenty-five days [2].', supported: true, source: sources[1]! }],
      sources,
      unsupportedMarkers: [3],
      synthesizer: 'extractive',
    };
    const claimed = await cache.acquireAnswer('a');
    assert.ok(claimed.claim);
    claimed.claim.settle(answer);
    await flush();
    const found = await cache.acquireAnswer('a');
    assert.equal(found.claim, undefined);
    assert.deepEqual(found.hit, answer);
    assert.equal(found.hit.citations[0]!.source, found.hit.sources[1], 'the citation refers to the decoded source');
  });

  it('keeps hot results decoded in process; another instance (replica) reads them from the store', async () => {
    const store = new MapStore();
    let localHits = 0;
    const cache = new QueryResultCache({ store, ttlSeconds: 60, localEntries: 2, onLocalHit: () => localHits++ });
    const value = (n: number): CachedSearch => ({ mode: 'VECTOR', alpha: n, hits: [hit(doc('d1', 'One'), 0, 0.5)] });
    await cache.searches('a', async () => value(1));
    const gets = store.gets;
    const again = await cache.searches('a', async () => value(99));
    assert.deepEqual(
      { cached: again.cached, alpha: again.value.alpha, gets: store.gets, localHits },
      { cached: true, alpha: 1, gets, localHits: 1 },
    );
    // Least recently used local copies go first; the store still has them.
    await cache.searches('b', async () => value(2));
    await cache.searches('c', async () => value(3));
    await flush();
    assert.equal((await cache.searches('a', async () => value(99))).value.alpha, 1);
    assert.equal(store.gets, gets + 3, 'b and c missed; a, evicted locally, was read from the store');
    const replica = new QueryResultCache({ store, ttlSeconds: 60 });
    const shared = await replica.searches('b', async () => value(99));
    assert.deepEqual([shared.cached, shared.value.alpha], [true, 2]);
  });

  it('lets identical concurrent requests share one computation, and its failure', async () => {
    const store = new MapStore();
    const cache = new QueryResultCache({ store, ttlSeconds: 60 });
    let computed = 0;
    const slow = async (): Promise<CachedSearch> => {
      computed++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { mode: 'VECTOR', alpha: 1, hits: [] };
    };
    const results = await Promise.all(Array.from({ length: 10 }, () => cache.searches('same', slow)));
    assert.equal(computed, 1);
    assert.equal(results.filter((r) => !r.cached).length, 1);

    const boom = async (): Promise<CachedSearch> => {
      computed++;
      await new Promise((resolve) => setTimeout(resolve, 10));
      throw new Error('provider down');
    };
    const failures = await Promise.allSettled([cache.searches('bad', boom), cache.searches('bad', boom)]);
    assert.deepEqual(
      failures.map((f) => f.status),
      ['rejected', 'rejected'],
    );
    assert.equal(computed, 2, 'the second request waited for the first instead of computing');
    assert.equal(store.data.has('bad'), false, 'failures are not cached');
    // Nothing stays claimed: the next call computes again.
    await assert.rejects(cache.searches('bad', boom), /provider down/);
    assert.equal(computed, 3);
  });

  it('with ttlSeconds 0 computes every time and stores nothing', async () => {
    const store = new MapStore();
    const cache = new QueryResultCache({ store, ttlSeconds: 0 });
    let computed = 0;
    await cache.searches('k', async () => (computed++, { mode: 'KEYWORD', alpha: 0, hits: [] }));
    await cache.searches('k', async () => (computed++, { mode: 'KEYWORD', alpha: 0, hits: [] }));
    assert.equal(computed, 2);
    assert.equal(store.data.size + store.gets, 0);
  });

  it('treats an entry it cannot read as a miss', async () => {
    const store = new MapStore();
    store.data.set('k', '{"f":0}');
    store.data.set('j', 'not json');
    const cache = new QueryResultCache({ store, ttlSeconds: 60 });
    assert.equal((await cache.searches('k', async () => ({ mode: 'KEYWORD', alpha: 0, hits: [] }))).cached, false);
    assert.equal((await cache.searches('j', async () => ({ mode: 'KEYWORD', alpha: 0, hits: [] }))).cached, false);
  });
});

describe('CachedEmbedder', () => {
  class FakeVectors implements TextVectors {
    calls: string[][] = [];
    async embed(text: string) {
      return (await this.embedMany([text]))[0]!;
    }
    async embedMany(texts: readonly string[]) {
      this.calls.push([...texts]);
      return texts.map((t) => Float32Array.of(t.length, Math.PI, -1 / 3, t.charCodeAt(0)));
    }
  }
  const info = { name: 'fake-v1', dimensions: 4 };

  it('asks the inner embedder only for texts it has not seen, with bit-identical vectors', async () => {
    const inner = new FakeVectors();
    const store = new MapStore();
    const cached = new CachedEmbedder(inner, { store, embedder: info, ttlSeconds: 60 });
    const first = await cached.embedMany(['alpha', 'beta', 'alpha']);
    assert.deepEqual(inner.calls, [['alpha', 'beta']]);
    assert.notEqual(first[0], first[2], 'repeated texts get separate arrays');
    await flush();
    const second = await cached.embedMany(['beta', 'gamma', 'alpha']);
    assert.deepEqual(inner.calls, [['alpha', 'beta'], ['gamma']]);
    assert.deepEqual([...second[0]!], [...first[1]!]);
    assert.deepEqual([...second[2]!], [...first[0]!]);
    assert.equal(second[0]![1], Math.fround(Math.PI));
    await flush();
    assert.deepEqual([...(await cached.embed('gamma'))], [...second[1]!]);
    assert.equal(inner.calls.length, 2);
    assert.ok([...store.data.keys()].every((k) => k.startsWith('hash:fake-v1/4/l2:')));
  });

  it("with bypassBatchesOver 0 (the local embedder) caches queries only: a document's chunks skip the cache", async () => {
    const inner = new FakeVectors();
    const store = new MapStore();
    const cached = new CachedEmbedder(inner, { store, embedder: info, ttlSeconds: 60, bypassBatchesOver: 0 });
    await cached.embedMany(['chunk one']);
    await cached.embedMany(['chunk one', 'chunk two']);
    await flush();
    assert.equal(store.gets, 0, 'chunks neither read…');
    assert.equal(store.data.size, 0, '…nor written');
    assert.equal(inner.calls.length, 2);
    await cached.embed('a query');
    await flush();
    await cached.embed('a query');
    assert.deepEqual(inner.calls.slice(2), [['a query']], 'the repeated query came from the cache');
  });

  it('versions keys by the embedder output when asked to (a retuned embedder that kept its name)', async () => {
    const tuned = (scale: number): Embedder => ({
      info,
      maxBatchSize: 8,
      embed: async (texts) => texts.map(() => Float32Array.of(scale, 0, 0, 0)),
    });
    assert.equal(await outputFingerprint(tuned(1)), await outputFingerprint(tuned(1)));
    assert.notEqual(await outputFingerprint(tuned(1)), await outputFingerprint(tuned(0.5)));
    const store = new MapStore();
    const cached = new CachedEmbedder(new FakeVectors(), {
      store,
      embedder: info,
      ttlSeconds: 60,
      version: await outputFingerprint(tuned(1)),
    });
    await cached.embed('x');
    await flush();
    assert.match([...store.data.keys()][0]!, /^hash:fake-v1\/4\/l2:[0-9a-f]{12}:[0-9a-f]{64}$/);
  });

  it('passes batches over bypassBatchesOver straight through, caching the small ones', async () => {
    const inner = new FakeVectors();
    const store = new MapStore();
    const cached = new CachedEmbedder(inner, { store, embedder: info, ttlSeconds: 60, bypassBatchesOver: 2 });
    await cached.embedMany(['q1', 'q2']);
    await flush();
    assert.equal(store.data.size, 2, 'a small batch (queries) is cached');
    const chunks = await cached.embedMany(['q1', 'c1', 'c2']);
    await flush();
    assert.deepEqual(
      inner.calls,
      [
        ['q1', 'q2'],
        ['q1', 'c1', 'c2'],
      ],
      'a large batch is neither read from the cache nor written',
    );
    assert.equal(store.data.size, 2);
    assert.equal(chunks.length, 3);
    await cached.embed('q1');
    assert.equal(inner.calls.length, 2, 'the query entry is still there');
  });

  it('ignores entries of the wrong size and does nothing when off', async () => {
    const inner = new FakeVectors();
    const store = new MapStore();
    const cached = new CachedEmbedder(inner, { store, embedder: info, ttlSeconds: 60 });
    await cached.embed('x');
    await flush();
    for (const key of store.data.keys()) store.data.set(key, Buffer.from([1, 2, 3]).toString('base64'));
    await cached.embed('x');
    assert.equal(inner.calls.length, 2);

    const off = new CachedEmbedder(inner, { store: new MapStore(), embedder: info, ttlSeconds: 0 });
    await off.embed('y');
    await off.embed('y');
    assert.equal(inner.calls.length, 4);
  });
});

describe('Apollo caches', () => {
  it('maps Apollo TTLs (seconds; null or none = default) onto the cache store', async () => {
    const sets: [string, string, number][] = [];
    const store: CacheStore = {
      get: async (key) => (key === 'known' ? 'value' : undefined),
      getMany: async (keys) => keys.map(() => undefined),
      set: async (key, value, ttl) => void sets.push([key, value, ttl]),
      setMany: async () => undefined,
      delete: async () => undefined,
    };
    const apollo = createApolloCache(store, { defaultTtlSeconds: 99 });
    assert.equal(await apollo.get('known'), 'value');
    await apollo.set('apq:1', 'query', { ttl: 300 });
    await apollo.set('apq:2', 'query', { ttl: null });
    await apollo.set('apq:3', 'query');
    assert.deepEqual(sets, [
      ['apq:1', 'query', 300],
      ['apq:2', 'query', 99],
      ['apq:3', 'query', 99],
    ]);
  });

  it('keeps the most recently used validated documents', async () => {
    const documents = createDocumentStore({ maxEntries: 2 });
    const a = parse('{ a }');
    await documents.set('a', a);
    await documents.set('b', parse('{ b }'));
    assert.equal(await documents.get('a'), a);
    await documents.set('c', parse('{ c }'));
    assert.equal(await documents.get('b'), undefined);
    assert.equal(await documents.get('a'), a);
    assert.throws(() => createDocumentStore({ maxEntries: 0 }), RangeError);
  });
});
