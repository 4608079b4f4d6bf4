import { randomUUID } from 'node:crypto';
import type { FilterValue } from 'weaviate-client';
import { AppError, badInput, notFound } from '../../errors';
import { chunkId, documentId, UUID_PATTERN } from '../../ids';
import { relativeScoreFusion } from '../../modules/query/fusion';
import { DEFAULT_TENANT } from '../../ports/knowledge-store.port';
import { checkChunkVector, checkPage, checkQueryVector, checkShareTenant, withShare } from '../store-checks';
import type {
  ChunkRecord,
  ChunkWrite,
  CollectionListFilter,
  CollectionPatch,
  CollectionRecord,
  CollectionStats,
  DeleteCounts,
  DocumentRecord,
  DocumentWrite,
  Filter,
  KnowledgeStore,
  Metadata,
  NewCollection,
  Page,
  PageRequest,
  SearchHit,
  SearchRequest,
  ShareRole,
} from '../../ports/knowledge-store.port';
import {
  connectWeaviate,
  type CollectionSpec,
  type ConnectFn,
  type PropertySpec,
  type WeaviateClientLike,
  type WObject,
  type WriteObject,
} from './weaviate.client';
import {
  andFilters,
  andOf,
  builtinProperties,
  byIds,
  cmp,
  eq,
  FLAT_DATA_TYPES,
  flatTypeOf,
  flattenMetadata,
  matchesDocument,
  orOf,
  referencedProperties,
  translateFilter,
  type TranslatedFilter,
} from './weaviate.filters';
import { checkTenant, resolveOptions, weaviateTenantFor, type Resolved, type WeaviateStoreDeps, type WeaviateStoreOptions } from './weaviate.options';
import {
  CHUNK_RETURN,
  chunkProperties,
  collectionProperties,
  documentProperties,
  isCanonicalId,
  isVisible,
  nameClaimId,
  num0,
  str0,
  toChunk,
  toCollection,
  toDocument,
  visibleChunksOf,
} from './weaviate.rows';
import { BM25, CHUNK_PROPERTIES, DOCUMENT_PROPERTIES, REGISTRY_PROPERTIES, VECTOR } from './weaviate.schema';
import { parseHybridExplain, queryTerms } from './weaviate.search';
import { isAlreadyExists, reasonOf, Resilience } from './weaviate.resilience';

export type { WeaviateStoreDeps, WeaviateStoreOptions } from './weaviate.options';
export { weaviateTenantFor } from './weaviate.options';
export { parseHybridExplain, queryTerms } from './weaviate.search';

/** State shared by a store and its tenant views. */
interface Core {
  options: Resolved;
  connectFn: ConnectFn;
  resilience: Resilience;
  client: Promise<WeaviateClientLike> | null;
  closed: boolean;
  base: Promise<void> | null;
  /** Known properties per Weaviate collection, and when they were last read. */
  schema: Map<string, { properties: Set<string>; readAt: number }>;
  /** `collection \0 tenant` pairs known to exist. */
  tenants: Set<string>;
  /** In-process serialisation of read-modify-write on a collection record. */
  locks: Map<string, Promise<unknown>>;
  /** kbql tenant of each collection seen (a collection never changes owner). */
  owners: Map<string, string>;
}

const ID_BATCH = 500;
const MAX_DELETE_ROUNDS = 10_000;
/** Re-read a collection's schema at most this often when a filter names a property not seen yet. */
const SCHEMA_REFRESH_MS = 1_000;

/**
 * KnowledgeStore on Weaviate 1.3x through weaviate-client v3 (gRPC for data and search, REST for schema).
 *
 * Layout (names from `collectionPrefix`, default `Kbql`):
 * - `KbqlRegistry`: one object per kbql collection (name, description, chunking, embedder, version, timestamps),
 *   plus one name-claim object per collection name whose id is derived from the name. Claims are created with a
 *   REST insert, which fails when the id exists, so two creates of one name cannot both succeed on one Weaviate
 *   node (a claim whose collection no longer carries that name is stale and is taken over).
 * - `KbqlDocuments`: one record per document, for all kbql collections. Document ids are global (the port's
 *   getDocuments, deleteDocuments, updateDocumentMetadata and listChunks take no collection), so one collection
 *   resolves any id in one lookup; listing, counting (aggregate) and deleting documents never scan chunks.
 * - `KbqlChunks_<collection id hex>`: the chunks of one kbql collection: BM25 on `text` (word tokenization, `en`
 *   stopwords, k1 1.2, b 0.75), a `default` vector (HNSW, cosine, supplied by kbql), the document's builtins and
 *   flattened metadata for filters (see `weaviate.filters.ts`). The id is kbql's, so renames touch no Weaviate name.
 *
 * Every object id is a deterministic v5 UUID (`documentId()`, `chunkId()` from `src/ids.ts`): re-running an
 * interrupted ingestion overwrites exactly what the first run wrote.
 *
 * ## What a crash can leave (Weaviate has no multi-object transactions)
 * `upsertDocument` writes the new chunks first, then the document record, then deletes chunks with an index at
 * or beyond the new chunk count. The document record is the commit point: a chunk is visible (to search, listChunks
 * and getChunks) only when its document record exists, its index is below the record's `chunkCount` and its
 * `contentHash` equals the record's. So after a crash between the steps readers see the old document record with
 * those old chunks the new write has not yet overwritten in place (same ids), never a chunk of the new version
 * next to the old record; the new version appears with its record. That is weaker than the port's "old or new,
 * never a mix": an interrupted replacement can leave the old version with some chunks missing until the document is
 * ingested again (its recorded hash is still the old one, so the ingestion service re-embeds it). Stale and
 * orphaned chunk objects are invisible, not counted (counts come from document records), and removed by the next
 * write of their document. `updateDocumentMetadata` rewrites the chunks' filter properties first and the record
 * last; search re-checks every hit against the record's metadata, so a lagging chunk is never returned under a
 * filter its document does not match. Version bumps are read-modify-write (serialised in this process, not across
 * replicas: Weaviate has no compare-and-set).
 */
export class WeaviateKnowledgeStore implements KnowledgeStore {
  readonly kind = 'weaviate';
  private readonly core: Core;
  private readonly tenant: string | undefined;
  private readonly isView: boolean;

  /** @param view internal: a tenant view sharing another store's state (see {@link withTenant}). */
  constructor(options: WeaviateStoreOptions, deps: WeaviateStoreDeps = {}, view?: { core: Core; tenant: string }) {
    if (view) {
      this.core = view.core;
      this.tenant = view.tenant;
      this.isView = true;
      return;
    }
    this.isView = false;
    const resolved = resolveOptions(options);
    this.core = {
      options: resolved,
      connectFn: deps.connect ?? connectWeaviate,
      resilience: new Resilience({
        dependency: 'weaviate',
        target: resolved.displayUrl,
        timeoutMs: resolved.timeoutMs,
        retries: resolved.retries,
        retryInitialDelayMs: resolved.retryInitialDelayMs,
        retryMaxDelayMs: resolved.retryMaxDelayMs,
        breakerThreshold: resolved.breakerThreshold,
        breakerHalfOpenAfterMs: resolved.breakerHalfOpenAfterMs,
      }),
      client: null,
      closed: false,
      base: null,
      schema: new Map(),
      tenants: new Set(),
      locks: new Map(),
      owners: new Map(),
    };
    if (options.tenant !== undefined) {
      if (!resolved.multiTenant) throw new TypeError('tenant is only meaningful with multiTenant: true');
      checkTenant(options.tenant);
    }
    if (resolved.bindTenants && !resolved.multiTenant) throw new TypeError('bindTenants needs multiTenant: true');
    this.tenant = options.tenant;
  }

  /**
   * A view of this store scoped to one tenant (shares the connection, breaker and caches). Requires
   * `multiTenant`. Throws BAD_USER_INPUT for a name Weaviate does not accept.
   */
  withTenant(tenant: string): WeaviateKnowledgeStore {
    if (!this.core.options.multiTenant) {
      throw new AppError('INTERNAL_SERVER_ERROR', 'withTenant() needs a store created with multiTenant: true.');
    }
    checkTenant(tenant);
    return new WeaviateKnowledgeStore(this.core.options, {}, { core: this.core, tenant });
  }

  /** The circuit breaker's state, for metrics and logs. */
  get breakerState(): string {
    return this.core.resilience.state;
  }

  // ---------------------------------------------------------------- lifecycle

  async init(): Promise<void> {
    await this.client(true);
    await this.ensureBase();
  }

  /** Closes the connection. On a tenant view this does nothing: views share the root store's connection. */
  async close(): Promise<void> {
    if (this.isView || this.core.closed) return;
    this.core.closed = true;
    const pending = this.core.client;
    this.core.client = null;
    if (pending) await pending.then((c) => c.close()).catch(() => undefined);
  }

  async ping(): Promise<void> {
    const ready = await this.call('readiness check', (c) => c.isReady(), { retry: false });
    if (!ready) {
      throw new AppError('UPSTREAM_UNAVAILABLE', `Weaviate at ${this.core.options.displayUrl} is not ready.`, {
        dependency: 'weaviate',
      });
    }
  }

  // ---------------------------------------------------------------- collections

  async createCollection(input: NewCollection): Promise<CollectionRecord> {
    if (!Number.isSafeInteger(input.embedder.dimensions) || input.embedder.dimensions <= 0) {
      throw badInput('Embedder dimensions must be a positive integer.', { dimensions: input.embedder.dimensions });
    }
    await this.ensureBase();
    const now = Date.now();
    const record: CollectionRecord = {
      id: randomUUID(),
      tenant: input.tenant ?? DEFAULT_TENANT,
      name: input.name,
      description: input.description,
      chunking: { ...input.chunking },
      embedder: { ...input.embedder },
      version: 1,
      createdAt: new Date(now),
      updatedAt: new Date(now),
      shares: [],
    };
    await this.claimName(record.tenant, record.name, record.id);
    try {
      await this.ensureChunkCollection(record.id, true, this.chunkTenant(record.tenant));
      await this.writeCollection(record);
      const claim = await this.readClaim(record.tenant, record.name);
      if (claim?.collectionId !== record.id) throw conflict(record.name);
      return record;
    } catch (error) {
      await this.dropCollectionObjects(record).catch(() => undefined);
      throw error;
    }
  }

  async updateCollection(id: string, patch: CollectionPatch): Promise<CollectionRecord> {
    return this.withLock(id, async () => {
      const current = await this.getCollection(id);
      if (!current) throw notFound('Collection', id);
      const renamed = patch.name !== undefined && patch.name !== current.name;
      if (renamed) await this.claimName(current.tenant, patch.name!, id);
      const next: CollectionRecord = {
        ...current,
        name: patch.name ?? current.name,
        description: patch.description !== undefined ? patch.description : current.description,
        version: current.version + 1,
        updatedAt: new Date(Math.max(Date.now(), current.updatedAt.getTime())),
      };
      await this.writeCollection(next);
      if (renamed) await this.releaseClaim(current.tenant, current.name, id);
      return next;
    });
  }

  async deleteCollection(id: string): Promise<DeleteCounts | null> {
    const record = await this.getCollection(id);
    if (!record) return null;
    const docs = await this.documentsCollection();
    const byCollection = eq('collectionId', id);
    const counts = await this.call('count documents', (c) => c.collection(docs, this.tenant).aggregate({ filters: byCollection, sumOf: 'chunkCount' }));
    // Documents first: once their records are gone their chunks are invisible, so a crash at any later step
    // leaves a collection with fewer documents, never documents without a collection.
    await this.deleteAll(docs, byCollection, 'delete documents');
    await this.dropCollectionObjects(record);
    return { documents: counts.totalCount, chunks: counts.sum ?? 0 };
  }

  async getCollection(id: string): Promise<CollectionRecord | null> {
    if (!isCanonicalId(id)) return null;
    const [object] = await this.fetchByIds(await this.registryCollection(), [id]);
    if (!object || object.properties['kind'] !== 'collection') return null;
    const record = toCollection(object);
    this.core.owners.set(record.id, record.tenant);
    return record;
  }

  async setCollectionShare(id: string, tenant: string, role: ShareRole | null): Promise<CollectionRecord> {
    return this.withLock(id, async () => {
      const current = await this.getCollection(id);
      if (!current) throw notFound('Collection', id);
      checkShareTenant(current.tenant, tenant);
      const shares = withShare(current.shares ?? [], tenant, role);
      const next: CollectionRecord = {
        ...current,
        shares,
        version: current.version + 1,
        updatedAt: new Date(Math.max(Date.now(), current.updatedAt.getTime())),
      };
      await this.writeCollection(next);
      return next;
    });
  }

  async getCollectionByName(name: string, tenant: string = DEFAULT_TENANT): Promise<CollectionRecord | null> {
    const claim = await this.readClaim(tenant, name);
    if (!claim) return null;
    const record = await this.getCollection(claim.collectionId);
    return record && record.name === name && record.tenant === tenant ? record : null;
  }

  async listCollections(page: PageRequest, filter: CollectionListFilter = {}): Promise<Page<CollectionRecord>> {
    const { offset, limit } = this.checkPage(page);
    const registry = await this.registryCollection();
    const filters =
      filter.tenant === undefined
        ? eq('kind', 'collection')
        : andOf(
            eq('kind', 'collection'),
            filter.includeShared
              ? orOf(eq('ownerTenant', filter.tenant), { operator: 'ContainsAny', target: { property: 'sharedTenants' }, value: [filter.tenant] })
              : eq('ownerTenant', filter.tenant),
          );
    const [total, objects] = await Promise.all([
      this.call('count collections', (c) => c.collection(registry, this.tenant).aggregate({ filters })),
      limit === 0
        ? Promise.resolve([])
        : this.call('list collections', (c) =>
            c.collection(registry, this.tenant).fetchObjects({ filters, limit, offset, sort: [{ property: 'createdKey', ascending: true }] }),
          ),
    ]);
    return { items: objects.map(toCollection), total: total.totalCount };
  }

  async collectionStats(id: string): Promise<CollectionStats> {
    if (!(await this.getCollection(id))) throw notFound('Collection', id);
    const docs = await this.documentsCollection();
    const counts = await this.call('count documents', (c) =>
      c.collection(docs, this.tenant).aggregate({ filters: eq('collectionId', id), sumOf: 'chunkCount' }),
    );
    return { documents: counts.totalCount, chunks: counts.sum ?? 0 };
  }

  // ---------------------------------------------------------------- documents

  async getContentHashes(collectionId: string, externalIds: string[]): Promise<Map<string, string>> {
    const docs = await this.documentRecords(externalIds.map((e) => documentId(collectionId, e)));
    const out = new Map<string, string>();
    for (const doc of docs.values()) if (doc.collectionId === collectionId) out.set(doc.externalId, doc.contentHash);
    return out;
  }

  async upsertDocument(collectionId: string, doc: DocumentWrite): Promise<DocumentRecord> {
    const collection = await this.getCollection(collectionId);
    if (!collection) throw notFound('Collection', collectionId);
    const chunks = validateWrite(doc, collection.embedder.dimensions);
    const id = documentId(collectionId, doc.externalId);
    const shard = this.chunkTenant(collection.tenant);
    const chunkCollection = await this.ensureChunkCollection(collectionId, true, shard);
    const docs = await this.documentsCollection();
    const existing = (await this.documentRecords([id])).get(id) ?? null;
    const now = Date.now();
    const record: DocumentRecord = {
      id,
      collectionId,
      externalId: doc.externalId,
      title: doc.title,
      source: doc.source,
      contentType: doc.contentType,
      metadata: doc.metadata ?? {},
      contentHash: doc.contentHash,
      charCount: doc.charCount,
      chunkCount: chunks.length,
      createdAt: existing?.createdAt ?? new Date(now),
      updatedAt: new Date(Math.max(now, existing?.updatedAt.getTime() ?? 0)),
    };
    const filterable = { ...builtinProperties(record), ...flattenMetadata(record.metadata) };
    await this.ensureFlatProperties(chunkCollection, Object.keys(filterable));
    await this.ensureFlatProperties(docs, Object.keys(filterable));

    // 1. The new chunks (invisible until step 2: their contentHash or index does not fit the current record).
    const chunkObjects = chunks.map((chunk) => ({
      id: chunkId(id, chunk.index),
      properties: chunkProperties(record, chunk, filterable),
      vector: Array.from(chunk.vector),
    }));
    try {
      await this.insertAll(chunkCollection, chunkObjects, `store chunks of document "${doc.externalId}"`, shard);
    } catch (error) {
      // A new document leaves nothing behind; a replaced one keeps its old record (see the class comment).
      if (!existing) await this.deleteAll(chunkCollection, eq('documentId', id), 'remove partial chunks', shard).catch(() => undefined);
      throw error;
    }
    // 2. The commit point.
    await this.insertAll(docs, [{ id, properties: documentProperties(record, filterable) }], `store document "${doc.externalId}"`);
    // 3. Chunks of the previous version beyond the new count (already invisible).
    await this.deleteAll(chunkCollection, andOf(eq('documentId', id), cmp('GreaterThanEqual', 'chunkIndex', chunks.length)), 'delete stale chunks', shard);
    await this.bumpVersions([collectionId]);
    return record;
  }

  async deleteDocuments(ids: string[]): Promise<DeleteCounts> {
    const docs = await this.documentRecords(ids);
    if (docs.size === 0) return { documents: 0, chunks: 0 };
    const docsCollection = await this.documentsCollection();
    let chunks = 0;
    for (const doc of docs.values()) {
      // The record first (its chunks turn invisible with it), then the chunks.
      await this.deleteAll(docsCollection, byIds([doc.id]), 'delete document');
      const shard = await this.chunkTenantOf(doc.collectionId);
      if (shard !== null) await this.deleteAll(this.chunkCollectionName(doc.collectionId), eq('documentId', doc.id), 'delete chunks', shard);
      chunks += doc.chunkCount;
    }
    await this.bumpVersions([...new Set([...docs.values()].map((d) => d.collectionId))]);
    return { documents: docs.size, chunks };
  }

  async updateDocumentMetadata(id: string, metadata: Metadata): Promise<DocumentRecord | null> {
    const current = (await this.documentRecords([id])).get(id);
    if (!current) return null;
    const record: DocumentRecord = {
      ...current,
      metadata: metadata ?? {},
      updatedAt: new Date(Math.max(Date.now(), current.updatedAt.getTime())),
    };
    const shard = await this.chunkTenantOf(current.collectionId);
    if (shard === null) return null;
    const chunkCollection = await this.ensureChunkCollection(current.collectionId, true, shard);
    const docs = await this.documentsCollection();
    const filterable = { ...builtinProperties(record), ...flattenMetadata(record.metadata) };
    await this.ensureFlatProperties(chunkCollection, Object.keys(filterable));
    await this.ensureFlatProperties(docs, Object.keys(filterable));

    // Batch import replaces whole objects, so each visible chunk is read with its vector and written back with
    // the new filter properties: same id, text and vector.
    const ids = Array.from({ length: current.chunkCount }, (_, i) => chunkId(id, i));
    const rewritten: WriteObject[] = [];
    for (const object of await this.fetchByIds(chunkCollection, ids, { includeVector: true }, shard)) {
      const p = object.properties;
      if (p['contentHash'] !== current.contentHash || !object.vector) continue;
      const chunk = { index: num0(p['chunkIndex']), text: str0(p['text']), startOffset: num0(p['startOffset']), endOffset: num0(p['endOffset']) };
      rewritten.push({ id: object.uuid, properties: chunkProperties(record, chunk, filterable), vector: object.vector });
    }
    await this.insertAll(chunkCollection, rewritten, `update metadata of document "${current.externalId}"`, shard);
    await this.insertAll(docs, [{ id, properties: documentProperties(record, filterable) }], `update document "${current.externalId}"`);
    await this.bumpVersions([current.collectionId]);
    return record;
  }

  async getDocuments(ids: string[]): Promise<(DocumentRecord | null)[]> {
    if (ids.length === 0) return [];
    const docs = await this.documentRecords(ids);
    return ids.map((id) => docs.get(id) ?? null);
  }

  async getDocumentByExternalId(collectionId: string, externalId: string): Promise<DocumentRecord | null> {
    const id = documentId(collectionId, externalId);
    const doc = (await this.documentRecords([id])).get(id);
    return doc && doc.collectionId === collectionId ? doc : null;
  }

  async listDocuments(collectionId: string, page: PageRequest, filter?: Filter): Promise<Page<DocumentRecord>> {
    const { offset, limit } = this.checkPage(page);
    const docs = await this.documentsCollection();
    const where = andFilters([
      { kind: 'filter', filter: eq('collectionId', collectionId) },
      filter ? await this.translate(docs, filter) : { kind: 'all' },
    ]);
    if (where.kind === 'none') return { items: [], total: 0 };
    const filters = where.kind === 'filter' ? where.filter : undefined;
    const col = (c: WeaviateClientLike) => c.collection(docs, this.tenant);
    const [total, objects] = await Promise.all([
      this.call('count documents', (c) => col(c).aggregate({ filters })),
      limit === 0
        ? Promise.resolve([])
        : this.call('list documents', (c) => col(c).fetchObjects({ filters, limit, offset, sort: [{ property: 'createdKey', ascending: true }] })),
    ]);
    return { items: objects.map(toDocument), total: total.totalCount };
  }

  async listChunks(docId: string, page: PageRequest): Promise<Page<ChunkRecord>> {
    const { offset, limit } = this.checkPage(page);
    const doc = (await this.documentRecords([docId])).get(docId);
    if (!doc) return { items: [], total: 0 };
    const shard = await this.chunkTenantOf(doc.collectionId);
    if (shard === null) return { items: [], total: 0 };
    const chunkCollection = await this.ensureChunkCollection(doc.collectionId, false, shard);
    const filters = visibleChunksOf(doc);
    const col = (c: WeaviateClientLike) => c.collection(chunkCollection, shard);
    const [total, objects] = await Promise.all([
      this.call('count chunks', (c) => col(c).aggregate({ filters })),
      limit === 0
        ? Promise.resolve([])
        : this.call('list chunks', (c) =>
            col(c).fetchObjects({ filters, limit, offset, sort: [{ property: 'chunkIndex', ascending: true }], returnProperties: CHUNK_RETURN }),
          ),
    ]);
    return { items: objects.map((o) => toChunk(o, doc.collectionId)), total: total.totalCount };
  }

  /**
   * Chunk ids do not name their collection, so this asks each chunk collection of the registry in turn (stopping
   * once every id is found): a cost linear in the number of collections. Nothing in kbql's services calls it on a
   * hot path.
   */
  async getChunks(ids: string[]): Promise<(ChunkRecord | null)[]> {
    if (ids.length === 0) return [];
    const wanted = new Set(ids.filter(isCanonicalId));
    const found = new Map<string, { object: WObject; collectionId: string }>();
    if (wanted.size > 0) {
      for (const collection of await this.allCollections()) {
        const missing = [...wanted].filter((id) => !found.has(id));
        if (missing.length === 0) break;
        const shard = this.chunkTenant(collection.tenant);
        const name = await this.ensureChunkCollection(collection.id, false, shard);
        for (const object of await this.fetchByIds(name, missing, { returnProperties: CHUNK_RETURN }, shard)) {
          found.set(object.uuid, { object, collectionId: collection.id });
        }
      }
    }
    const docs = await this.documentRecords([...found.values()].map((f) => str0(f.object.properties['documentId'])));
    const out = new Map<string, ChunkRecord>();
    for (const [id, { object, collectionId }] of found) {
      const chunk = toChunk(object, collectionId);
      if (isVisible(chunk, str0(object.properties['contentHash']), docs.get(chunk.documentId))) out.set(id, chunk);
    }
    return ids.map((id) => out.get(id) ?? null);
  }

  // ---------------------------------------------------------------- search

  /**
   * VECTOR → nearVector (score = cosine similarity = 1 - cosine distance), KEYWORD → bm25 on `text`, HYBRID →
   * Weaviate's hybrid with `fusionType: 'RelativeScore'` (the port's fusion; each side's raw score is read from
   * `explainScore`). Weaviate orders equal scores its own way and the port breaks ties by chunk id, so the store
   * asks for the first `offset + limit + 1` hits and widens the window until the page boundary is not inside a tie
   * (and until enough visible hits are in it), then sorts and slices. At alpha 0 or 1 Weaviate runs one side only,
   * so hits only the other side found are absent instead of scoring 0.
   */
  async search(request: SearchRequest): Promise<SearchHit[]> {
    const { offset, limit } = this.checkPage(request);
    const collection = await this.getCollection(request.collectionId);
    if (!collection) throw notFound('Collection', request.collectionId);
    const mode = request.mode;
    if (mode !== 'VECTOR' && mode !== 'KEYWORD' && mode !== 'HYBRID') throw badInput(`Unknown search mode "${String(mode)}".`);
    let vector: number[] | null = null;
    if (mode !== 'KEYWORD') vector = Array.from(checkQueryVector(request, collection.embedder.dimensions));
    if (mode === 'HYBRID' && (!Number.isFinite(request.alpha) || request.alpha < 0 || request.alpha > 1)) {
      throw badInput('alpha must be a number between 0 and 1.', { alpha: Number.isFinite(request.alpha) ? request.alpha : String(request.alpha) });
    }
    if (limit === 0) return [];
    const need = offset + limit;
    const max = this.core.options.maxQueryResults;

    const shard = this.chunkTenant(collection.tenant);
    const chunkCollection = await this.ensureChunkCollection(collection.id, false, shard);
    const where = request.filter ? await this.translate(chunkCollection, request.filter) : ({ kind: 'all' } as const);
    if (where.kind === 'none') return [];
    const filters = where.kind === 'filter' ? where.filter : undefined;
    const hasTerms = queryTerms(request.text).length > 0;
    if (!hasTerms && (mode === 'KEYWORD' || (mode === 'HYBRID' && request.alpha === 0))) return [];

    const docs = new Map<string, DocumentRecord>();
    for (let k = Math.min(need + 1, max); ; k = Math.min(k * 2, max)) {
      const raw = await this.rank(chunkCollection, shard, request, vector, hasTerms, filters, k);
      const missing = raw.map((r) => str0(r.object.properties['documentId'])).filter((d) => !docs.has(d));
      for (const [id, doc] of await this.documentRecords(missing)) docs.set(id, doc);
      const hits: SearchHit[] = [];
      for (const r of raw) {
        const chunk = toChunk(r.object, collection.id);
        const doc = docs.get(chunk.documentId);
        if (!isVisible(chunk, str0(r.object.properties['contentHash']), doc)) continue;
        if (request.filter && !matchesDocument(request.filter, doc!)) continue;
        hits.push({ chunk, document: doc!, score: r.score, vectorScore: r.vectorScore, keywordScore: r.keywordScore });
      }
      hits.sort((a, b) => (a.score !== b.score ? b.score - a.score : a.chunk.id < b.chunk.id ? -1 : a.chunk.id > b.chunk.id ? 1 : 0));
      const boundary = hits[need - 1];
      const exhausted = raw.length < k || k >= max;
      if (exhausted || (boundary && raw[raw.length - 1]!.score < boundary.score)) return hits.slice(offset, need);
    }
  }

  /** The first `k` candidates of one query, best first, with the port's scores. */
  private async rank(
    chunkCollection: string,
    shard: string | undefined,
    request: SearchRequest,
    vector: number[] | null,
    hasTerms: boolean,
    filters: FilterValue | undefined,
    k: number,
  ): Promise<{ object: WObject; score: number; vectorScore: number | null; keywordScore: number | null }[]> {
    const base = { filters, limit: k, offset: 0, returnProperties: CHUNK_RETURN };
    const col = (c: WeaviateClientLike) => c.collection(chunkCollection, shard);
    if (request.mode === 'KEYWORD') {
      const objects = await this.call('bm25 search', (c) =>
        col(c).bm25(request.text, { ...base, queryProperties: ['text'], returnMetadata: ['score'] }),
      );
      return objects.map((object) => {
        const score = object.metadata?.score ?? 0;
        return { object, score, vectorScore: null, keywordScore: score };
      });
    }
    if (request.mode === 'VECTOR' || !hasTerms) {
      // HYBRID without a searchable term has no keyword side: the vector side alone over Weaviate's hybrid
      // candidate count, fused like Weaviate would.
      const candidates = request.mode === 'VECTOR' ? k : Math.max(k, this.core.options.hybridCandidates);
      const objects = await this.call('vector search', (c) =>
        col(c).nearVector(vector!, { ...base, limit: candidates, targetVector: VECTOR, returnMetadata: ['distance'] }),
      );
      const scored = objects.map((object) => ({ object, similarity: 1 - (object.metadata?.distance ?? 1) }));
      if (request.mode === 'VECTOR') {
        return scored.map(({ object, similarity }) => ({ object, score: similarity, vectorScore: similarity, keywordScore: null }));
      }
      const byId = new Map(scored.map((s) => [s.object.uuid, s.object]));
      const fused = relativeScoreFusion(scored.map((s) => ({ id: s.object.uuid, score: s.similarity })), [], request.alpha);
      return fused.slice(0, k).map((f) => ({ object: byId.get(f.id)!, score: f.score, vectorScore: f.vectorScore, keywordScore: null }));
    }
    const objects = await this.call('hybrid search', (c) =>
      col(c).hybrid(request.text, {
        ...base,
        alpha: request.alpha,
        fusionType: 'RelativeScore',
        vector: vector!,
        targetVector: VECTOR,
        queryProperties: ['text'],
        returnMetadata: ['score', 'explainScore'],
      }),
    );
    return objects.map((object) => {
      const sides = parseHybridExplain(object.metadata?.explainScore ?? '');
      return { object, score: object.metadata?.score ?? 0, vectorScore: sides.vector, keywordScore: sides.keyword };
    });
  }

  // ---------------------------------------------------------------- plumbing

  /**
   * The shared client, connecting on first use. init() waits for Weaviate up to `initTimeoutMs`, retrying; a
   * connection opened lazily by a call makes one attempt through the breaker, so a dead Weaviate fails fast.
   */
  private async client(patient = false): Promise<WeaviateClientLike> {
    const core = this.core;
    if (core.closed) throw new AppError('UPSTREAM_UNAVAILABLE', 'The Weaviate store is closed.', { dependency: 'weaviate' });
    if (!core.client) {
      core.client = this.connect(patient);
      core.client.catch(() => {
        core.client = null;
      });
    }
    return core.client;
  }

  private async connect(patient: boolean): Promise<WeaviateClientLike> {
    const { options } = this.core;
    const attempts: Promise<WeaviateClientLike>[] = [];
    const started = Date.now();
    let lastFailure: unknown;
    try {
      return await this.core.resilience.run(
        'connect',
        () => {
          const attempt = this.core.connectFn(options.connect);
          attempts.push(attempt);
          attempt.catch((error: unknown) => {
            lastFailure = error;
          });
          return attempt;
        },
        patient
          ? // init(): keep trying until the bound, Weaviate may still be starting.
            { timeoutMs: options.initTimeoutMs, timeoutScope: 'total', retries: options.retries === 0 ? 0 : 1_000, breaker: false }
          : { timeoutMs: options.initTimeoutMs, timeoutScope: 'total', retry: false },
      );
    } catch (error) {
      // An attempt that completes after the deadline must not leak its connection.
      for (const attempt of attempts) attempt.then((c) => c.close()).catch(() => undefined);
      const grpc = `${options.connect.grpcHost}:${options.connect.grpcPort}`;
      throw new AppError(
        'UPSTREAM_UNAVAILABLE',
        `Weaviate at ${options.displayUrl} (gRPC ${grpc}) is unreachable (${reasonOf(lastFailure ?? (error as { cause?: unknown }).cause ?? error)}); gave up connecting after ${Date.now() - started} ms (limit ${options.initTimeoutMs} ms).`,
        { dependency: 'weaviate', url: options.displayUrl, grpc, timeoutMs: options.initTimeoutMs },
        { cause: error },
      );
    }
  }

  /** One call to Weaviate under the timeout, retry and breaker policies. */
  private async call<T>(
    operation: string,
    fn: (client: WeaviateClientLike) => Promise<T>,
    options: { write?: boolean; retry?: boolean } = {},
  ): Promise<T> {
    const client = await this.client();
    const { timeoutMs, insertTimeoutMs } = this.core.options;
    return this.core.resilience.run(operation, () => fn(client), {
      timeoutMs: options.write ? insertTimeoutMs : timeoutMs,
      retry: options.retry,
    });
  }

  private get prefix(): string {
    return this.core.options.collectionPrefix;
  }

  private chunkCollectionName(collectionId: string): string {
    const encoded = UUID_PATTERN.test(collectionId)
      ? collectionId.replace(/-/g, '').toLowerCase()
      : Buffer.from(collectionId, 'utf8').toString('hex');
    return `${this.prefix}Chunks_${encoded}`;
  }

  private ensureBase(): Promise<void> {
    if (!this.core.base) {
      this.core.base = (async () => {
        await this.ensureCollection(`${this.prefix}Registry`, 'kbql collections and name claims', REGISTRY_PROPERTIES, 'none');
        await this.ensureCollection(`${this.prefix}Documents`, 'kbql document records', DOCUMENT_PROPERTIES, 'none');
      })();
      this.core.base.catch(() => {
        this.core.base = null;
      });
    }
    return this.core.base;
  }

  private async registryCollection(): Promise<string> {
    await this.ensureBase();
    return this.ready(`${this.prefix}Registry`);
  }

  private async documentsCollection(): Promise<string> {
    await this.ensureBase();
    return this.ready(`${this.prefix}Documents`);
  }

  /** The chunk collection of a kbql collection, created (writes) or only looked up (reads) on first use. */
  private async ensureChunkCollection(collectionId: string, create = true, shard: string | undefined = this.tenant): Promise<string> {
    const name = this.chunkCollectionName(collectionId);
    if (!this.core.schema.has(name)) {
      if (create) await this.ensureCollection(name, `kbql chunks of collection ${collectionId}`, CHUNK_PROPERTIES, 'hnsw-cosine');
      else await this.readSchema(name);
    }
    return this.ready(name, shard);
  }

  /** The Weaviate tenant holding the chunks of a collection owned by kbql tenant `owner`. */
  private chunkTenant(owner: string): string | undefined {
    return this.core.options.bindTenants ? weaviateTenantFor(owner) : this.tenant;
  }

  /** {@link chunkTenant} of a collection by id; null when the collection no longer exists. */
  private async chunkTenantOf(collectionId: string): Promise<string | undefined | null> {
    if (!this.core.options.bindTenants) return this.tenant;
    let owner = this.core.owners.get(collectionId);
    if (owner === undefined) {
      const record = await this.getCollection(collectionId);
      if (!record) return null;
      owner = record.tenant;
    }
    return this.chunkTenant(owner);
  }

  /** Creates the Weaviate collection unless it exists, adds missing base properties, caches its schema. */
  private async ensureCollection(name: string, description: string, properties: PropertySpec[], vectors: CollectionSpec['vectors']): Promise<void> {
    const exists = await this.call('check collection', (c) => c.collectionExists(name));
    if (!exists) {
      const spec: CollectionSpec = {
        name,
        description,
        properties,
        vectors,
        multiTenant: this.core.options.multiTenant,
        invertedIndex: { bm25K1: BM25.k1, bm25B: BM25.b, indexNullState: true },
      };
      try {
        await this.call('create collection', (c) => c.createCollection(spec), { write: true });
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
    }
    const known = await this.readSchema(name);
    for (const property of properties) if (!known.has(property.name)) await this.addProperty(name, property);
  }

  private async readSchema(name: string): Promise<Set<string>> {
    const properties = await this.call('read schema', (c) => c.listProperties(name));
    const set = new Set(properties.map((p) => p.name));
    this.core.schema.set(name, { properties: set, readAt: Date.now() });
    return set;
  }

  private async addProperty(name: string, property: PropertySpec): Promise<void> {
    try {
      await this.call('add property', (c) => c.addProperty(name, property), { write: true });
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
    this.core.schema.get(name)?.properties.add(property.name);
  }

  /** Adds the typed `meta_*` / `fx_*` properties a write needs (Weaviate's auto-schema would guess their types). */
  private async ensureFlatProperties(name: string, properties: string[]): Promise<void> {
    const known = this.core.schema.get(name)?.properties ?? (await this.readSchema(name));
    for (const property of properties) {
      if (known.has(property)) continue;
      const type = flatTypeOf(property);
      if (!type) continue; // fx_* are base properties
      await this.addProperty(name, {
        name: property,
        dataType: FLAT_DATA_TYPES[type],
        tokenization: 'field',
        indexFilterable: true,
        indexSearchable: false,
      });
    }
  }

  /** Translates a filter against a collection's schema, re-reading it (throttled) when the filter names unseen properties. */
  private async translate(name: string, filter: Filter): Promise<TranslatedFilter> {
    let entry = this.core.schema.get(name);
    if (!entry) {
      await this.readSchema(name);
      entry = this.core.schema.get(name)!;
    }
    const unseen = referencedProperties(filter).some((p) => !entry!.properties.has(p));
    if (unseen && Date.now() - entry.readAt > SCHEMA_REFRESH_MS) {
      await this.readSchema(name);
      entry = this.core.schema.get(name)!;
    }
    const known = entry.properties;
    return translateFilter(filter, (p) => known.has(p));
  }

  /** Makes sure this store's tenant exists on a multi-tenant collection; returns the collection name. */
  private async ready(name: string, shard: string | undefined = this.tenant): Promise<string> {
    const { multiTenant } = this.core.options;
    if (!multiTenant) return name;
    if (shard === undefined) {
      throw new AppError('INTERNAL_SERVER_ERROR', 'This Weaviate store is multi-tenant: use withTenant(tenant) or the tenant option.');
    }
    const key = `${name}\u0000${shard}`;
    if (!this.core.tenants.has(key)) {
      const tenant = shard;
      try {
        await this.call('create tenant', (c) => c.ensureTenant(name, tenant), { write: true });
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
      this.core.tenants.add(key);
    }
    return name;
  }

  /** {@link checkPage}, within Weaviate's QUERY_MAXIMUM_RESULTS. */
  private checkPage(page: { offset: number; limit: number }): { offset: number; limit: number } {
    const { offset, limit } = checkPage(page);
    const max = this.core.options.maxQueryResults;
    if (limit > 0 && offset + limit > max) throw badInput(`offset + limit must not exceed ${max} on Weaviate.`, { offset, limit, max });
    return { offset, limit };
  }

  private async fetchByIds(
    name: string,
    ids: string[],
    options: { includeVector?: boolean; returnProperties?: string[] } = {},
    shard: string | undefined = this.tenant,
  ): Promise<WObject[]> {
    const unique = [...new Set(ids.filter(isCanonicalId))];
    const out: WObject[] = [];
    for (let i = 0; i < unique.length; i += ID_BATCH) {
      const batch = unique.slice(i, i + ID_BATCH);
      out.push(
        ...(await this.call('fetch by id', (c) =>
          c.collection(name, shard).fetchObjects({ filters: byIds(batch), limit: batch.length, ...options }),
        )),
      );
    }
    return out;
  }

  private async documentRecords(ids: string[]): Promise<Map<string, DocumentRecord>> {
    const valid = ids.filter(isCanonicalId);
    if (valid.length === 0) return new Map();
    const objects = await this.fetchByIds(await this.documentsCollection(), valid);
    return new Map(objects.map((o) => [o.uuid, toDocument(o)]));
  }

  private async allCollections(): Promise<CollectionRecord[]> {
    const out: CollectionRecord[] = [];
    const page = 1000;
    for (let offset = 0; offset < this.core.options.maxQueryResults; offset += page) {
      const { items } = await this.listCollections({ offset, limit: Math.min(page, this.core.options.maxQueryResults - offset) });
      out.push(...items);
      if (items.length < page) break;
    }
    return out;
  }

  /** Batch upsert in slices; any per-object error fails the whole write with AppError (never a partial success). */
  private async insertAll(name: string, objects: WriteObject[], operation: string, shard: string | undefined = this.tenant): Promise<void> {
    const { batchSize } = this.core.options;
    for (let i = 0; i < objects.length; i += batchSize) {
      const batch = objects.slice(i, i + batchSize);
      const result = await this.call(operation, (c) => c.collection(name, shard).insertMany(batch), { write: true });
      const failed = Object.entries(result.errors);
      if (failed.length > 0) {
        const cause = new Error(failed.slice(0, 5).map(([index, e]) => `#${Number(index) + i}: ${e.message}`).join('; '));
        throw new AppError(
          'UPSTREAM_UNAVAILABLE',
          `Weaviate rejected ${failed.length} of ${batch.length} objects while trying to ${operation}; nothing was committed.`,
          { dependency: 'weaviate', operation, failed: failed.length, objects: objects.length },
          { cause },
        );
      }
    }
  }

  /** Batch delete, repeated until nothing matches: Weaviate caps the objects one call deletes. */
  private async deleteAll(name: string, filters: FilterValue, operation: string, shard: string | undefined = this.tenant): Promise<number> {
    let deleted = 0;
    for (let round = 0; round < MAX_DELETE_ROUNDS; round++) {
      const result = await this.call(operation, (c) => c.collection(name, shard).deleteMany(filters), { write: true });
      if (result.failed > 0) {
        throw new AppError('UPSTREAM_UNAVAILABLE', `Weaviate failed to delete ${result.failed} objects during ${operation}.`, {
          dependency: 'weaviate',
          operation,
          failed: result.failed,
        });
      }
      deleted += result.successful;
      if (result.matches === 0 || result.successful === 0) return deleted;
    }
    throw new AppError('UPSTREAM_UNAVAILABLE', `Weaviate kept matching objects during ${operation}.`, { dependency: 'weaviate', operation });
  }

  private async writeCollection(record: CollectionRecord): Promise<void> {
    await this.insertAll(await this.registryCollection(), [{ id: record.id, properties: collectionProperties(record, this.chunkCollectionName(record.id)) }], 'store collection');
  }

  /** Removes a collection's chunk collection, registry record and name claim (documents are the caller's). */
  private async dropCollectionObjects(record: CollectionRecord): Promise<void> {
    const name = this.chunkCollectionName(record.id);
    await this.call('delete collection', (c) => c.deleteCollection(name), { write: true });
    this.core.schema.delete(name);
    for (const key of [...this.core.tenants]) if (key.startsWith(`${name}\u0000`)) this.core.tenants.delete(key);
    await this.deleteAll(await this.registryCollection(), byIds([record.id]), 'delete collection record');
    await this.releaseClaim(record.tenant, record.name, record.id);
  }

  private async readClaim(tenant: string, name: string): Promise<{ collectionId: string } | null> {
    const [claim] = await this.fetchByIds(await this.registryCollection(), [nameClaimId(tenant, name)]);
    const collectionId = claim?.properties['collectionId'];
    return claim && claim.properties['kind'] === 'name' && typeof collectionId === 'string' ? { collectionId } : null;
  }

  /** Reserves a collection name for `collectionId`; CONFLICT when a live collection holds it. */
  private async claimName(tenant: string, name: string, collectionId: string): Promise<void> {
    const registry = await this.registryCollection();
    const claim: WriteObject = { id: nameClaimId(tenant, name), properties: { kind: 'name', collectionId, name, ownerTenant: tenant } };
    try {
      await this.call('claim collection name', (c) => c.collection(registry, this.tenant).insert(claim), { write: true });
      return;
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
    const holder = await this.readClaim(tenant, name);
    if (holder?.collectionId === collectionId) return; // our own earlier attempt
    const owner = holder ? await this.getCollection(holder.collectionId) : null;
    if (owner && owner.name === name && owner.tenant === tenant) throw conflict(name);
    // A stale claim (its collection was deleted or renamed and the release did not happen): take it over.
    await this.insertAll(registry, [claim], 'claim collection name');
  }

  private async releaseClaim(tenant: string, name: string, collectionId: string): Promise<void> {
    const holder = await this.readClaim(tenant, name);
    if (holder?.collectionId !== collectionId) return;
    await this.deleteAll(await this.registryCollection(), byIds([nameClaimId(tenant, name)]), 'release collection name');
  }

  private async bumpVersions(collectionIds: string[]): Promise<void> {
    for (const id of collectionIds) {
      await this.withLock(id, async () => {
        const record = await this.getCollection(id);
        if (!record) return;
        await this.writeCollection({
          ...record,
          version: record.version + 1,
          updatedAt: new Date(Math.max(Date.now(), record.updatedAt.getTime())),
        });
      });
    }
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.core.locks.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.core.locks.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.core.locks.get(key) === settled) this.core.locks.delete(key);
    }
  }
}

// ------------------------------------------------------------------ helpers


const conflict = (name: string): AppError =>
  new AppError('CONFLICT', `A collection named "${name}" already exists.`, { field: 'name', name });


/** Checks a write before anything is stored; returns the chunks ordered by index. */
function validateWrite(doc: DocumentWrite, dimensions: number): ChunkWrite[] {
  const chunks = [...doc.chunks].sort((a, b) => a.index - b.index);
  chunks.forEach((chunk, position) => {
    // Visibility is "index < chunkCount", so indexes are positions: 0 … n-1, each once.
    if (chunk.index !== position) {
      throw badInput(`Document "${doc.externalId}": chunk indexes must be 0 to ${chunks.length - 1}, each once.`, {
        externalId: doc.externalId,
        index: chunk.index,
      });
    }
    checkChunkVector(doc.externalId, chunk, dimensions);
  });
  return chunks;
}
