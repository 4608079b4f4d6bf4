import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { EmbeddedKnowledgeStore, type EmbeddedStoreOptions } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { fillVectors } from '../../src/adapters/embedded/vector-fill';
import { VectorIndex } from '../../src/adapters/embedded/vector-index';
import { sha256Hex } from '../../src/ids';
import type { CollectionRecord, DocumentWrite, SearchHit } from '../../src/ports/knowledge-store.port';
import { mulberry32 } from '../helpers/fixtures';

const DIM = 16;
/** Rows of the large collection: above the store's fill-thread threshold (20,000). */
const LARGE_ROWS = 24_000;
const CHUNKS_PER_DOC = 200;

describe('EmbeddedKnowledgeStore warm-up: every vector index loaded at start-up, large ones on a fill thread', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  /** A data directory with a large collection (fill thread) and two small ones (event loop), closed cleanly. */
  const seeded = async (options: Partial<EmbeddedStoreOptions> = {}) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'kbql-warm-up-'));
    dirs.push(dataDir);
    const rng = mulberry32(5);
    const store = new EmbeddedKnowledgeStore({ dataDir, ...options });
    await store.init();
    const large = await newCollection(store, 'large');
    // Loaded first at warm-up (collections load in creation order).
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (let d = 0; d < LARGE_ROWS / CHUNKS_PER_DOC; d += 10) {
      await store.upsertDocuments(
        large.id,
        Array.from({ length: 10 }, (_, i) => makeDoc(`d${d + i}`, CHUNKS_PER_DOC, rng)),
      );
    }
    const small = [await newCollection(store, 'small-a'), await newCollection(store, 'small-b')];
    for (const c of small) await store.upsertDocuments(c.id, [makeDoc('s0', 30, rng), makeDoc('s1', 30, rng)]);
    const queries = Array.from({ length: 5 }, () => randomVector(rng));
    const expected: string[][] = [];
    for (const q of queries) expected.push((await vectorSearch(store, large.id, q)).map(hitKey));
    if (options.vectorIndex === 'auto') await store.settleVectorIndex(large.id);
    await store.close();
    return { dataDir, large, small, queries, expected, rng };
  };

  it('fill thread rows equal the event-loop load bit for bit, with one thread or several', async () => {
    const { dataDir, large, queries } = await seeded();
    const fill = (threads: number) =>
      fillVectors({
        filename: join(dataDir, 'kbql.sqlite'),
        collectionId: large.id,
        dimensions: DIM,
        busyTimeoutMs: 1000,
        timeoutMs: 30_000,
        threads,
      });
    const filled = await fill(3);
    assert.equal(filled.chunkIds.length, LARGE_ROWS);
    const single = await fill(1);
    assert.deepEqual(filled.rowIds, single.rowIds);
    assert.deepEqual(filled.chunkIds, single.chunkIds);
    assert.deepEqual(new Uint8Array(filled.matrix.buffer), new Uint8Array(single.matrix.buffer));
    const threaded = VectorIndex.fromRows(DIM, filled);
    // The event-loop path: what a first search does without warm-up.
    const store = new EmbeddedKnowledgeStore({ dataDir });
    await store.init();
    try {
      const direct = new VectorIndex(DIM, LARGE_ROWS);
      const db = (await import('better-sqlite3')).default(join(dataDir, 'kbql.sqlite'), { readonly: true });
      for (const [seq, id, blob] of db
        .prepare('SELECT seq, id, vector FROM chunks WHERE collection_id = ?')
        .raw()
        .iterate(large.id) as IterableIterator<[number, string, Buffer]>)
        direct.addBytes(seq, id, blob);
      db.close();
      for (const q of queries) assert.deepEqual(threaded.search(q, 10), direct.search(q, 10), 'same rows, same scores');
      assert.deepEqual(threaded.vectorOf(filled.rowIds[123]!), direct.vectorOf(filled.rowIds[123]!));
    } finally {
      await store.close();
    }
  });

  for (const vectorIndex of ['exact', 'auto'] as const) {
    it(`${vectorIndex}: loads every collection before the first search; searches and writes during warm-up stay exact`, async () => {
      const ann = vectorIndex === 'auto' ? { vectorIndex, annIndex: { exactBelowRows: 1 } } : { vectorIndex };
      const { dataDir, large, small, queries, expected, rng } = await seeded(ann);
      const store = new EmbeddedKnowledgeStore({ dataDir, ...ann });
      await store.init();
      try {
        assert.equal(store.warmUpState().warming, false, 'nothing runs before warmUp()');
        const delay = monitorEventLoopDelay({ resolution: 5 });
        delay.enable();
        const warming = store.warmUp();
        assert.equal(store.warmUpState().warming, true);
        assert.equal(store.warmUpState().collections, 3);
        // A search during warm-up waits for its collection's load and answers exactly what the seeding store did.
        const searching = vectorSearch(store, large.id, queries[0]!);
        // Writes while the fill thread reads: a snapshot older than the collection is read again, never served.
        const fresh = makeDoc('fresh', 3, rng);
        for (let i = 0; i < 5; i++) {
          await store.upsertDocuments(large.id, [i === 4 ? fresh : makeDoc(`w${i}`, 1, rng)]);
          await new Promise((resolve) => setTimeout(resolve, 15));
        }
        const during = (await searching).map(hitKey).filter((k) => !/^(w\d|fresh)#/.test(k));
        assert.deepEqual(during, expected[0]!.slice(0, during.length), 'the search made during warm-up');
        await warming;
        delay.disable();
        const state = store.warmUpState();
        assert.equal(state.warming, false);
        assert.equal(state.loadedCollections, 3);
        assert.equal(state.rows, LARGE_ROWS + 4 + 3 + 2 * 60, 'every collection loaded, the rows written meanwhile included');
        assert.ok(state.warmMs !== null && state.warmMs >= 0);
        const top = await vectorSearch(store, large.id, fresh.chunks[1]!.vector);
        assert.equal(hitKey(top[0]!), 'fresh#1', 'the row written during warm-up is found');
        for (const [i, q] of queries.entries()) {
          const hits = (await vectorSearch(store, large.id, q)).map(hitKey).filter((k) => !/^(w\d|fresh)#/.test(k));
          if (vectorIndex === 'exact') assert.deepEqual(hits, expected[i]!.slice(0, hits.length), `query ${i} as before the restart`);
          // Through the graph: approximate, with exact scores; nearly the same hits.
          else
            assert.ok(
              hits.filter((k) => expected[i]!.includes(k)).length >= hits.length - 1,
              `query ${i}: ${hits.join()} vs ${expected[i]!.join()}`,
            );
        }
        for (const c of small) assert.equal((await vectorSearch(store, c.id, queries[0]!)).length, 10);
        if (vectorIndex === 'auto') {
          for (const c of [large, ...small]) await store.settleVectorIndex(c.id);
          assert.equal(store.vectorIndexState(large.id).approximate, true, 'the saved graph is in use');
          assert.equal(store.warmUpState().indexedRows, store.warmUpState().rows);
        }
        assert.ok(delay.max / 1e6 < 1000, `event loop max delay ${(delay.max / 1e6).toFixed(0)} ms during warm-up`);
      } finally {
        await store.close();
      }
    });
  }

  it('close() during warm-up stops the fill thread and leaves the data as it was', async () => {
    const { dataDir, large, queries, expected } = await seeded();
    const store = new EmbeddedKnowledgeStore({ dataDir });
    await store.init();
    const warming = store.warmUp();
    await store.close();
    await warming;
    const again = new EmbeddedKnowledgeStore({ dataDir });
    await again.init();
    try {
      assert.deepEqual((await vectorSearch(again, large.id, queries[1]!)).map(hitKey), expected[1]);
    } finally {
      await again.close();
    }
  });
});

function newCollection(store: EmbeddedKnowledgeStore, name: string): Promise<CollectionRecord> {
  return store.createCollection({
    name,
    description: null,
    chunking: { strategy: 'AUTO', chunkSize: 100, chunkOverlap: 10 },
    embedder: { name: 'test', dimensions: DIM },
  });
}

function vectorSearch(store: EmbeddedKnowledgeStore, collectionId: string, vector: Float32Array): Promise<SearchHit[]> {
  return store.search({ collectionId, mode: 'VECTOR', text: '', vector, alpha: 1, limit: 10, offset: 0 });
}

function hitKey(hit: SearchHit): string {
  return `${hit.document.externalId}#${hit.chunk.index}`;
}

function makeDoc(externalId: string, chunkCount: number, rng: () => number): DocumentWrite {
  const chunks = Array.from({ length: chunkCount }, (_, index) => ({
    index,
    text: `chunk ${index} of ${externalId}`,
    startOffset: -1,
    endOffset: -1,
    vector: randomVector(rng),
  }));
  return {
    externalId,
    title: externalId,
    source: null,
    contentType: 'TEXT',
    metadata: {},
    contentHash: sha256Hex(chunks.map((ch) => ch.text).join('\n')),
    charCount: chunks.reduce((n, ch) => n + ch.text.length, 0),
    chunks,
  };
}

function randomVector(rng: () => number): Float32Array {
  return Float32Array.from({ length: DIM }, () => rng() * 2 - 1);
}
