import { AppError } from '../../errors';
import type {
  ChunkRecord,
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
import { connectWeaviate } from './weaviate.client';
import { routeClientRetryLog } from './weaviate.client-internals';
import { WeaviateCollections } from './weaviate.collections';
import { checkTenant, resolveOptions, type WeaviateStoreDeps, type WeaviateStoreOptions } from './weaviate.options';
import { WeaviateReads } from './weaviate.reads';
import { WeaviateSchema } from './weaviate.schema';
import { WeaviateSearch } from './weaviate.search';
import { createCore, WeaviateSession, type WeaviateCore } from './weaviate.session';
import { WeaviateWrites } from './weaviate.writes';

export type { WeaviateStoreDeps, WeaviateStoreOptions } from './weaviate.options';
export { weaviateTenantFor } from './weaviate.options';
export { parseHybridExplain, queryTerms } from './weaviate.search';

/**
 * KnowledgeStore on Weaviate 1.3x through weaviate-client v3 (gRPC for data and search, REST for schema).
 *
 * Layout (names from `collectionPrefix`, default `Kbql`):
 * - `KbqlRegistry`: one object per kbql collection (name, description, chunking, embedder, version, timestamps).
 * - `KbqlName_<hash of tenant and name>`: one empty collection per collection name, its claim. Weaviate creates
 *   collections one at a time through its Raft log, so of two racing creates of one name exactly one succeeds
 *   (`weaviate.claims.ts`; a REST object insert would not do: it checks, then writes).
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
 *
 * The parts, one concern each, share one {@link WeaviateSession} (connection, breaker, caches):
 * `weaviate.schema.ts` (collections and properties in Weaviate), `weaviate.collections.ts`, `weaviate.reads.ts`,
 * `weaviate.writes.ts` and `weaviate.search.ts`; objects and filters in `weaviate.rows.ts` and `weaviate.filters.ts`.
 */
export class WeaviateKnowledgeStore implements KnowledgeStore {
  readonly kind = 'weaviate';
  private readonly core: WeaviateCore;
  private readonly isView: boolean;
  private readonly session: WeaviateSession;
  private readonly schema: WeaviateSchema;
  private readonly collections: WeaviateCollections;
  private readonly reads: WeaviateReads;
  private readonly writes: WeaviateWrites;
  private readonly searcher: WeaviateSearch;
  private detachLog: (() => void) | null = null;

  /** @param view internal: a tenant view sharing another store's state (see {@link withTenant}). */
  constructor(options: WeaviateStoreOptions, deps: WeaviateStoreDeps = {}, view?: { core: WeaviateCore; tenant: string }) {
    let tenant: string | undefined;
    if (view) {
      this.core = view.core;
      tenant = view.tenant;
      this.isView = true;
    } else {
      this.isView = false;
      const resolved = resolveOptions(options);
      this.core = createCore(resolved, deps.connect ?? connectWeaviate);
      if (deps.log) this.detachLog = routeClientRetryLog(deps.log);
      if (options.tenant !== undefined) {
        if (!resolved.multiTenant) throw new TypeError('tenant is only meaningful with multiTenant: true');
        checkTenant(options.tenant);
      }
      if (resolved.bindTenants && !resolved.multiTenant) throw new TypeError('bindTenants needs multiTenant: true');
      tenant = options.tenant;
    }
    this.session = new WeaviateSession(this.core, tenant);
    this.schema = new WeaviateSchema(this.session);
    this.collections = new WeaviateCollections(this.session, this.schema);
    this.reads = new WeaviateReads(this.session, this.schema, this.collections);
    this.writes = new WeaviateWrites(this.session, this.schema, this.collections, this.reads);
    this.searcher = new WeaviateSearch(this.session, this.schema, this.collections, this.reads);
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
    await this.session.client(true);
    await this.schema.ensureBase();
  }

  /** Closes the connection. On a tenant view this does nothing: views share the root store's connection. */
  async close(): Promise<void> {
    if (this.isView || this.core.closed) return;
    this.core.closed = true;
    this.detachLog?.();
    const pending = this.core.client;
    this.core.client = null;
    if (pending) await pending.then((c) => c.close()).catch(() => undefined);
  }

  /**
   * REST readiness (`/.well-known/ready`), then one cheap gRPC call (a one-object fetch from the registry): gRPC
   * carries every search and batch write, and a server can be REST-ready with its gRPC port unreachable.
   */
  async ping(): Promise<void> {
    const ready = await this.session.call('readiness check', (c) => c.isReady(), { retry: false });
    if (!ready) {
      throw new AppError('UPSTREAM_UNAVAILABLE', `Weaviate at ${this.core.options.displayUrl} is not ready.`, {
        dependency: 'weaviate',
      });
    }
    // A multi-tenant store without a tenant has no shard to read from (its tenant views ping through the root).
    if (this.core.options.multiTenant && this.session.tenant === undefined) return;
    const registry = await this.schema.registryCollection();
    await this.session.call(
      'gRPC readiness check',
      (c) => c.collection(registry, this.session.tenant).fetchObjects({ limit: 1, returnProperties: ['kind'] }),
      { retry: false },
    );
  }

  // ---------------------------------------------------------------- collections

  createCollection(input: NewCollection): Promise<CollectionRecord> {
    return this.collections.createCollection(input);
  }

  updateCollection(id: string, patch: CollectionPatch): Promise<CollectionRecord> {
    return this.collections.updateCollection(id, patch);
  }

  deleteCollection(id: string): Promise<DeleteCounts | null> {
    return this.collections.deleteCollection(id);
  }

  getCollection(id: string): Promise<CollectionRecord | null> {
    return this.collections.getCollection(id);
  }

  setCollectionShare(id: string, tenant: string, role: ShareRole | null): Promise<CollectionRecord> {
    return this.collections.setCollectionShare(id, tenant, role);
  }

  getCollectionByName(name: string, tenant?: string): Promise<CollectionRecord | null> {
    return this.collections.getCollectionByName(name, tenant);
  }

  listCollections(page: PageRequest, filter?: CollectionListFilter): Promise<Page<CollectionRecord>> {
    return this.collections.listCollections(page, filter);
  }

  collectionStats(id: string): Promise<CollectionStats> {
    return this.collections.collectionStats(id);
  }

  // ---------------------------------------------------------------- documents

  getContentHashes(collectionId: string, externalIds: string[]): Promise<Map<string, string>> {
    return this.reads.getContentHashes(collectionId, externalIds);
  }

  upsertDocument(collectionId: string, doc: DocumentWrite): Promise<DocumentRecord> {
    return this.writes.upsertDocument(collectionId, doc);
  }

  deleteDocuments(ids: string[]): Promise<DeleteCounts> {
    return this.writes.deleteDocuments(ids);
  }

  updateDocumentMetadata(id: string, metadata: Metadata): Promise<DocumentRecord | null> {
    return this.writes.updateDocumentMetadata(id, metadata);
  }

  getDocuments(ids: string[]): Promise<(DocumentRecord | null)[]> {
    return this.reads.getDocuments(ids);
  }

  getDocumentByExternalId(collectionId: string, externalId: string): Promise<DocumentRecord | null> {
    return this.reads.getDocumentByExternalId(collectionId, externalId);
  }

  listDocuments(collectionId: string, page: PageRequest, filter?: Filter): Promise<Page<DocumentRecord>> {
    return this.reads.listDocuments(collectionId, page, filter);
  }

  listChunks(docId: string, page: PageRequest): Promise<Page<ChunkRecord>> {
    return this.reads.listChunks(docId, page);
  }

  /** See {@link WeaviateReads.getChunks}: asks each chunk collection in turn. */
  getChunks(ids: string[]): Promise<(ChunkRecord | null)[]> {
    return this.reads.getChunks(ids);
  }

  // ---------------------------------------------------------------- search

  /** See {@link WeaviateSearch.search}. */
  search(request: SearchRequest): Promise<SearchHit[]> {
    return this.searcher.search(request);
  }
}
