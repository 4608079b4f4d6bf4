import type {
  BulkUpsertResult,
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
  StoreWarmUpState,
  VectorIndexState,
} from '../../ports/knowledge-store.port';
import { SqliteCollections } from './sqlite.collections';
import { SqliteDatabase } from './sqlite.database';
import { SqliteReads } from './sqlite.reads';
import { SqliteReembedding } from './sqlite.reembedding';
import { SqliteSearch } from './sqlite.search';
import type { AnnOpenResult, AnnStats } from './ann-index';
import { LoadedVectorIndexes, type AnnTuning, type VectorIndexMode } from './sqlite.vector-indexes';
import { SqliteWrites } from './sqlite.writes';
import { SqliteWriterThread } from './sqlite-writer';

export { storageError } from './sqlite.database';

export interface EmbeddedStoreOptions {
  /** Directory of the database; created when missing. The file is `<dataDir>/kbql.sqlite` (plus its WAL files). */
  dataDir: string;
  /**
   * How long a statement waits for a lock held by another connection before failing, in milliseconds.
   * @default 5000
   */
  busyTimeoutMs?: number;
  /**
   * `synchronous=FULL` (fsync on every commit: survives power loss) instead of `NORMAL` (survives a process crash;
   * the last commits may be lost, never corrupted, on power loss).
   * @default false
   */
  synchronousFull?: boolean;
  /**
   * Vector index per collection: `auto` = an approximate (HNSW) index saved in `<dataDir>/ann/`, exact below its
   * row threshold (docs/ann-index.md); `exact` = an exact scan of every vector.
   * @default 'exact'
   */
  vectorIndex?: VectorIndexMode;
  /** Thresholds and graph parameters of the `auto` index (e.g. `exactBelowRows`); its defaults otherwise. */
  annIndex?: AnnTuning;
  /** Background failures of an `auto` index (it keeps serving, exactly if need be). */
  onAnnError?: (collectionId: string, error: Error) => void;
  /** An `auto` index finished opening its saved graph (or says why it rebuilds it). */
  onAnnOpened?: (collectionId: string, result: AnnOpenResult) => void;
}

/**
 * The default KnowledgeStore: one SQLite file (WAL, foreign keys, better-sqlite3) holding collections, documents,
 * chunks with their float32 vectors, and one FTS5 index per collection; plus an in-memory exact vector index per
 * collection, loaded from SQLite on the first vector search and then updated after every committed write.
 *
 * Each loaded index remembers the collection `version` it reflects; a write made through this instance moves it
 * forward, and a search that finds another version (a write by another process or store instance on the same
 * file) reloads the index from SQLite, so it is never stale.
 * The API is synchronous underneath (better-sqlite3), so each call runs to completion without interleaving;
 * call `close()` on shutdown to checkpoint the WAL.
 *
 * The parts, one concern each: `sqlite.database.ts` (connections, statements, the exclusive-write gate),
 * `sqlite.schema.ts` (migrations), `sqlite.vector-indexes.ts`, `sqlite.collections.ts`, `sqlite.reads.ts`,
 * `sqlite.writes.ts` (large writes on the thread of `sqlite-writer.ts`) and `sqlite.search.ts`; rows and filters in
 * `sqlite.rows.ts` and `sqlite.filters.ts`.
 */
export class EmbeddedKnowledgeStore implements KnowledgeStore {
  readonly kind = 'embedded';
  /** Full path of the database file. */
  readonly filename: string;

  private readonly db: SqliteDatabase;
  private readonly indexes: LoadedVectorIndexes;
  private readonly collections: SqliteCollections;
  private readonly reads: SqliteReads;
  private readonly writes: SqliteWrites;
  private readonly searcher: SqliteSearch;
  /** See {@link KnowledgeStore.reembedding}: secondary vectors and the atomic switch (`sqlite.reembedding.ts`). */
  readonly reembedding: SqliteReembedding;

  constructor(options: EmbeddedStoreOptions) {
    this.db = new SqliteDatabase(options.dataDir, options.busyTimeoutMs ?? 5000, options.synchronousFull ?? false);
    this.filename = this.db.filename;
    this.indexes = new LoadedVectorIndexes(this.db, {
      mode: options.vectorIndex ?? 'exact',
      dataDir: options.dataDir,
      ann: options.annIndex,
      onAnnError: options.onAnnError,
      onAnnOpened: options.onAnnOpened,
    });
    this.collections = new SqliteCollections(this.db, this.indexes);
    this.reads = new SqliteReads(this.db);
    this.writes = new SqliteWrites(
      this.db,
      this.indexes,
      this.reads,
      new SqliteWriterThread({
        dataDir: options.dataDir,
        busyTimeoutMs: options.busyTimeoutMs ?? 5000,
        synchronousFull: options.synchronousFull ?? false,
      }),
    );
    this.searcher = new SqliteSearch(this.db, this.indexes);
    this.reembedding = new SqliteReembedding(this.db, this.indexes);
  }

  async init(): Promise<void> {
    await this.db.init();
  }

  async close(): Promise<void> {
    try {
      // Saves the ANN graphs and stops their builder thread (nothing then keeps the process alive).
      await this.indexes.close();
    } finally {
      try {
        await this.writes.close();
      } finally {
        await this.db.close();
      }
    }
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
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

  /**
   * The ANN index of a collection, when `vectorIndex` is `auto` and the collection's index is loaded (null otherwise):
   * indexed/tail counts, `indexedFraction`, saves, searches by path. Embedded only, not part of the store port.
   */
  vectorIndexStats(id: string): AnnStats | null {
    return this.indexes.annStats(id);
  }

  /**
   * See {@link KnowledgeStore.vectorIndexState}: approximate once the collection's ANN graph exists or is being
   * built (a collection below the graph's threshold, or not searched since start, is scanned exactly).
   */
  vectorIndexState(id: string): VectorIndexState {
    return this.indexes.state(id);
  }

  /** See {@link KnowledgeStore.warmUp}: every collection's vector index (large ones on a fill thread) and saved graph. */
  warmUp(): Promise<void> {
    return this.indexes.warm();
  }

  warmUpState(): StoreWarmUpState {
    return this.indexes.summary();
  }

  /**
   * Loads the collection's vector index and waits until an ANN index's graph covers every row, so that the next
   * searches go through the graph (without it, new rows are searched exactly until the builder catches up). For
   * tests and benches; a no-op for an exact index or an unknown collection.
   */
  async settleVectorIndex(id: string): Promise<void> {
    const collection = this.db.collectionRow(id);
    if (collection) await this.indexes.settle(collection);
  }

  // ---------------------------------------------------------------- documents

  getContentHashes(collectionId: string, externalIds: string[]): Promise<Map<string, string>> {
    return this.reads.getContentHashes(collectionId, externalIds);
  }

  upsertDocument(collectionId: string, doc: DocumentWrite): Promise<DocumentRecord> {
    return this.writes.upsertDocument(collectionId, doc);
  }

  /** See {@link SqliteWrites.upsertDocuments}: one transaction for the batch. */
  upsertDocuments(collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]> {
    return this.writes.upsertDocuments(collectionId, docs);
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

  listChunks(documentId: string, page: PageRequest): Promise<Page<ChunkRecord>> {
    return this.reads.listChunks(documentId, page);
  }

  getChunks(ids: string[]): Promise<(ChunkRecord | null)[]> {
    return this.reads.getChunks(ids);
  }

  // ---------------------------------------------------------------- search

  search(request: SearchRequest): Promise<SearchHit[]> {
    return this.searcher.search(request);
  }
}
