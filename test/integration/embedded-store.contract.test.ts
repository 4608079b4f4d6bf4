import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteWriterThread } from '../../src/adapters/embedded/sqlite-writer';
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { isAppError } from '../../src/errors';
import { chunkId, documentId, sha256Hex } from '../../src/ids';
import type { CollectionRecord, DocumentWrite, Filter, SearchHit } from '../../src/ports/knowledge-store.port';
import { defineKnowledgeStoreContractSuite } from '../contract/knowledge-store.contract';
import { mulberry32 } from '../helpers/fixtures';

// Once with the exact index, once with the ANN index. For the ANN run the thresholds are lowered so that the
// contract's small collections get a graph and filtered searches go through it, and every search waits for the graph
// to cover the collection (settle): the suite then checks the graph path, not the exact tail.
for (const vectorIndex of ['exact', 'auto'] as const) {
  defineKnowledgeStoreContractSuite(`embedded (vector index ${vectorIndex})`, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'kbql-store-contract-'));
    const annErrors: string[] = [];
    const store = new EmbeddedKnowledgeStore({
      dataDir,
      vectorIndex,
      annIndex: vectorIndex === 'auto' ? { exactBelowRows: 1, filterExactRows: 0, filterExactFraction: 0 } : undefined,
      onAnnError: (collectionId, error) => annErrors.push(`${collectionId}: ${error.message}`),
    });
    return {
      store,
      settle: vectorIndex === 'auto' ? (collectionId) => store.settleVectorIndex(collectionId) : undefined,
      cleanup: async () => {
        await store.close();
        await rm(dataDir, { recursive: true, force: true });
        assert.deepEqual(annErrors, [], 'no background ANN failure');
      },
    };
  });
}

const DIM = 16;

describe('EmbeddedKnowledgeStore (embedded only)', () => {
  let dataDir: string;
  const open: EmbeddedKnowledgeStore[] = [];

  const openStore = async (): Promise<EmbeddedKnowledgeStore> => {
    const store = new EmbeddedKnowledgeStore({ dataDir });
    await store.init();
    open.push(store);
    return store;
  };

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'kbql-store-embedded-'));
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const newCollection = (store: EmbeddedKnowledgeStore, name = 'c'): Promise<CollectionRecord> =>
    store.createCollection({
      name,
      description: null,
      chunking: { strategy: 'AUTO', chunkSize: 100, chunkOverlap: 10 },
      embedder: { name: 'test', dimensions: DIM },
    });

  it('creates <dataDir>/kbql.sqlite in WAL mode with a schema version; init is idempotent; close makes it unusable', async () => {
    const store = await openStore();
    await store.init();
    await store.ping();
    assert.ok(existsSync(join(dataDir, 'kbql.sqlite')));
    const peek = new Database(join(dataDir, 'kbql.sqlite'), { readonly: true });
    try {
      assert.equal(peek.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(peek.pragma('user_version', { simple: true }), 4);
    } finally {
      peek.close();
    }
    await store.close();
    await assert.rejects(store.ping(), (e: unknown) => isAppError(e) && e.code === 'UPSTREAM_UNAVAILABLE');
    await store.init();
    await store.ping();
  });

  it('migrates a version-1 file: its collections join the default tenant with their documents intact', async () => {
    const file = join(dataDir, 'kbql.sqlite');
    const v1 = new Database(file);
    v1.pragma('journal_mode = WAL');
    v1.exec(`CREATE TABLE collections (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE, description TEXT, chunking TEXT NOT NULL,
      embedder_name TEXT NOT NULL, embedder_dimensions INTEGER NOT NULL, fts_table TEXT NOT NULL UNIQUE, version INTEGER NOT NULL,
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;
      CREATE TABLE documents (id TEXT PRIMARY KEY NOT NULL, collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
      external_id TEXT NOT NULL, title TEXT, source TEXT, content_type TEXT NOT NULL, metadata BLOB NOT NULL, content_hash TEXT NOT NULL,
      char_count INTEGER NOT NULL, chunk_count INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE (collection_id, external_id)) STRICT;
      CREATE TABLE chunks (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
      collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE, idx INTEGER NOT NULL, start_offset INTEGER NOT NULL,
      end_offset INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL, UNIQUE (document_id, idx)) STRICT;
      INSERT INTO collections VALUES ('00000000-0000-4000-8000-000000000001', 'old', NULL, '{"strategy":"AUTO","chunkSize":64,"chunkOverlap":0}', 'e', 4, 'fts_00000000000040008000000000000001', 3, 1, 1);
      INSERT INTO documents VALUES ('d1', '00000000-0000-4000-8000-000000000001', 'x', NULL, NULL, 'TEXT', jsonb('{}'), 'h', 1, 0, 1, 1);
      PRAGMA user_version = 1;`);
    v1.close();
    const store = await openStore();
    await store.init();
    const old = (await store.getCollectionByName('old'))!;
    assert.equal(old.tenant, 'default');
    assert.equal(old.version, 3);
    assert.deepEqual(old.shares, [], 'migration 3: collections written before sharing are shared with nobody');
    assert.equal(old.secondary, null, 'migration 4: collections written before re-embedding have one set of vectors');
    assert.deepEqual(old.embedder, { name: 'e', dimensions: 4 });
    assert.equal((await store.getDocuments(['d1']))[0]?.collectionId, old.id, 'documents survive the table rebuild');
    await store.close();
  });

  it('a write large enough for the writer thread: a bad document fails alone, a replaced one loses every old chunk', async () => {
    // More than 256 chunks in one call: the write is validated and committed on the store's writer thread.
    const store = await openStore();
    const collection = await newCollection(store);
    const rng = mulberry32(11);
    const bad = makeDoc('bad', 120, rng, {});
    bad.chunks[77]!.vector[3] = Number.NaN;
    const results = await store.upsertDocuments(collection.id, [makeDoc('a', 400, rng, {}), bad, makeDoc('c', 30, rng, {})]);
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, false, true],
    );
    const failure = results[1]!;
    assert.ok(!failure.ok && isAppError(failure.error) && failure.error.code === 'BAD_USER_INPUT');
    assert.match(failure.ok ? '' : failure.error.message, /chunk 77 of document "bad" contains a non-finite number/);
    assert.equal(await store.getDocumentByExternalId(collection.id, 'bad'), null);
    assert.equal((await store.getDocumentByExternalId(collection.id, 'a'))?.chunkCount, 400);

    // Replacing "a" with fewer chunks deletes its 400 old ones on the thread too: none is left behind.
    const [replaced] = await store.upsertDocuments(collection.id, [makeDoc('a', 300, rng, {}), makeDoc('d', 5, rng, {})]);
    assert.ok(replaced?.ok);
    const page = await store.listChunks(documentId(collection.id, 'a'), { offset: 0, limit: 1000 });
    assert.equal(page.total, 300);
    assert.deepEqual(
      page.items.map((c) => c.index),
      Array.from({ length: 300 }, (_, i) => i),
    );
    const stats = await store.collectionStats(collection.id);
    assert.deepEqual(stats, { documents: 3, chunks: 300 + 30 + 5 });
  });

  it('a write on the writer thread: the event loop turns meanwhile, reads see none of it until it commits, then all', async () => {
    const store = await openStore();
    const collection = await newCollection(store);
    const rng = mulberry32(5);
    await store.upsertDocument(collection.id, makeDoc('first', 2, rng, {}));
    // A vector search first: the collection's vector index is loaded, so the thread's write must reach it.
    const probe = makeDoc('probe', 1, rng, {}).chunks[0]!.vector;
    await store.search({ collectionId: collection.id, mode: 'VECTOR', text: '', vector: probe, alpha: 1, limit: 1, offset: 0 });
    const big = Array.from({ length: 6 }, (_, i) => makeDoc(`big-${i}`, 500, rng, {}));
    let settled = false;
    const write = store.upsertDocuments(collection.id, big).finally(() => (settled = true));
    // A small write issued meanwhile lands before or after it, never inside it.
    const small = store.upsertDocument(collection.id, makeDoc('small', 3, rng, {}));
    let turns = 0;
    let sawPartial = false;
    while (!settled) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      turns++;
      const stats = await store.collectionStats(collection.id);
      // "first", maybe "small", and the six large documents all or none (the thread may commit before it answers).
      const large = stats.chunks - 2 - (stats.documents % 2 === 0 ? 3 : 0);
      if (large !== 0 && large !== 6 * 500) sawPartial = true;
    }
    assert.ok((await write).every((r) => r.ok));
    await small;
    assert.ok(turns > 1, `the event loop turned ${turns} times during the write`);
    assert.equal(sawPartial, false, 'no read saw part of the large write');
    assert.deepEqual(await store.collectionStats(collection.id), { documents: 8, chunks: 2 + 6 * 500 + 3 });
    // The loaded vector index has the thread's chunks: each one's own vector finds it first.
    for (const doc of [big[0]!, big[5]!]) {
      const chunk = doc.chunks[321]!;
      const [hit] = await store.search({
        collectionId: collection.id,
        mode: 'VECTOR',
        text: '',
        vector: chunk.vector,
        alpha: 1,
        limit: 1,
        offset: 0,
      });
      assert.equal(hit?.chunk.id, chunkId(documentId(collection.id, doc.externalId), 321));
      assert.ok(Math.abs(hit.score - 1) < 1e-5);
    }
  });

  it('a writer thread stopped mid-write fails that write whole; the next large write starts a new thread', async () => {
    const store = await openStore();
    const collection = await newCollection(store);
    const rng = mulberry32(9);
    const writer = new SqliteWriterThread({ dataDir, busyTimeoutMs: 5000, synchronousFull: false });
    try {
      const stopped = assert.rejects(
        writer.upsert(collection.id, [makeDoc('lost', 3000, rng, {})], () => undefined),
        /writer thread/,
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      await writer.close();
      await stopped;
      assert.equal(await store.getDocumentByExternalId(collection.id, 'lost'), null, 'nothing of the stopped write is visible');
      let applied = 0;
      const again = await writer.upsert(collection.id, [makeDoc('kept', 300, rng, {})], (ops) => (applied += ops.length));
      assert.deepEqual(
        again.map((r) => r.ok),
        [true],
      );
      assert.equal(applied, 300);
      assert.equal((await store.getDocumentByExternalId(collection.id, 'kept'))?.chunkCount, 300);
      await assert.rejects(
        writer.upsert('no-such-collection', [makeDoc('x', 1, rng, {})], () => undefined),
        (e: unknown) => isAppError(e) && e.code === 'NOT_FOUND',
      );
    } finally {
      await writer.close();
    }
  });

  it('keeps everything across close and reopen (durability)', async () => {
    const rng = mulberry32(7);
    const first = await openStore();
    const c = await newCollection(first, 'durable');
    const writes = Array.from({ length: 20 }, (_, i) => makeDoc(`doc-${i}`, 1 + (i % 4), rng, { group: i % 3 }));
    const bulk = await first.upsertDocuments(c.id, writes.slice(0, 15));
    assert.ok(bulk.every((r) => r.ok));
    for (const w of writes.slice(15)) await first.upsertDocument(c.id, w);
    await first.updateDocumentMetadata(documentId(c.id, 'doc-0'), { group: 9 });
    assert.deepEqual(await first.deleteDocuments([documentId(c.id, 'doc-1')]), { documents: 1, chunks: 2 });
    const query = writes[5]!.chunks[0]!.vector;
    const filter: Filter = { kind: 'condition', field: { type: 'metadata', key: 'group' }, op: 'ne', value: 2 };
    const before = {
      collection: await first.getCollection(c.id),
      docs: await first.listDocuments(c.id, { offset: 0, limit: 100 }),
      vector: await first.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: query, alpha: 1, limit: 10, offset: 0, filter }),
      keyword: await first.search({ collectionId: c.id, mode: 'KEYWORD', text: 'word3 word7', alpha: 0, limit: 10, offset: 0 }),
      hybrid: await first.search({ collectionId: c.id, mode: 'HYBRID', text: 'word3', vector: query, alpha: 0.5, limit: 10, offset: 0 }),
    };
    assert.equal(before.docs.total, 19);
    assert.ok(before.vector.length > 0 && before.keyword.length > 0);
    await first.close();

    const second = await openStore();
    assert.deepEqual(await second.getCollection(c.id), before.collection);
    assert.deepEqual(await second.listDocuments(c.id, { offset: 0, limit: 100 }), before.docs);
    assert.deepEqual(
      await second.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: query, alpha: 1, limit: 10, offset: 0, filter }),
      before.vector,
    );
    assert.deepEqual(
      await second.search({ collectionId: c.id, mode: 'KEYWORD', text: 'word3 word7', alpha: 0, limit: 10, offset: 0 }),
      before.keyword,
    );
    assert.deepEqual(
      await second.search({ collectionId: c.id, mode: 'HYBRID', text: 'word3', vector: query, alpha: 0.5, limit: 10, offset: 0 }),
      before.hybrid,
    );
    const top = await second.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: query, alpha: 1, limit: 1, offset: 0 });
    assert.equal(top[0]!.chunk.id, chunkId(top[0]!.document.id, 0));
    assert.equal(top[0]!.document.externalId, 'doc-5');
    assert.ok(Math.abs(top[0]!.score - 1) < 1e-5);
  });

  it('keeps the vector index exact across interleaved writes and searches', async () => {
    const rng = mulberry32(42);
    const store = await openStore();
    const c = await newCollection(store, 'interleaved');
    /** The model: what the collection holds, by external id. */
    const model = new Map<string, { vectors: Float32Array[]; group: number }>();
    let nextId = 0;
    let searches = 0;

    const check = async (filterGroup: number | null): Promise<void> => {
      const query = randomVector(rng);
      const filter: Filter | undefined =
        filterGroup === null ? undefined : { kind: 'condition', field: { type: 'metadata', key: 'group' }, op: 'eq', value: filterGroup };
      const expected: { key: string; score: number }[] = [];
      for (const [externalId, entry] of model) {
        if (filterGroup !== null && entry.group !== filterGroup) continue;
        entry.vectors.forEach((v, i) => expected.push({ key: `${externalId}#${i}`, score: cosine(query, v) }));
      }
      expected.sort((a, b) => b.score - a.score);
      const hits = await store.search({
        collectionId: c.id,
        mode: 'VECTOR',
        text: '',
        vector: query,
        alpha: 1,
        limit: 10,
        offset: 0,
        filter,
      });
      assert.deepEqual(
        hits.map(hitKey),
        expected.slice(0, 10).map((e) => e.key),
        `search #${searches}`,
      );
      hits.forEach((h, i) => assert.ok(Math.abs(h.score - expected[i]!.score) < 1e-5));
      searches++;
    };

    for (let step = 0; step < 400; step++) {
      const r = rng();
      const keys = [...model.keys()];
      const pick = (): string => keys[Math.floor(rng() * keys.length)]!;
      if (r < 0.3 || keys.length < 3) {
        const externalId = `d${nextId++}`;
        const write = makeDoc(externalId, 1 + Math.floor(rng() * 4), rng, { group: Math.floor(rng() * 3) });
        await store.upsertDocument(c.id, write);
        model.set(externalId, { vectors: write.chunks.map((ch) => ch.vector), group: write.metadata.group as number });
      } else if (r < 0.45) {
        const externalId = pick();
        const write = makeDoc(externalId, 1 + Math.floor(rng() * 5), rng, { group: Math.floor(rng() * 3) });
        await store.upsertDocument(c.id, write);
        model.set(externalId, { vectors: write.chunks.map((ch) => ch.vector), group: write.metadata.group as number });
      } else if (r < 0.55) {
        const externalId = pick();
        const [doc] = await store.getDocuments([documentId(c.id, externalId)]);
        await store.deleteDocuments([doc!.id]);
        model.delete(externalId);
      } else if (r < 0.62) {
        const externalId = pick();
        const group = Math.floor(rng() * 3);
        await store.updateDocumentMetadata(documentId(c.id, externalId), { group });
        model.get(externalId)!.group = group;
      } else if (r < 0.7) {
        const batch = [0, 1, 2].map(() => (rng() < 0.5 && keys.length > 0 ? pick() : `d${nextId++}`));
        const writes = batch.map((externalId) => makeDoc(externalId, 1 + Math.floor(rng() * 3), rng, { group: Math.floor(rng() * 3) }));
        const results = await store.upsertDocuments(c.id, writes);
        assert.ok(results.every((x) => x.ok));
        writes.forEach((w) => model.set(w.externalId, { vectors: w.chunks.map((ch) => ch.vector), group: w.metadata.group as number }));
      } else if (step > 20) {
        // The first search comes after some writes: the index loads from SQLite, then follows the writes.
        await check(r < 0.85 ? null : Math.floor(rng() * 3));
      }
    }
    assert.ok(searches > 50, `searches ran: ${searches}`);
    const totalChunks = [...model.values()].reduce((n, e) => n + e.vectors.length, 0);
    assert.deepEqual(await store.collectionStats(c.id), { documents: model.size, chunks: totalChunks });

    // A fresh process view (index rebuilt from SQLite) agrees with the incrementally maintained one.
    const query = randomVector(rng);
    const request = { collectionId: c.id, mode: 'VECTOR' as const, text: '', vector: query, alpha: 1, limit: 25, offset: 0 };
    const incremental = await store.search(request);
    await store.close();
    const reopened = await openStore();
    assert.deepEqual((await reopened.search(request)).map(hitKey), incremental.map(hitKey));
  });

  it('a loaded vector index notices writes made by another store instance on the same file', async () => {
    const rng = mulberry32(11);
    const a = await openStore();
    const b = await openStore();
    const c = await newCollection(a, 'shared');
    const vectorSearch = (store: EmbeddedKnowledgeStore, vector: Float32Array) =>
      store.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector, alpha: 1, limit: 1, offset: 0 });
    const one = makeDoc('one', 2, rng, {});
    await a.upsertDocument(c.id, one);
    assert.equal((await vectorSearch(a, one.chunks[1]!.vector))[0]!.document.externalId, 'one');
    assert.equal((await vectorSearch(b, one.chunks[0]!.vector))[0]!.document.externalId, 'one');

    const two = makeDoc('two', 2, rng, {});
    await b.upsertDocument(c.id, two);
    const [hit] = await vectorSearch(a, two.chunks[1]!.vector);
    assert.equal(hit!.document.externalId, 'two', 'A reloads after B wrote');
    assert.ok(Math.abs(hit!.score - 1) < 1e-5);

    const three = makeDoc('three', 1, rng, {});
    await a.upsertDocument(c.id, three);
    await b.deleteDocuments([documentId(c.id, 'two')]);
    assert.equal((await vectorSearch(b, three.chunks[0]!.vector))[0]!.document.externalId, 'three', 'B reloads after A wrote');
    const afterDelete = await a.search({
      collectionId: c.id,
      mode: 'VECTOR',
      text: '',
      vector: two.chunks[1]!.vector,
      alpha: 1,
      limit: 10,
      offset: 0,
    });
    assert.deepEqual(afterDelete.map(hitKey).sort(), ['one#0', 'one#1', 'three#0'], 'A drops what B deleted');
  });

  it('vectorIndex auto: saves each graph at close, maps it again at restart, and deletes it with its collection', async () => {
    const rng = mulberry32(17);
    const opened: string[] = [];
    const annStore = async (): Promise<EmbeddedKnowledgeStore> => {
      const store = new EmbeddedKnowledgeStore({
        dataDir,
        vectorIndex: 'auto',
        annIndex: { exactBelowRows: 1 },
        onAnnOpened: (_collection, result) => opened.push(`${result.status} ${result.verified}`),
      });
      await store.init();
      open.push(store);
      return store;
    };
    const first = await annStore();
    const c = await newCollection(first, 'ann');
    assert.deepEqual(first.vectorIndexState(c.id), { approximate: false, indexedFraction: 1 }, 'not searched yet: exact');
    const docs = Array.from({ length: 6 }, (_, i) => makeDoc(`d${i}`, 5, rng, {}));
    await first.upsertDocuments(c.id, docs);
    const query = randomVector(rng);
    const vectorSearch = (store: EmbeddedKnowledgeStore) =>
      store.search({ collectionId: c.id, mode: 'VECTOR', text: '', vector: query, alpha: 1, limit: 7, offset: 0 });
    const expected = (await vectorSearch(first)).map(hitKey);
    await first.settleVectorIndex(c.id);
    assert.equal(first.vectorIndexStats(c.id)?.indexedFraction, 1);
    assert.deepEqual(first.vectorIndexState(c.id), { approximate: true, indexedFraction: 1 }, 'what stats { vectorIndex } shows');
    assert.deepEqual((await vectorSearch(first)).map(hitKey), expected, 'the graph answers as the exact scan did');
    await first.deleteDocuments([documentId(c.id, 'd0')]);
    const afterDelete = (await vectorSearch(first)).map(hitKey);
    assert.ok(afterDelete.every((key) => !key.startsWith('d0#')));
    // Caught up before close, so the saved graph is at the collection's version (close saves only what the builder
    // applied; rows it had not reached would be re-checked against the file at the next start).
    await first.settleVectorIndex(c.id);
    await first.close();
    const file = join(dataDir, 'ann', `${c.id}.usearch`);
    assert.ok(existsSync(file), 'saved at close');

    const second = await annStore();
    assert.deepEqual((await vectorSearch(second)).map(hitKey), afterDelete, 'exact until the saved graph is open');
    await second.settleVectorIndex(c.id);
    assert.deepEqual(opened.at(-1), 'loaded 0', 'the saved graph is mapped at the same version, rows unchecked');
    const stats = second.vectorIndexStats(c.id)!;
    assert.equal(stats.indexedFraction, 1);
    assert.deepEqual((await vectorSearch(second)).map(hitKey), afterDelete);
    assert.ok(second.vectorIndexStats(c.id)!.searches.graph > 0, 'served by the graph');
    assert.equal(first.vectorIndexStats(c.id), null, 'a closed store holds no index');

    await second.deleteCollection(c.id);
    await second.close();
    assert.ok(!existsSync(file), 'the graph file goes with its collection');
  });

  it('a collection found by name is never stale: renames, deletes and creates by this or another instance', async () => {
    const a = await openStore();
    const b = await openStore();
    const c = await newCollection(a, 'before');
    assert.equal((await a.getCollectionByName('before'))?.id, c.id);
    assert.equal(await a.getCollectionByName('after'), null);
    await b.updateCollection(c.id, { name: 'after' });
    assert.equal(await a.getCollectionByName('before'), null, 'renamed by another instance');
    assert.equal((await a.getCollectionByName('after'))?.name, 'after');
    const docs = [makeDoc('d0', 2, mulberry32(3), {})];
    await b.upsertDocuments(c.id, docs);
    assert.equal((await a.getCollectionByName('after'))?.version, (await b.getCollection(c.id))?.version, 'the version moves with writes');
    await a.updateCollection(c.id, { name: 'again' });
    assert.equal(await a.getCollectionByName('after'), null, 'renamed by this instance');
    await b.deleteCollection(c.id);
    assert.equal(await a.getCollectionByName('again'), null, 'deleted by another instance');
    const fresh = await newCollection(b, 'after');
    assert.equal((await a.getCollectionByName('after'))?.id, fresh.id, 'created by another instance');
  });

  it('bulk upsert isolates a failing document and commits the others with one version bump', async () => {
    const rng = mulberry32(3);
    const store = await openStore();
    const c = await newCollection(store, 'bulk');
    const bad = makeDoc('bad', 2, rng, {});
    bad.chunks[1]!.vector = new Float32Array(DIM - 2);
    const dupIndex = makeDoc('dup-index', 2, rng, {});
    dupIndex.chunks[1]!.index = 0;
    const results = await store.upsertDocuments(c.id, [makeDoc('a', 2, rng, {}), bad, makeDoc('b', 3, rng, {}), dupIndex]);
    assert.deepEqual(
      results.map((r) => [r.externalId, r.ok, r.ok ? null : r.error.code]),
      [
        ['a', true, null],
        ['bad', false, 'BAD_USER_INPUT'],
        ['b', true, null],
        ['dup-index', false, 'BAD_USER_INPUT'],
      ],
    );
    assert.deepEqual(await store.collectionStats(c.id), { documents: 2, chunks: 5 });
    assert.equal((await store.getCollection(c.id))!.version, c.version + 1);
    await assert.rejects(
      store.upsertDocuments('00000000-0000-4000-8000-000000000000', [makeDoc('x', 1, rng, {})]),
      (e: unknown) => isAppError(e) && e.code === 'NOT_FOUND',
    );
  });
});

// ------------------------------------------------------------------ helpers

function hitKey(hit: SearchHit): string {
  return `${hit.document.externalId}#${hit.chunk.index}`;
}

function makeDoc(externalId: string, chunkCount: number, rng: () => number, metadata: Record<string, number>): DocumentWrite {
  const chunks = Array.from({ length: chunkCount }, (_, index) => {
    const text = `chunk ${index} of ${externalId} word${Math.floor(rng() * 10)} word${Math.floor(rng() * 10)}`;
    return { index, text, startOffset: -1, endOffset: -1, vector: randomVector(rng) };
  });
  return {
    externalId,
    title: externalId,
    source: null,
    contentType: 'TEXT',
    metadata,
    contentHash: sha256Hex(chunks.map((ch) => ch.text).join('\n')),
    charCount: chunks.reduce((n, ch) => n + ch.text.length, 0),
    chunks,
  };
}

function randomVector(rng: () => number): Float32Array {
  return Float32Array.from({ length: DIM }, () => rng() * 2 - 1);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}
