import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isAppError, type ErrorCode } from '../../src/errors';
import { chunkId, documentId, sha256Hex } from '../../src/ids';
import { relativeScoreFusion } from '../../src/retrieval/fusion';
import type {
  CollectionRecord,
  DocumentRecord,
  DocumentWrite,
  Filter,
  FilterScalar,
  KnowledgeStore,
  Metadata,
  NewCollection,
  SearchHit,
  SearchMode,
  SearchRequest,
} from '../../src/ports/knowledge-store.port';

/**
 * The KnowledgeStore contract: every adapter runs it (the embedded store always, Weaviate when WEAVIATE_URL is
 * set). It only uses the port: random collection names, small vectors it builds itself, and it deletes the
 * collections it created before calling `cleanup`.
 */
export function defineKnowledgeStoreContractSuite(
  adapterName: string,
  makeStore: () => Promise<{
    store: KnowledgeStore;
    cleanup: () => Promise<void>;
    /**
     * Called before each search through the suite's helper: lets an adapter with a background index (the embedded
     * ANN index) catch up, so that the search goes through that index rather than its not-yet-indexed tail.
     */
    settle?: (collectionId: string) => Promise<void>;
  }>,
): void {
  describe(`KnowledgeStore contract: ${adapterName}`, () => {
    let store: KnowledgeStore;
    let cleanup: () => Promise<void>;
    let settle: ((collectionId: string) => Promise<void>) | undefined;
    let created: string[] = [];

    beforeEach(async () => {
      const made = await makeStore();
      store = made.store;
      cleanup = made.cleanup;
      settle = made.settle;
      created = [];
      await store.init();
    });

    afterEach(async () => {
      for (const id of created) {
        try {
          await store.deleteCollection(id);
        } catch {
          // best effort: the test may have closed or broken the store on purpose
        }
      }
      await cleanup();
    });

    async function newCollection(overrides: Partial<NewCollection> = {}): Promise<CollectionRecord> {
      const collection = await store.createCollection({
        name: uniqueName(),
        description: null,
        chunking: { strategy: 'SENTENCE', chunkSize: 200, chunkOverlap: 20 },
        embedder: { name: 'contract-test-v1', dimensions: DIM },
        ...overrides,
      });
      created.push(collection.id);
      return collection;
    }

    const version = async (id: string): Promise<number> => (await store.getCollection(id))!.version;

    const search = async (collectionId: string, mode: SearchMode, rest: Partial<SearchRequest> = {}): Promise<SearchHit[]> => {
      await settle?.(collectionId);
      return store.search({ collectionId, mode, text: '', alpha: 0.5, limit: 10, offset: 0, ...rest });
    };

    describe('collections', () => {
      it('creates and reads a collection; a duplicate name is a CONFLICT', async () => {
        const name = uniqueName();
        const c = await newCollection({ name, description: 'Contract docs' });
        assert.equal(typeof c.id, 'string');
        assert.ok(c.id.length > 0);
        assert.equal(c.name, name);
        assert.equal(c.description, 'Contract docs');
        assert.deepEqual(c.chunking, { strategy: 'SENTENCE', chunkSize: 200, chunkOverlap: 20 });
        assert.deepEqual(c.embedder, { name: 'contract-test-v1', dimensions: DIM });
        assert.ok(Number.isInteger(c.version));
        assert.ok(c.createdAt instanceof Date && c.updatedAt instanceof Date);
        assert.deepEqual(await store.getCollection(c.id), c);
        assert.deepEqual(await store.getCollectionByName(name), c);
        assert.equal(await store.getCollection(randomUUID()), null);
        assert.equal(await store.getCollectionByName(uniqueName()), null);
        await assert.rejects(
          store.createCollection({
            name,
            description: null,
            chunking: { strategy: 'AUTO', chunkSize: 100, chunkOverlap: 0 },
            embedder: { name: 'other', dimensions: 4 },
          }),
          withCode('CONFLICT'),
        );
        assert.deepEqual(await store.getCollection(c.id), c, 'the failed create changed nothing');
      });

      it('keeps collections per tenant: names unique per tenant, lookups and listings filtered by tenant', async () => {
        const name = uniqueName();
        const [t1, t2] = [`t1-${randomUUID().slice(0, 8)}`, `t2-${randomUUID().slice(0, 8)}`];
        const plain = await newCollection();
        assert.equal(plain.tenant, 'default', 'no tenant given: the default tenant');
        const a = await newCollection({ name, tenant: t1 });
        const b = await newCollection({ name, tenant: t2 });
        assert.notEqual(a.id, b.id, 'the same name in two tenants is two collections');
        assert.equal(a.tenant, t1);
        assert.deepEqual(await store.getCollection(b.id), b);
        assert.equal((await store.getCollectionByName(name, t1))!.id, a.id);
        assert.equal((await store.getCollectionByName(name, t2))!.id, b.id);
        assert.equal(await store.getCollectionByName(name), null, 'not in the default tenant');
        assert.equal(await store.getCollectionByName(plain.name, t1), null);
        await assert.rejects(
          store.createCollection({ tenant: t1, name, description: null, chunking: a.chunking, embedder: a.embedder }),
          withCode('CONFLICT'),
        );
        const listed = await store.listCollections({ offset: 0, limit: 10 }, { tenant: t1 });
        assert.deepEqual(
          listed.items.map((c) => c.id),
          [a.id],
        );
        assert.equal(listed.total, 1);
        const renamed = await store.updateCollection(b.id, { name: uniqueName() });
        assert.equal(renamed.tenant, t2, 'a rename keeps the tenant');
        assert.equal((await store.getCollectionByName(name, t1))!.id, a.id);
      });

      it('shares a collection with other tenants: grants replace, revoke, bump version, list as shared, survive a rename', async () => {
        const [owner, t1, t2] = [`own-${randomUUID().slice(0, 8)}`, `b1-${randomUUID().slice(0, 8)}`, `a2-${randomUUID().slice(0, 8)}`];
        const c = await newCollection({ tenant: owner });
        const other = await newCollection({ tenant: owner });
        const theirs = await newCollection({ tenant: t1 });
        assert.deepEqual(c.shares, [], 'a new collection is shared with nobody');
        const v0 = c.version;
        const r1 = await store.setCollectionShare(c.id, t1, 'READER');
        assert.deepEqual(r1.shares, [{ tenant: t1, role: 'READER' }]);
        assert.ok(r1.version > v0, 'sharing bumps version');
        const r2 = await store.setCollectionShare(c.id, t2, 'WRITER');
        assert.deepEqual(
          r2.shares,
          [
            { tenant: t2, role: 'WRITER' },
            { tenant: t1, role: 'READER' },
          ],
          'sorted by tenant',
        );
        const r3 = await store.setCollectionShare(c.id, t1, 'WRITER');
        assert.deepEqual(
          r3.shares,
          [
            { tenant: t2, role: 'WRITER' },
            { tenant: t1, role: 'WRITER' },
          ],
          'a grant replaces the earlier one',
        );
        assert.deepEqual((await store.getCollection(c.id))!.shares, r3.shares, 'read back as written');
        assert.deepEqual((await store.getCollectionByName(c.name, owner))!.shares, r3.shares);

        const sharedWithT1 = await store.listCollections({ offset: 0, limit: 10 }, { tenant: t1, includeShared: true });
        // By creation time, then id: collections made within one millisecond tie on createdAt.
        const t1Order = [c, theirs].sort(compareCreated).map((x) => x.id);
        assert.deepEqual(
          sharedWithT1.items.map((x) => x.id),
          t1Order,
          'own and shared, by creation time',
        );
        assert.equal(sharedWithT1.total, 2);
        const page2 = await store.listCollections({ offset: 1, limit: 1 }, { tenant: t1, includeShared: true });
        assert.deepEqual(
          page2.items.map((x) => x.id),
          [t1Order[1]],
        );
        assert.deepEqual(
          (await store.listCollections({ offset: 0, limit: 10 }, { tenant: t1 })).items.map((x) => x.id),
          [theirs.id],
          'without includeShared: own only',
        );
        assert.deepEqual(
          (await store.listCollections({ offset: 0, limit: 10 }, { tenant: owner, includeShared: true })).items.map((x) => x.id),
          [c, other].sort(compareCreated).map((x) => x.id),
        );

        const renamed = await store.updateCollection(c.id, { name: uniqueName() });
        assert.deepEqual(renamed.shares, r3.shares, 'a rename keeps the shares');
        const revoked = await store.setCollectionShare(c.id, t1, null);
        assert.deepEqual(revoked.shares, [{ tenant: t2, role: 'WRITER' }]);
        assert.ok(revoked.version > renamed.version, 'revoking bumps version');
        assert.deepEqual(
          (await store.setCollectionShare(c.id, t1, null)).shares,
          [{ tenant: t2, role: 'WRITER' }],
          'revoking twice is no error',
        );
        assert.deepEqual(
          (await store.listCollections({ offset: 0, limit: 10 }, { tenant: t1, includeShared: true })).items.map((x) => x.id),
          [theirs.id],
        );

        await assert.rejects(store.setCollectionShare(randomUUID(), t1, 'READER'), withCode('NOT_FOUND'));
        await assert.rejects(store.setCollectionShare(c.id, owner, 'READER'), withCode('BAD_USER_INPUT'));
      });

      it('renames and re-describes, bumping version; CONFLICT for a taken name, NOT_FOUND for an unknown id', async () => {
        const a = await newCollection({ description: 'first' });
        const b = await newCollection();
        const newName = uniqueName();
        const renamed = await store.updateCollection(a.id, { name: newName });
        assert.equal(renamed.id, a.id);
        assert.equal(renamed.name, newName);
        assert.equal(renamed.description, 'first');
        assert.ok(renamed.version > a.version);
        assert.equal(await store.getCollectionByName(a.name), null);
        assert.equal((await store.getCollectionByName(newName))!.id, a.id);

        const described = await store.updateCollection(a.id, { description: 'second' });
        assert.equal(described.name, newName);
        assert.equal(described.description, 'second');
        assert.ok(described.version > renamed.version);
        assert.equal((await store.updateCollection(a.id, { description: null })).description, null);

        await assert.rejects(store.updateCollection(a.id, { name: b.name }), withCode('CONFLICT'));
        assert.equal((await store.getCollection(a.id))!.name, newName);
        await assert.rejects(store.updateCollection(randomUUID(), { name: uniqueName() }), withCode('NOT_FOUND'));
      });

      it('lists collections by creation time then id, in non-overlapping pages', async () => {
        const mine = [await newCollection(), await newCollection(), await newCollection()];
        const all: CollectionRecord[] = [];
        let total = -1;
        for (let offset = 0; ; offset += 2) {
          const page = await store.listCollections({ offset, limit: 2 });
          if (total < 0) total = page.total;
          assert.ok(page.items.length <= 2);
          all.push(...page.items);
          if (page.items.length < 2) break;
        }
        assert.equal(all.length, total);
        assert.equal(new Set(all.map((c) => c.id)).size, all.length, 'no collection on two pages');
        for (let i = 1; i < all.length; i++) {
          assert.ok(compareCreated(all[i - 1]!, all[i]!) < 0, 'ordered by createdAt, then id');
        }
        const mineIds = new Set(mine.map((c) => c.id));
        assert.deepEqual(
          all.filter((x) => mineIds.has(x.id)).map((x) => x.id),
          [...mine].sort(compareCreated).map((c) => c.id),
          'every new collection is listed, in order',
        );
        const empty = await store.listCollections({ offset: 0, limit: 0 });
        assert.deepEqual(empty.items, []);
        assert.ok(empty.total >= 3);
      });

      it('tracks stats and bumps version on every write', async () => {
        const c = await newCollection();
        assert.deepEqual(await store.collectionStats(c.id), { documents: 0, chunks: 0 });
        let last = c.version;
        const bumped = async (): Promise<void> => {
          const now = await version(c.id);
          assert.ok(now > last, `version ${now} > ${last}`);
          last = now;
        };
        const d1 = await store.upsertDocument(c.id, doc('d1', ['one', 'two', 'three']));
        await bumped();
        assert.deepEqual(await store.collectionStats(c.id), { documents: 1, chunks: 3 });
        await store.upsertDocument(c.id, doc('d2', ['four', 'five']));
        await bumped();
        assert.deepEqual(await store.collectionStats(c.id), { documents: 2, chunks: 5 });
        await store.upsertDocument(c.id, doc('d1', ['only one now']));
        await bumped();
        assert.deepEqual(await store.collectionStats(c.id), { documents: 2, chunks: 3 });
        await store.updateDocumentMetadata(d1.id, { touched: true });
        await bumped();
        await store.deleteDocuments([d1.id]);
        await bumped();
        assert.deepEqual(await store.collectionStats(c.id), { documents: 1, chunks: 2 });
      });

      it('deleteCollection removes the collection, its documents and chunks, and returns the counts', async () => {
        const c = await newCollection();
        const other = await newCollection();
        const a = await store.upsertDocument(c.id, doc('a', ['apple one', 'apple two', 'apple three']));
        const b = await store.upsertDocument(c.id, doc('b', ['banana one', 'banana two']));
        const kept = await store.upsertDocument(other.id, doc('a', ['apple elsewhere']));
        const chunkIds = [0, 1, 2].map((i) => chunkId(a.id, i)).concat([0, 1].map((i) => chunkId(b.id, i)));

        assert.deepEqual(await store.deleteCollection(c.id), { documents: 2, chunks: 5 });
        assert.equal(await store.getCollection(c.id), null);
        assert.equal(await store.getCollectionByName(c.name), null);
        assert.deepEqual(await store.getDocuments([a.id, b.id]), [null, null]);
        assert.deepEqual(
          await store.getChunks(chunkIds),
          chunkIds.map(() => null),
        );
        assert.equal((await store.getContentHashes(c.id, ['a', 'b'])).size, 0);
        assert.equal((await store.listDocuments(c.id, { offset: 0, limit: 10 })).total, 0);
        assert.equal((await store.listChunks(a.id, { offset: 0, limit: 10 })).total, 0);
        const listed = await allCollections(store);
        assert.ok(!listed.some((x) => x.id === c.id));
        assert.equal(await store.deleteCollection(c.id), null, 'a second delete finds nothing');

        assert.deepEqual(await store.getDocuments([kept.id]), [kept], 'other collections are untouched');
        const hits = await search(other.id, 'KEYWORD', { text: 'apple' });
        assert.deepEqual(
          hits.map((h) => h.chunk.id),
          [chunkId(kept.id, 0)],
        );
        const again = await newCollection({ name: c.name });
        assert.deepEqual(await store.collectionStats(again.id), { documents: 0, chunks: 0 }, 'the name is free again');
      });
    });

    describe('documents', () => {
      it('inserts a document with deterministic document and chunk ids', async () => {
        const c = await newCollection();
        const metadata: Metadata = { lang: 'en', year: 2024, tags: ['a', 'b'], nested: { x: 1.5, ok: true }, none: null };
        const write = doc('ext-1', ['alpha text', 'beta text', 'gamma'], {
          title: 'Title',
          source: 'https://example.com/1',
          contentType: 'MARKDOWN',
          metadata,
          charCount: 31,
        });
        const rec = await store.upsertDocument(c.id, write);
        assert.equal(rec.id, documentId(c.id, 'ext-1'));
        assert.equal(rec.collectionId, c.id);
        assert.equal(rec.externalId, 'ext-1');
        assert.equal(rec.title, 'Title');
        assert.equal(rec.source, 'https://example.com/1');
        assert.equal(rec.contentType, 'MARKDOWN');
        assert.deepEqual(rec.metadata, metadata);
        assert.equal(rec.contentHash, write.contentHash);
        assert.equal(rec.charCount, 31);
        assert.equal(rec.chunkCount, 3);
        assert.ok(rec.createdAt instanceof Date && rec.updatedAt instanceof Date);
        assert.deepEqual(await store.getDocuments([rec.id]), [rec]);
        assert.deepEqual(await store.getDocumentByExternalId(c.id, 'ext-1'), rec);
        assert.equal(await store.getDocumentByExternalId(c.id, 'ext-2'), null);

        const chunks = await store.listChunks(rec.id, { offset: 0, limit: 10 });
        assert.equal(chunks.total, 3);
        assert.deepEqual(
          chunks.items,
          write.chunks.map((ch) => ({
            id: chunkId(rec.id, ch.index),
            documentId: rec.id,
            collectionId: c.id,
            index: ch.index,
            text: ch.text,
            startOffset: ch.startOffset,
            endOffset: ch.endOffset,
          })),
        );
      });

      it('replaces a document and all its chunks; fewer chunks leave no stale ones', async () => {
        const c = await newCollection();
        const v1 = await store.upsertDocument(
          c.id,
          doc(
            'e',
            [
              { text: 'one apple', vector: axis(0) },
              { text: 'two banana', vector: axis(1) },
              { text: 'three cherry', vector: axis(2) },
            ],
            { metadata: { v: 1 } },
          ),
        );
        const v2write = doc('e', [{ text: 'one apricot', vector: axis(3) }], { metadata: { v: 2 }, title: 'New' });
        const v2 = await store.upsertDocument(c.id, v2write);
        assert.equal(v2.id, v1.id);
        assert.equal(v2.createdAt.getTime(), v1.createdAt.getTime(), 'createdAt survives a replace');
        assert.ok(v2.updatedAt.getTime() >= v1.updatedAt.getTime());
        assert.equal(v2.chunkCount, 1);
        assert.equal(v2.title, 'New');
        assert.deepEqual(v2.metadata, { v: 2 });
        assert.equal(v2.contentHash, v2write.contentHash);
        assert.deepEqual(await store.getDocuments([v1.id]), [v2]);

        const chunks = await store.listChunks(v1.id, { offset: 0, limit: 10 });
        assert.equal(chunks.total, 1);
        assert.deepEqual(
          chunks.items.map((ch) => [ch.id, ch.text]),
          [[chunkId(v1.id, 0), 'one apricot']],
        );
        const byId = await store.getChunks([0, 1, 2].map((i) => chunkId(v1.id, i)));
        assert.equal(byId[0]!.text, 'one apricot');
        assert.deepEqual(byId.slice(1), [null, null]);
        assert.deepEqual(await store.collectionStats(c.id), { documents: 1, chunks: 1 });
        assert.deepEqual(await search(c.id, 'KEYWORD', { text: 'banana cherry apple' }), []);
        assert.equal((await search(c.id, 'KEYWORD', { text: 'apricot' })).length, 1);
        const nearest = await search(c.id, 'VECTOR', { vector: axis(1) });
        assert.deepEqual(
          nearest.map((h) => h.chunk.id),
          [chunkId(v1.id, 0)],
          'old vectors are gone',
        );
        assert.ok(Math.abs(nearest[0]!.vectorScore!) < 1e-5, 'the new vector is orthogonal to the query');

        const v3 = await store.upsertDocument(c.id, doc('e', ['x one', 'x two', 'x three', 'x four']));
        assert.equal(v3.chunkCount, 4);
        assert.equal((await store.listChunks(v1.id, { offset: 0, limit: 10 })).total, 4);
      });

      it('returns content hashes of existing documents only, per collection', async () => {
        const c = await newCollection();
        const other = await newCollection();
        const a = doc('a', ['first']);
        const b = doc('b', ['second']);
        await store.upsertDocument(c.id, a);
        await store.upsertDocument(c.id, b);
        await store.upsertDocument(other.id, doc('a', ['different']));
        const hashes = await store.getContentHashes(c.id, ['a', 'b', 'missing']);
        assert.deepEqual([...hashes.entries()].sort(), [
          ['a', a.contentHash],
          ['b', b.contentHash],
        ]);
        assert.equal((await store.getContentHashes(c.id, [])).size, 0);
        assert.deepEqual([...(await store.getContentHashes(other.id, ['a', 'b'])).keys()], ['a']);
      });

      it('rejects a vector of the wrong dimension with BAD_USER_INPUT and writes nothing; NOT_FOUND for an unknown collection', async () => {
        const c = await newCollection();
        const good = await store.upsertDocument(c.id, doc('kept', ['old one', 'old two']));
        const before = await version(c.id);
        const bad = (externalId: string): DocumentWrite =>
          doc(externalId, [
            { text: 'fine', vector: axis(0) },
            { text: 'wrong', vector: new Float32Array(DIM - 1).fill(0.5) },
          ]);
        await assert.rejects(store.upsertDocument(c.id, bad('new')), withCode('BAD_USER_INPUT'));
        await assert.rejects(store.upsertDocument(c.id, bad('kept')), withCode('BAD_USER_INPUT'));
        assert.equal(await store.getDocumentByExternalId(c.id, 'new'), null);
        assert.deepEqual(await store.getDocuments([good.id]), [good], 'the old version is intact');
        assert.equal((await store.listChunks(good.id, { offset: 0, limit: 10 })).total, 2);
        assert.equal(await version(c.id), before);
        await assert.rejects(store.upsertDocument(randomUUID(), doc('x', ['text'])), withCode('NOT_FOUND'));
        await assert.rejects(search(c.id, 'VECTOR', { vector: new Float32Array(DIM + 1).fill(0.1) }), withCode('BAD_USER_INPUT'));
      });

      it('deletes documents by id with their chunks, skipping unknown ids, and bumps each collection', async () => {
        const c1 = await newCollection();
        const c2 = await newCollection();
        const d1 = await store.upsertDocument(c1.id, doc('d1', ['shared word one', 'shared word two']));
        const d2 = await store.upsertDocument(c1.id, doc('d2', ['shared word three', 'x', 'y']));
        const d3 = await store.upsertDocument(c2.id, doc('d3', ['shared word four']));
        const [v1, v2] = [await version(c1.id), await version(c2.id)];

        const counts = await store.deleteDocuments([d1.id, d3.id, randomUUID(), d1.id]);
        assert.deepEqual(counts, { documents: 2, chunks: 3 });
        assert.deepEqual(await store.getDocuments([d1.id, d2.id, d3.id]), [null, d2, null]);
        assert.deepEqual(await store.getChunks([chunkId(d1.id, 0), chunkId(d1.id, 1), chunkId(d3.id, 0)]), [null, null, null]);
        assert.deepEqual(await store.collectionStats(c1.id), { documents: 1, chunks: 3 });
        assert.deepEqual(await store.collectionStats(c2.id), { documents: 0, chunks: 0 });
        assert.ok((await version(c1.id)) > v1 && (await version(c2.id)) > v2);
        const hits = await search(c1.id, 'KEYWORD', { text: 'shared' });
        assert.deepEqual(
          hits.map((h) => h.document.id),
          [d2.id],
        );
        assert.deepEqual(await store.deleteDocuments([]), { documents: 0, chunks: 0 });
        assert.deepEqual(await store.deleteDocuments([randomUUID()]), { documents: 0, chunks: 0 });
      });

      it('updates metadata without touching chunks or vectors', async () => {
        const c = await newCollection();
        const d = await store.upsertDocument(
          c.id,
          doc(
            'm',
            [
              { text: 'metadata keeps searching', vector: axis(2) },
              { text: 'second piece', vector: axis(5) },
            ],
            { metadata: { team: 'a', n: 1 } },
          ),
        );
        const before = await version(c.id);
        const updated = await store.updateDocumentMetadata(d.id, { team: 'b', tags: ['x'] });
        assert.ok(updated);
        assert.deepEqual(updated.metadata, { team: 'b', tags: ['x'] });
        assert.equal(updated.chunkCount, 2);
        assert.equal(updated.contentHash, d.contentHash);
        assert.equal(updated.createdAt.getTime(), d.createdAt.getTime());
        assert.deepEqual(await store.getDocuments([d.id]), [updated]);
        assert.ok((await version(c.id)) > before);

        assert.deepEqual(
          (await store.listChunks(d.id, { offset: 0, limit: 10 })).items.map((ch) => ch.text),
          ['metadata keeps searching', 'second piece'],
        );
        const nearest = await search(c.id, 'VECTOR', { vector: axis(5), limit: 1 });
        assert.equal(nearest[0]!.chunk.id, chunkId(d.id, 1));
        assert.ok(Math.abs(nearest[0]!.vectorScore! - 1) < 1e-5);
        assert.equal((await search(c.id, 'KEYWORD', { text: 'searching' })).length, 1);
        const eq = (value: string): Filter => cond({ type: 'metadata', key: 'team' }, 'eq', value);
        assert.equal((await store.listDocuments(c.id, { offset: 0, limit: 10 }, eq('b'))).total, 1);
        assert.equal((await store.listDocuments(c.id, { offset: 0, limit: 10 }, eq('a'))).total, 0);
        assert.equal(await store.updateDocumentMetadata(randomUUID(), { x: 1 }), null);
      });

      it('returns documents and chunks in the order asked, null where missing', async () => {
        const c = await newCollection();
        const d1 = await store.upsertDocument(c.id, doc('one', ['a1', 'a2']));
        const d2 = await store.upsertDocument(c.id, doc('two', ['b1']));
        const missing = randomUUID();
        assert.deepEqual(await store.getDocuments([d2.id, missing, d1.id, d2.id]), [d2, null, d1, d2]);
        assert.deepEqual(await store.getDocuments([]), []);
        const chunks = await store.getChunks([chunkId(d1.id, 1), missing, chunkId(d2.id, 0), chunkId(d1.id, 0)]);
        assert.deepEqual(
          chunks.map((ch) => ch?.text ?? null),
          ['a2', null, 'b1', 'a1'],
        );
        assert.deepEqual(await store.getChunks([]), []);
      });

      it('lists documents by creation time then id, filtered and paged', async () => {
        const c = await newCollection();
        for (let i = 0; i < 7; i++) {
          await store.upsertDocument(c.id, doc(`e${i}`, [`text ${i}`], { metadata: { i, even: i % 2 === 0 } }));
        }
        const even = cond({ type: 'metadata', key: 'even' }, 'eq', true);
        const all = await store.listDocuments(c.id, { offset: 0, limit: 100 }, even);
        assert.equal(all.total, 4);
        assert.deepEqual(all.items.map((d) => d.externalId).sort(), ['e0', 'e2', 'e4', 'e6']);
        for (let i = 1; i < all.items.length; i++) assert.ok(compareCreated(all.items[i - 1]!, all.items[i]!) < 0);
        const p1 = await store.listDocuments(c.id, { offset: 0, limit: 3 }, even);
        const p2 = await store.listDocuments(c.id, { offset: 3, limit: 3 }, even);
        assert.equal(p1.total, 4);
        assert.equal(p2.total, 4);
        assert.deepEqual([...p1.items, ...p2.items], all.items);
        assert.deepEqual((await store.listDocuments(c.id, { offset: 10, limit: 3 }, even)).items, []);
        const unfiltered = await store.listDocuments(c.id, { offset: 0, limit: 100 });
        assert.equal(unfiltered.total, 7);
        assert.equal(unfiltered.items.length, 7);
      });

      it('lists chunks by index, paged', async () => {
        const c = await newCollection();
        const write = doc('shuffled', ['c0', 'c1', 'c2', 'c3']);
        write.chunks = [write.chunks[2]!, write.chunks[0]!, write.chunks[3]!, write.chunks[1]!];
        const d = await store.upsertDocument(c.id, write);
        const all = await store.listChunks(d.id, { offset: 0, limit: 10 });
        assert.deepEqual(
          all.items.map((ch) => ch.index),
          [0, 1, 2, 3],
        );
        assert.deepEqual(
          all.items.map((ch) => ch.text),
          ['c0', 'c1', 'c2', 'c3'],
        );
        const page = await store.listChunks(d.id, { offset: 1, limit: 2 });
        assert.equal(page.total, 4);
        assert.deepEqual(
          page.items.map((ch) => ch.index),
          [1, 2],
        );
        assert.deepEqual(await store.listChunks(randomUUID(), { offset: 0, limit: 10 }), { items: [], total: 0 });
      });
    });

    describe('filters', () => {
      async function filterFixture(): Promise<{ c: CollectionRecord; ids: Map<string, DocumentRecord> }> {
        const c = await newCollection();
        const docs: [string, string | null, string | null, Metadata][] = [
          [
            'doc-1',
            'Alpha guide',
            'https://a.example/1',
            {
              lang: 'en',
              year: 2020,
              score: 4.5,
              draft: false,
              tags: ['red', 'blue'],
              note: 'hello world',
              n10: 10,
              mixed: [1, 'x', true],
            },
          ],
          [
            'doc-2',
            'Beta manual',
            'file:///b.txt',
            {
              lang: 'fr',
              year: 2021,
              score: 3,
              draft: true,
              tags: ['green'],
              note: 'Hello there',
              numstr: '10',
            },
          ],
          ['doc-3', null, null, { lang: 'en', year: '2022', tags: 'red-ish', draft: 'false' }],
          ['doc-4', 'Gamma', 'https://a.example/4', { year: 2019.5, tags: [], score: null }],
        ];
        const ids = new Map<string, DocumentRecord>();
        for (const [i, [externalId, title, source, metadata]] of docs.entries()) {
          const rec = await store.upsertDocument(
            c.id,
            doc(externalId, [{ text: `kbqlcommon ${externalId} body`, vector: axis(i) }], { title, source, metadata }),
          );
          ids.set(externalId, rec);
        }
        return { c, ids };
      }

      it('honours every operator, type rule and combinator in listDocuments and in all search modes', async () => {
        const { c, ids } = await filterFixture();
        const m = (key: string) => ({ type: 'metadata' as const, key });
        const b = (name: 'documentId' | 'externalId' | 'source' | 'title') => ({ type: 'builtin' as const, name });
        const cases: [string, Filter, number[]][] = [
          ['eq string', cond(m('lang'), 'eq', 'en'), [1, 3]],
          ['ne with a missing field', cond(m('lang'), 'ne', 'en'), [2, 4]],
          ['eq number', cond(m('year'), 'eq', 2021), [2]],
          ['eq string never matches a number', cond(m('year'), 'eq', '2021'), []],
          ['eq string on a string field', cond(m('year'), 'eq', '2022'), [3]],
          ['eq number never matches a numeric string', cond(m('year'), 'eq', 2022), []],
          ['eq integer matches a float-free number', cond(m('score'), 'eq', 3), [2]],
          ['gt number (strings and nulls excluded)', cond(m('year'), 'gt', 2020), [2]],
          ['gte number', cond(m('year'), 'gte', 2020), [1, 2]],
          ['lt number', cond(m('year'), 'lt', 2020), [4]],
          ['lte number', cond(m('year'), 'lte', 2020), [1, 4]],
          ['gt number over a null value', cond(m('score'), 'gt', 3), [1]],
          ['gt string is lexicographic and case-sensitive', cond(m('note'), 'gt', 'hello'), [1]],
          ['lt string', cond(m('note'), 'lt', 'hello'), [2]],
          ['gte string', cond(m('lang'), 'gte', 'fr'), [2]],
          ['lte string', cond(m('lang'), 'lte', 'en'), [1, 3]],
          ['in strings', cond(m('lang'), 'in', ['fr', 'de']), [2]],
          ['in mixed types', cond(m('year'), 'in', [2019.5, 2021, '2022']), [2, 3, 4]],
          ['in booleans', cond(m('draft'), 'in', [true]), [2]],
          ['eq boolean false (not the string "false")', cond(m('draft'), 'eq', false), [1]],
          ['ne boolean', cond(m('draft'), 'ne', false), [2, 3, 4]],
          ['eq the string "false"', cond(m('draft'), 'eq', 'false'), [3]],
          ['eq number never matches a boolean', cond(m('draft'), 'eq', 0), []],
          ['contains on arrays and on a string', cond(m('tags'), 'contains', 'red'), [1, 3]],
          ['contains an array element', cond(m('tags'), 'contains', 'blue'), [1]],
          ['contains a substring of a string field', cond(m('tags'), 'contains', 'ish'), [3]],
          ['contains is case-sensitive', cond(m('note'), 'contains', 'hello'), [1]],
          ['contains a number element', cond(m('mixed'), 'contains', 1), [1]],
          ['contains a string does not match a number element', cond(m('mixed'), 'contains', '1'), []],
          ['contains a boolean element', cond(m('mixed'), 'contains', true), [1]],
          ['contains on a number field is false', cond(m('n10'), 'contains', 1), []],
          ['numeric string vs number', cond(m('numstr'), 'eq', 10), []],
          ['numeric string vs string', cond(m('numstr'), 'eq', '10'), [2]],
          ['missing key fails eq', cond(m('nothere'), 'eq', 'x'), []],
          ['missing key passes ne', cond(m('nothere'), 'ne', 'x'), [1, 2, 3, 4]],
          ['a quote in a value is data, not SQL', cond(m('lang'), 'eq', "en' OR 1=1 --"), []],
          ['builtin documentId', cond(b('documentId'), 'eq', ids.get('doc-2')!.id), [2]],
          ['builtin externalId', cond(b('externalId'), 'eq', 'doc-3'), [3]],
          ['builtin externalId in', cond(b('externalId'), 'in', ['doc-1', 'doc-4', 'nope']), [1, 4]],
          ['builtin source contains', cond(b('source'), 'contains', 'a.example'), [1, 4]],
          ['builtin source eq', cond(b('source'), 'eq', 'file:///b.txt'), [2]],
          ['builtin title eq', cond(b('title'), 'eq', 'Gamma'), [4]],
          ['builtin title ne (null title differs)', cond(b('title'), 'ne', 'Gamma'), [1, 2, 3]],
          ['builtin title contains', cond(b('title'), 'contains', 'a'), [1, 2, 4]],
          ['builtin title gt', cond(b('title'), 'gt', 'B'), [2, 4]],
          ['builtin title lt', cond(b('title'), 'lt', 'B'), [1]],
          ['builtin compared with a number', cond(b('externalId'), 'eq', 1), []],
          ['and', { kind: 'and', filters: [cond(m('lang'), 'eq', 'en'), cond(m('year'), 'gt', 2019)] }, [1]],
          ['or', { kind: 'or', filters: [cond(m('lang'), 'eq', 'fr'), cond(m('tags'), 'contains', 'blue')] }, [1, 2]],
          [
            'nested and/or with ne',
            {
              kind: 'and',
              filters: [{ kind: 'or', filters: [cond(m('lang'), 'eq', 'en'), cond(m('lang'), 'eq', 'fr')] }, cond(m('draft'), 'ne', true)],
            },
            [1, 3],
          ],
        ];
        for (const [name, filter, expected] of cases) {
          const want = expected.map((n) => `doc-${n}`).sort();
          const listed = await store.listDocuments(c.id, { offset: 0, limit: 100 }, filter);
          assert.deepEqual(listed.items.map((d) => d.externalId).sort(), want, `listDocuments: ${name}`);
          assert.equal(listed.total, want.length, `total: ${name}`);
          for (const mode of ['VECTOR', 'KEYWORD', 'HYBRID'] as const) {
            const hits = await search(c.id, mode, { text: 'kbqlcommon', vector: axis(0), filter, limit: 10 });
            assert.deepEqual(hits.map((h) => h.document.externalId).sort(), want, `${mode} search: ${name}`);
          }
        }
      });
    });

    describe('search', () => {
      it('VECTOR ranks by cosine similarity and reports it as vectorScore', async () => {
        const c = await newCollection();
        const raw: [string, number[]][] = [
          ['east', [1, 0, 0, 0, 0, 0, 0, 0]],
          ['north-east, long', [3, 3, 0, 0, 0, 0, 0, 0]],
          ['north', [0, 1, 0, 0, 0, 0, 0, 0]],
          ['west, long', [-5, 0, 0.1, 0, 0, 0, 0, 0]],
          ['mostly east, long', [4, 0.5, 0.2, 0, 0, 0, 0, 0.1]],
          ['up', [0, 0, 0, 0, 0, 0, 0, 1]],
        ];
        const d = await store.upsertDocument(
          c.id,
          doc(
            'v',
            raw.map(([text, v]) => ({ text, vector: Float32Array.from(v) })),
          ),
        );
        const query = Float32Array.from([2, 0.4, 0, 0, 0, 0, 0, 0]);
        const expected = raw
          .map(([, v], i) => ({ id: chunkId(d.id, i), cos: cosine(query, Float32Array.from(v)) }))
          .sort((x, y) => y.cos - x.cos);
        const hits = await search(c.id, 'VECTOR', { vector: query, limit: 10 });
        assert.deepEqual(
          hits.map((h) => h.chunk.id),
          expected.map((e) => e.id),
        );
        hits.forEach((h, i) => {
          assert.ok(Math.abs(h.vectorScore! - expected[i]!.cos) < 1e-5, `cosine of hit ${i}`);
          assert.ok(Math.abs(h.score - h.vectorScore!) < 1e-9, 'VECTOR score is the cosine');
          assert.equal(h.keywordScore, null);
          assert.equal(h.document.id, d.id);
          assert.equal(h.chunk.text, raw[h.chunk.index]![0]);
        });
        const top2 = await search(c.id, 'VECTOR', { vector: query, limit: 2 });
        assert.deepEqual(
          top2.map((h) => h.chunk.id),
          expected.slice(0, 2).map((e) => e.id),
        );
        await assert.rejects(search(c.id, 'VECTOR', { vector: undefined }), withCode('BAD_USER_INPUT'));
      });

      it('KEYWORD ranks by BM25: a repeated rare term beats a common one', async () => {
        const c = await newCollection();
        const texts = [
          'the horse is a common animal on common farms',
          'a common horse grazes in the common field',
          'common sense says the horse is common',
          'the zebra zebra zebra grazes near a fence',
          'one zebra appeared once among many other words in this much longer sentence about farms and fields and roads',
          'nothing to see here at all',
        ];
        await store.upsertDocument(c.id, doc('k', texts));
        const hits = await search(c.id, 'KEYWORD', { text: 'zebra common', limit: 10 });
        assert.equal(hits[0]!.chunk.text, texts[3], 'the repeated rare term wins');
        assert.ok(
          hits.findIndex((h) => h.chunk.text === texts[3]) < hits.findIndex((h) => h.chunk.text === texts[4]),
          'term frequency counts',
        );
        assert.ok(!hits.some((h) => h.chunk.text === texts[5]), 'a chunk without a query term is no hit');
        assert.equal(hits.length, 5);
        for (let i = 0; i < hits.length; i++) {
          const h = hits[i]!;
          assert.ok(h.keywordScore! > 0, 'BM25, higher is better');
          assert.ok(Math.abs(h.score - h.keywordScore!) < 1e-9);
          assert.equal(h.vectorScore, null);
          if (i > 0) assert.ok(hits[i - 1]!.score >= h.score, 'best first');
        }
        const syntax = await search(c.id, 'KEYWORD', { text: 'zebra" OR NEAR(* ^fence:) AND -', limit: 10 });
        assert.equal(syntax[0]!.chunk.text, texts[3], 'query syntax is treated as text');
        assert.deepEqual(await search(c.id, 'KEYWORD', { text: '"*()^:-' }), []);
        assert.deepEqual(await search(c.id, 'KEYWORD', { text: '' }), []);
      });

      it('HYBRID: alpha = 1 ranks like VECTOR, alpha = 0 like KEYWORD, and in between fuses both', async () => {
        const c = await newCollection();
        const corpus: [string, number[]][] = [
          ['quantum lattice quantum lattice theory', [-0.5, 0, 0, 0, 1, 0, 0, 0]],
          ['nothing relevant here at all', [1, 0, 0, 0, 0, 0, 0, 0]],
          ['quantum lattice notes', [1, 0, 0, 0, 1, 0, 0, 0]],
          ['a quantum footnote among other longer words', [0, 0, 0, 0, 0, 1, 0, 0]],
          ['cooking with lattice pastry', [0.5, 1, 0, 0, 0, 0, 0, 0]],
          ['filler about gardens', [0, 0, 1, 0, 0, 0, 0, 0]],
          ['filler about rivers', [-1, 0, 0, 0.2, 0, 0, 0, 0]],
          ['filler about mountains', [0.3, 0, 0, 0, 0, 0, 1, 0]],
        ];
        await store.upsertDocument(
          c.id,
          doc(
            'h',
            corpus.map(([text, v]) => ({ text, vector: Float32Array.from(v) })),
          ),
        );
        const base = { text: 'quantum lattice', vector: axis(0), limit: 20 };
        const vector = await search(c.id, 'VECTOR', base);
        const keyword = await search(c.id, 'KEYWORD', base);
        assert.equal(vector.length, 8);
        assert.equal(keyword.length, 4);

        const h1 = await search(c.id, 'HYBRID', { ...base, alpha: 1 });
        assert.deepEqual(
          h1.slice(0, 6).map((h) => h.chunk.id),
          vector.slice(0, 6).map((h) => h.chunk.id),
        );
        const h0 = await search(c.id, 'HYBRID', { ...base, alpha: 0 });
        assert.deepEqual(
          h0.slice(0, 3).map((h) => h.chunk.id),
          keyword.slice(0, 3).map((h) => h.chunk.id),
        );

        const mixed = await search(c.id, 'HYBRID', { ...base, alpha: 0.4 });
        const expected = relativeScoreFusion(
          vector.map((h) => ({ id: h.chunk.id, score: h.vectorScore! })),
          keyword.map((h) => ({ id: h.chunk.id, score: h.keywordScore! })),
          0.4,
        );
        assert.deepEqual(
          mixed.map((h) => h.chunk.id),
          expected.map((e) => e.id),
        );
        const keywordIds = new Set(keyword.map((h) => h.chunk.id));
        mixed.forEach((h, i) => {
          assert.ok(Math.abs(h.score - expected[i]!.score) < 1e-6, `fused score of hit ${i}`);
          assert.ok(h.score >= 0 && h.score <= 1);
          assert.ok(h.vectorScore !== null, 'every hit here was a vector candidate');
          assert.equal(h.keywordScore !== null, keywordIds.has(h.chunk.id), 'keywordScore only for keyword matches');
        });
        assert.equal(mixed[0]!.chunk.text, 'quantum lattice notes', 'good on both sides beats good on one');
        await assert.rejects(search(c.id, 'HYBRID', { text: 'quantum' }), withCode('BAD_USER_INPUT'));
      });

      it('paginates every mode stably, without overlap, ties broken by chunk id', async () => {
        const c = await newCollection();
        const same = unit([1, 1, 0, 0, 0, 0, 0, 0]);
        for (let d = 0; d < 4; d++) {
          await store.upsertDocument(
            c.id,
            doc(`p${d}`, [
              { text: 'tie words here', vector: same },
              { text: 'tie words here', vector: same },
              { text: `tie words here and more ${d}`, vector: unit([1, d, 2, 0, 0, 0, 0, 1]) },
            ]),
          );
        }
        for (const mode of ['VECTOR', 'KEYWORD', 'HYBRID'] as const) {
          const base = { text: 'tie words', vector: axis(0), alpha: 0.5 };
          const full = await search(c.id, mode, { ...base, limit: 12 });
          assert.equal(full.length, 12, `${mode}: every chunk is a hit`);
          const paged: SearchHit[] = [];
          for (let offset = 0; offset < 12; offset += 5) paged.push(...(await search(c.id, mode, { ...base, limit: 5, offset })));
          assert.deepEqual(
            paged.map((h) => h.chunk.id),
            full.map((h) => h.chunk.id),
            `${mode}: pages match the full list`,
          );
          assert.equal(new Set(paged.map((h) => h.chunk.id)).size, 12, `${mode}: no overlap`);
          let ties = 0;
          for (let i = 1; i < full.length; i++) {
            const [a, b] = [full[i - 1]!, full[i]!];
            assert.ok(a.score >= b.score, `${mode}: best first`);
            if (a.score === b.score) {
              ties++;
              assert.ok(a.chunk.id < b.chunk.id, `${mode}: ties by chunk id`);
            }
          }
          assert.ok(ties >= 4, `${mode}: the fixture produces ties (${ties})`);
          assert.deepEqual(await search(c.id, mode, { ...base, limit: 5, offset: 12 }), []);
        }
      });

      it('a filtered VECTOR search returns exactly the k best allowed chunks, in order', async () => {
        const c = await newCollection();
        const docs: { id: string; group: number; vectors: Float32Array[] }[] = [];
        for (let d = 0; d < 12; d++) {
          const group = d % 4;
          const chunks = Array.from({ length: 5 }, (_, i) => ({ text: `filtered ${d} ${i}`, vector: textVector(`filtered ${d} ${i}`) }));
          const rec = await store.upsertDocument(c.id, doc(`f${d}`, chunks, { metadata: { group } }));
          docs.push({ id: rec.id, group, vectors: chunks.map((chunk) => chunk.vector) });
        }
        const query = textVector('the query');
        const best = (allowed: (d: { group: number; id: string }) => boolean, k: number): string[] =>
          docs
            .filter(allowed)
            .flatMap((d) => d.vectors.map((v, i) => ({ id: chunkId(d.id, i), cos: cosine(query, v) })))
            .sort((x, y) => y.cos - x.cos || (x.id < y.id ? -1 : 1))
            .slice(0, k)
            .map((e) => e.id);
        const group = (g: number): Filter => cond({ type: 'metadata', key: 'group' }, 'eq', g);
        for (const g of [0, 3]) {
          for (const k of [1, 4, 10]) {
            const hits = await search(c.id, 'VECTOR', { vector: query, limit: k, filter: group(g) });
            assert.deepEqual(
              hits.map((h) => h.chunk.id),
              best((d) => d.group === g, k),
              `group ${g}, k ${k}`,
            );
          }
        }
        // Fewer allowed chunks than asked for: all of them, best first.
        const one = docs[5]!;
        const few = await search(c.id, 'VECTOR', {
          vector: query,
          limit: 10,
          filter: cond({ type: 'builtin', name: 'externalId' }, 'eq', 'f5'),
        });
        assert.deepEqual(
          few.map((h) => h.chunk.id),
          best((d) => d.id === one.id, 10),
        );
      });

      it('never returns a deleted or replaced chunk, at once and later', async () => {
        const c = await newCollection();
        const a = await store.upsertDocument(
          c.id,
          doc('a', [
            { text: 'gone one', vector: axis(0) },
            { text: 'gone two', vector: axis(1) },
          ]),
        );
        const kept = { text: 'kept', vector: unit([1, 1, 1, 0, 0, 0, 0, 0]) };
        const b = await store.upsertDocument(c.id, doc('b', [kept, { text: 'replaced', vector: axis(2) }]));
        await store.upsertDocument(
          c.id,
          doc(
            'filler',
            Array.from({ length: 8 }, (_, i) => `filler ${i}`),
          ),
        );
        assert.equal((await search(c.id, 'VECTOR', { vector: axis(0), limit: 1 }))[0]!.chunk.id, chunkId(a.id, 0));
        await store.deleteDocuments([a.id]);
        await store.upsertDocument(c.id, doc('b', [kept]));
        const gone = new Set([chunkId(a.id, 0), chunkId(a.id, 1), chunkId(b.id, 1)]);
        for (const settled of [false, true]) {
          for (const q of [axis(0), axis(1), axis(2)]) {
            const request = { vector: q, text: 'gone replaced', limit: 50 };
            const vector = settled
              ? await search(c.id, 'VECTOR', request)
              : await store.search({ collectionId: c.id, mode: 'VECTOR', alpha: 0.5, offset: 0, ...request });
            assert.equal(vector.length, 9, 'every live chunk');
            assert.ok(
              vector.every((h) => !gone.has(h.chunk.id)),
              'VECTOR',
            );
            const hybrid = await search(c.id, 'HYBRID', request);
            assert.ok(
              hybrid.every((h) => !gone.has(h.chunk.id)),
              'HYBRID',
            );
          }
        }
      });

      it('never returns another collection’s chunks', async () => {
        const c1 = await newCollection();
        const c2 = await newCollection();
        for (const c of [c1, c2]) {
          await store.upsertDocument(
            c.id,
            doc('same', [
              { text: 'shared words', vector: axis(0) },
              { text: 'shared more', vector: axis(1) },
            ]),
          );
        }
        assert.notEqual(documentId(c1.id, 'same'), documentId(c2.id, 'same'));
        for (const mode of ['VECTOR', 'KEYWORD', 'HYBRID'] as const) {
          for (const c of [c1, c2]) {
            const hits = await search(c.id, mode, { text: 'shared', vector: axis(0) });
            assert.equal(hits.length, 2, `${mode}`);
            assert.ok(hits.every((h) => h.chunk.collectionId === c.id && h.document.collectionId === c.id));
          }
        }
      });
    });
    // ---- begin: collection names under concurrency (issue 21, Weaviate gaps) ----
    describe('collection names under concurrency', () => {
      it('concurrent creates of one name: exactly one succeeds, the others are CONFLICT', async () => {
        const name = uniqueName();
        const results = await Promise.allSettled(
          Array.from({ length: 4 }, () =>
            store.createCollection({
              name,
              description: null,
              chunking: { strategy: 'SENTENCE', chunkSize: 200, chunkOverlap: 20 },
              embedder: { name: 'contract-test-v1', dimensions: DIM },
            }),
          ),
        );
        for (const r of results) if (r.status === 'fulfilled') created.push(r.value.id);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) if (r.status === 'rejected') withCode('CONFLICT')(r.reason);
        assert.equal((await allCollections(store)).filter((c) => c.name === name).length, 1);
      });

      it('concurrent renames to one name: exactly one succeeds; a released name can be taken again', async () => {
        const [a, b] = [await newCollection(), await newCollection()];
        const target = uniqueName();
        const results = await Promise.allSettled([a, b].map((c) => store.updateCollection(c.id, { name: target })));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        assert.equal((await allCollections(store)).filter((c) => c.name === target).length, 1);
        const winner = (await store.getCollectionByName(target))!;
        await store.updateCollection(winner.id, { name: uniqueName() });
        const loser = winner.id === a.id ? b : a;
        assert.equal((await store.updateCollection(loser.id, { name: target })).name, target);
      });
    });
    // ---- end: collection names under concurrency ----
  });
}

// ------------------------------------------------------------------ helpers

/** Small vectors keep the contract cheap on every backend. */
const DIM = 8;

const uniqueName = (): string => `ContractTest_${randomUUID().replace(/-/g, '').slice(0, 16)}`;

function withCode(code: ErrorCode): (error: unknown) => boolean {
  return (error) => {
    assert.ok(isAppError(error), `expected AppError ${code}, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

function unit(values: number[]): Float32Array {
  const v = Float32Array.from(values);
  const norm = Math.hypot(...v);
  return norm > 0 ? v.map((x) => x / norm) : v;
}

function axis(i: number): Float32Array {
  const v = new Float32Array(DIM);
  v[i % DIM] = 1;
  return v;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot / (Math.hypot(...a) * Math.hypot(...b));
}

/** A pseudo-random unit vector derived from the text, so plain-text chunks still get distinct vectors. */
function textVector(text: string): Float32Array {
  const hash = sha256Hex(text);
  return unit(Array.from({ length: DIM }, (_, i) => parseInt(hash.slice(i * 4, i * 4 + 4), 16) / 0xffff - 0.5));
}

function doc(
  externalId: string,
  chunks: (string | { text: string; vector: Float32Array })[],
  extra: Partial<Omit<DocumentWrite, 'externalId' | 'chunks'>> = {},
): DocumentWrite {
  let offset = 0;
  const writes = chunks.map((chunk, index) => {
    const { text, vector } = typeof chunk === 'string' ? { text: chunk, vector: textVector(chunk) } : chunk;
    const start = offset;
    offset += text.length + 1;
    return { index, text, startOffset: start, endOffset: start + text.length, vector };
  });
  const content = writes.map((w) => w.text).join('\n');
  return {
    externalId,
    title: null,
    source: null,
    contentType: 'TEXT',
    metadata: {},
    contentHash: sha256Hex(content),
    charCount: content.length,
    ...extra,
    chunks: writes,
  };
}

function cond(
  field: Extract<Filter, { kind: 'condition' }>['field'],
  op: Extract<Filter, { kind: 'condition' }>['op'],
  value: FilterScalar | FilterScalar[],
): Filter {
  return { kind: 'condition', field, op, value };
}

function compareCreated(a: { createdAt: Date; id: string }, b: { createdAt: Date; id: string }): number {
  const dt = a.createdAt.getTime() - b.createdAt.getTime();
  return dt !== 0 ? dt : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

async function allCollections(store: KnowledgeStore): Promise<CollectionRecord[]> {
  const out: CollectionRecord[] = [];
  for (let offset = 0; ; offset += 100) {
    const page = await store.listCollections({ offset, limit: 100 });
    out.push(...page.items);
    if (page.items.length < 100) return out;
  }
}
