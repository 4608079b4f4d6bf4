import type { AppError } from '../errors';

/**
 * The storage port: every adapter (embedded SQLite, Weaviate) implements it and passes
 * `test/contract/knowledge-store.contract.ts`. Adapters throw {@link AppError} with generic codes
 * (CONFLICT for a duplicate collection name, NOT_FOUND for an unknown collection on write,
 * UPSTREAM_UNAVAILABLE / UPSTREAM_TIMEOUT when a networked backend fails).
 */

export type ChunkingStrategy = 'SENTENCE' | 'MARKDOWN' | 'AUTO';

export interface ChunkingSettings {
  /** AUTO: Markdown-aware for Markdown documents, sentence-aware otherwise. */
  strategy: ChunkingStrategy;
  /** Target chunk size in tokens. */
  chunkSize: number;
  /** Overlap between consecutive chunks in tokens. */
  chunkOverlap: number;
}

export interface EmbedderInfo {
  /** Stable fingerprint of the embedder, e.g. `kbql-hash-v1` or `openai:text-embedding-3-small`. */
  name: string;
  dimensions: number;
}

/** The tenant of collections created without one (and of every collection written before tenants existed). */
export const DEFAULT_TENANT = 'default';

/** What a share grants another tenant: READER reads and searches; WRITER also ingests, deletes and edits documents. */
export type ShareRole = 'READER' | 'WRITER';

/** A grant of a collection to another tenant (see {@link KnowledgeStore.setCollectionShare}). */
export interface CollectionShare {
  tenant: string;
  role: ShareRole;
}

export interface CollectionRecord {
  id: string;
  /** The tenant that owns the collection; its documents and chunks belong to it too. Names are unique per tenant. */
  tenant: string;
  /**
   * The other tenants the collection is shared with, sorted by tenant. Adapters always set it (`[]` when none);
   * optional only so records built by hand (tests, fakes) need not.
   */
  shares?: readonly CollectionShare[];
  name: string;
  description: string | null;
  chunking: ChunkingSettings;
  embedder: EmbedderInfo;
  /** Incremented by every write to the collection or its documents; caches key on it. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface CollectionStats {
  documents: number;
  chunks: number;
}

/** How a collection's vector searches run right now (see {@link KnowledgeStore.vectorIndexState}). */
export interface VectorIndexState {
  /** True when searches go through an approximate (graph) index; false for an exact scan. */
  approximate: boolean;
  /** Share of the live chunks the approximate index covers (the rest are searched exactly); 1 for an exact scan. */
  indexedFraction: number;
}

/** Start-up loading of a store's in-process indexes (see {@link KnowledgeStore.warmUp}), for /readyz and metrics. */
export interface StoreWarmUpState {
  /** True from the start of warm-up until every collection present then is loaded. */
  warming: boolean;
  /** Collections warm-up found, and how many of them it has loaded. */
  collections: number;
  loadedCollections: number;
  /** Chunks in the loaded vector indexes, and those an index already serves (the rest wait for the graph builder). */
  rows: number;
  indexedRows: number;
  /** How long the finished warm-up took, in ms; null until it ends. */
  warmMs: number | null;
}

export interface NewCollection {
  /** @default DEFAULT_TENANT ('default') */
  tenant?: string;
  name: string;
  description: string | null;
  chunking: ChunkingSettings;
  embedder: EmbedderInfo;
}

export interface CollectionPatch {
  name?: string;
  description?: string | null;
}

export type ContentType = 'TEXT' | 'MARKDOWN' | 'HTML';

export type MetadataValue = string | number | boolean | null | MetadataValue[] | { [key: string]: MetadataValue };
export type Metadata = Record<string, MetadataValue>;

export interface DocumentRecord {
  /** Globally unique: `documentId(collectionId, externalId)` from `src/ids.ts`. */
  id: string;
  collectionId: string;
  externalId: string;
  title: string | null;
  source: string | null;
  contentType: ContentType;
  metadata: Metadata;
  /** sha256 (hex) of the normalised content plus chunking settings; same hash means no re-embedding. */
  contentHash: string;
  /** Characters of extracted text. */
  charCount: number;
  chunkCount: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ChunkRecord {
  /** Globally unique: `chunkId(documentId, index)` from `src/ids.ts`. */
  id: string;
  documentId: string;
  collectionId: string;
  /** 0-based position of the chunk in its document. */
  index: number;
  text: string;
  /** Character offsets of the chunk in the document's extracted text (best effort; -1 when unknown). */
  startOffset: number;
  endOffset: number;
}

export interface ChunkWrite {
  index: number;
  text: string;
  startOffset: number;
  endOffset: number;
  vector: Float32Array;
}

export interface DocumentWrite {
  externalId: string;
  title: string | null;
  source: string | null;
  contentType: ContentType;
  metadata: Metadata;
  contentHash: string;
  charCount: number;
  chunks: ChunkWrite[];
}

/** Fields every document has, usable in filters next to metadata keys. */
export type BuiltinField = 'documentId' | 'externalId' | 'source' | 'title';

export type FilterScalar = string | number | boolean;

export type FilterOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte' | 'in' | 'contains';

export type FilterField = { type: 'builtin'; name: BuiltinField } | { type: 'metadata'; key: string };

/**
 * A validated filter tree. Semantics every adapter must honour:
 * - `eq`/`ne`/`gt`/`gte`/`lt`/`lte` compare a scalar field with a scalar; numbers compare numerically, strings
 *   lexicographically; a comparison between different types is false. A missing field fails every op but `ne`.
 * - `ne` matches when the field is missing or differs.
 * - `in` matches when the field equals one of the values (value is a non-empty array).
 * - `contains`: on an array field, the array has an element equal to the value; on a string field, the string
 *   contains the value as a substring (case-sensitive).
 * Metadata keys are `[A-Za-z_][A-Za-z0-9_]*` (validated before reaching a store); only top-level keys are filterable.
 */
export type Filter =
  | { kind: 'and'; filters: Filter[] }
  | { kind: 'or'; filters: Filter[] }
  | { kind: 'condition'; field: FilterField; op: FilterOp; value: FilterScalar | FilterScalar[] };

export type SearchMode = 'VECTOR' | 'KEYWORD' | 'HYBRID';

export interface SearchRequest {
  collectionId: string;
  mode: SearchMode;
  /** The query text (BM25 side). */
  text: string;
  /** The query embedding (vector side); required for VECTOR and HYBRID. */
  vector?: Float32Array;
  /** HYBRID weight of the vector side in [0,1]: 1 = vector only, 0 = keyword only. */
  alpha: number;
  /** Hits to return after `offset`. */
  limit: number;
  offset: number;
  filter?: Filter;
}

export interface SearchHit {
  chunk: ChunkRecord;
  document: DocumentRecord;
  /**
   * The ranking score. VECTOR: cosine similarity. KEYWORD: BM25 (higher is better).
   * HYBRID: relative-score fusion, `alpha * norm(vector) + (1 - alpha) * norm(keyword)`, each side min-max
   * normalised over its own candidate list, a side that did not return the chunk contributing 0.
   */
  score: number;
  /** Cosine similarity of the chunk to the query vector, when the vector side was computed for it. */
  vectorScore: number | null;
  /** Raw BM25 score, when the chunk matched the keyword side. */
  keywordScore: number | null;
}

export interface Page<T> {
  items: T[];
  total: number;
}

/** Which collections {@link KnowledgeStore.listCollections} returns. */
export interface CollectionListFilter {
  /** Only this tenant's collections; undefined: every tenant's (operators and metrics only, never a caller). */
  tenant?: string;
  /**
   * With `tenant`: also the collections other tenants share with it (still ordered by creation time, then id).
   * @default false
   */
  includeShared?: boolean;
}

export interface PageRequest {
  offset: number;
  limit: number;
}

export interface DeleteCounts {
  documents: number;
  chunks: number;
}

/** Per-document outcome of {@link KnowledgeStore.upsertDocuments}. */
export type BulkUpsertResult =
  { ok: true; externalId: string; document: DocumentRecord } | { ok: false; externalId: string; error: AppError };

/**
 * Collections, documents and chunks with their vectors, and search over them: the embedded SQLite store (the
 * default) or Weaviate. Every method states its errors, atomicity and ordering where they matter; the contract is
 * checked against both adapters by `test/contract/knowledge-store.contract.ts`.
 */
export interface KnowledgeStore {
  /** Adapter name for metrics and logs, e.g. `embedded`, `weaviate`. */
  readonly kind: string;
  /** Opens files or connections, creates what is missing. Idempotent. */
  init(): Promise<void>;
  /** Closes files or connections. Idempotent. */
  close(): Promise<void>;
  /** Cheap liveness check for /readyz; throws when the backend cannot serve. */
  ping(): Promise<void>;

  /** Throws CONFLICT when the name is taken in the tenant (the same name in another tenant is fine). */
  createCollection(input: NewCollection): Promise<CollectionRecord>;
  /** Throws NOT_FOUND for an unknown id, CONFLICT for a name taken in the collection's tenant. Bumps `version`. */
  updateCollection(id: string, patch: CollectionPatch): Promise<CollectionRecord>;
  /** Removes the collection, its documents and chunks; null when it did not exist. */
  deleteCollection(id: string): Promise<DeleteCounts | null>;
  /** The collection, null when unknown (any tenant: access is the caller's to check). */
  getCollection(id: string): Promise<CollectionRecord | null>;
  /** The tenant's collection of that name (names are unique per tenant). @default tenant DEFAULT_TENANT */
  getCollectionByName(name: string, tenant?: string): Promise<CollectionRecord | null>;
  /**
   * Grants `tenant` (not the owner) `role` on the collection, replacing its earlier grant; `role` null revokes it
   * (revoking a grant that does not exist is no error). Bumps `version`, so nothing cached under the old access
   * outlives the change. Throws NOT_FOUND for an unknown id, BAD_USER_INPUT for the owner tenant.
   */
  setCollectionShare(id: string, tenant: string, role: ShareRole | null): Promise<CollectionRecord>;
  /** Ordered by creation time, then id. */
  listCollections(page: PageRequest, filter?: CollectionListFilter): Promise<Page<CollectionRecord>>;
  /** Its document and chunk counts. Throws NOT_FOUND for an unknown id. */
  collectionStats(id: string): Promise<CollectionStats>;
  /**
   * How the collection's vector searches run right now. Optional: a store whose index is not this process's
   * (Weaviate) does not implement it. Synchronous and cheap; never throws (an unknown id reads as exact).
   */
  vectorIndexState?(collectionId: string): VectorIndexState;
  /**
   * Loads what searches need in memory (the embedded store: every collection's vector index, off the event loop,
   * and its saved ANN graph), so the first searches are as fast as the rest. Optional; never rejects. Searches
   * arriving meanwhile are answered (they wait for their collection's load).
   */
  warmUp?(): Promise<void>;
  /** Progress of {@link warmUp} and coverage of the loaded indexes. Optional, synchronous, cheap. */
  warmUpState?(): StoreWarmUpState;

  /** Content hashes of the documents that exist, keyed by external id. */
  getContentHashes(collectionId: string, externalIds: string[]): Promise<Map<string, string>>;
  /**
   * Inserts the document or replaces it and all its chunks in one atomic step: readers see the old version or the
   * new one, never a mix, and a crash leaves one of the two. Bumps the collection's `version`.
   * Throws NOT_FOUND for an unknown collection, BAD_USER_INPUT when a vector's length differs from the
   * collection's embedder dimensions.
   */
  upsertDocument(collectionId: string, doc: DocumentWrite): Promise<DocumentRecord>;
  /**
   * Optional bulk form of {@link upsertDocument}: each document is still all-or-nothing, and one document's failure
   * is reported in its own result without affecting the others. Adapters that can write a batch more cheaply
   * implement it; the ingestion service falls back to one `upsertDocument` per document otherwise.
   */
  upsertDocuments?(collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]>;
  /** Deletes documents (by global id) and their chunks; unknown ids are skipped. Bumps versions. */
  deleteDocuments(ids: string[]): Promise<DeleteCounts>;
  /** Replaces the metadata without touching chunks or vectors; null for an unknown id. Bumps `version`. */
  updateDocumentMetadata(id: string, metadata: Metadata): Promise<DocumentRecord | null>;
  /** In the order of `ids`, null where missing. */
  getDocuments(ids: string[]): Promise<(DocumentRecord | null)[]>;
  /** The collection's document with that external id (unique per collection); null when none. */
  getDocumentByExternalId(collectionId: string, externalId: string): Promise<DocumentRecord | null>;
  /** Ordered by creation time, then id. */
  listDocuments(collectionId: string, page: PageRequest, filter?: Filter): Promise<Page<DocumentRecord>>;
  /** Ordered by chunk index. */
  listChunks(documentId: string, page: PageRequest): Promise<Page<ChunkRecord>>;
  /** In the order of `ids`, null where missing. */
  getChunks(ids: string[]): Promise<(ChunkRecord | null)[]>;

  /** Ranked hits, best first; ties broken by chunk id so pagination is stable. */
  search(request: SearchRequest): Promise<SearchHit[]>;
}
