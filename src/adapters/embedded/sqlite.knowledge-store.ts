import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AppError, badInput, notFound } from '../../errors';
import { chunkId, documentId } from '../../ids';
import { relativeScoreFusion } from '../../modules/query/fusion';
import type {
  BulkUpsertResult,
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
import { DEFAULT_TENANT } from '../../ports/knowledge-store.port';
import { checkChunkVector, checkPage, checkQueryVector, checkShareTenant, parseShares, withShare } from '../store-checks';
import { compileFilterSql, type CompiledFilter } from './sqlite.filters';
import {
  CHUNK_COLUMNS,
  DOCUMENT_COLUMNS,
  stringifyMetadata,
  toChunk,
  toCollection,
  toDocument,
  type ChunkRow,
  type CollectionRow,
  type DocumentRow,
} from './sqlite.rows';
import { assertFtsName, FTS_TOKENIZE, ftsTableName, migrate } from './sqlite.schema';
import { WalCheckpointer } from './wal-checkpointer';
import { VectorIndex } from './vector-index';

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
}


/**
 * Candidates each side of a HYBRID search contributes: max(limit + offset, floor) × factor. With the API's cap of
 * offset + topK ≤ 200 (MAX_SEARCH_WINDOW) the pool is always the same, so hybrid pages never shift.
 */
const HYBRID_CANDIDATE_FLOOR = 200;
const HYBRID_CANDIDATE_FACTOR = 1;
/** Query terms sent to FTS5 at most (the rest are ignored). */
const MAX_QUERY_TERMS = 64;
/** Distinct dynamic (filter-shaped) statements kept prepared. */
const MAX_CACHED_STATEMENTS = 256;


/** Changes to apply to a loaded vector index once the transaction that made them has committed, in order. */
type IndexOp =
  | { kind: 'add'; collectionId: string; rowId: number; chunkId: string; vector: Float32Array }
  | { kind: 'remove'; collectionId: string; rowId: number };

/** Per collection written in a transaction: its version before the transaction and after it. */
type VersionBumps = Map<string, { before: number; after: number }>;

interface FtsStatements {
  insert: Database.Statement;
  deleteByDocument: Database.Statement;
  deleteBySeqs: Database.Statement;
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
 */
export class EmbeddedKnowledgeStore implements KnowledgeStore {
  readonly kind = 'embedded';
  /** Full path of the database file. */
  readonly filename: string;

  private readonly busyTimeoutMs: number;
  private readonly synchronousFull: boolean;
  private db: Database.Database | null = null;
  /** Reads while a large write is committed in slices: a second connection sees only committed data (WAL). */
  private reader: Database.Database | null = null;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly readerStatements = new Map<string, Database.Statement>();
  /** Set while a sliced write transaction is open; resolves when it ends. Other writes wait for it. */
  private slicedWrite: Promise<void> | null = null;
  /** True while the sliced write's own synchronous steps run (they use the writing connection). */
  private inSlice = false;
  private checkpointer: WalCheckpointer | null = null;
  private readonly ftsStatements = new Map<string, FtsStatements>();
  private readonly indexes = new Map<string, { index: VectorIndex; version: number }>();

  constructor(private readonly options: EmbeddedStoreOptions) {
    this.filename = join(options.dataDir, 'kbql.sqlite');
    this.busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.synchronousFull = options.synchronousFull ?? false;
  }

  async init(): Promise<void> {
    if (this.db) return;
    mkdirSync(this.options.dataDir, { recursive: true });
    const db = new Database(this.filename, { timeout: this.busyTimeoutMs });
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.pragma(`synchronous = ${this.synchronousFull ? 'FULL' : 'NORMAL'}`);
      db.pragma('temp_store = MEMORY');
      // Checkpoints run on a worker thread (see WalCheckpointer), not inside a large COMMIT.
      db.pragma('wal_autocheckpoint = 0');
      migrate(db);
    } catch (error) {
      db.close();
      throw storageError(error) ?? error;
    }
    this.db = db;
    this.reader = new Database(this.filename, { readonly: true, timeout: this.busyTimeoutMs });
    this.checkpointer = new WalCheckpointer(this.filename);
  }

  async close(): Promise<void> {
    await this.writable();
    const db = this.db;
    if (!db) return;
    this.db = null;
    await this.checkpointer?.close();
    this.checkpointer = null;
    this.reader?.close();
    this.reader = null;
    this.readerStatements.clear();
    this.statements.clear();
    this.ftsStatements.clear();
    this.indexes.clear();
    try {
      db.pragma('optimize');
    } finally {
      db.close();
    }
  }

  async ping(): Promise<void> {
    this.prepare('SELECT 1').get();
  }

  // ---------------------------------------------------------------- collections

  async createCollection(input: NewCollection): Promise<CollectionRecord> {
    await this.writable();
    const db = this.open();
    const id = randomUUID();
    const fts = ftsTableName(id);
    const now = Date.now();
    try {
      db.transaction(() => {
        this.prepare(
          `INSERT INTO collections (id, tenant, name, description, chunking, embedder_name, embedder_dimensions, fts_table, version, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
        ).run(
          id,
          input.tenant ?? DEFAULT_TENANT,
          input.name,
          input.description,
          JSON.stringify(input.chunking),
          input.embedder.name,
          input.embedder.dimensions,
          fts,
          now,
          now,
        );
        db.exec(`CREATE VIRTUAL TABLE ${fts} USING fts5(text, content='', contentless_delete=1, ${FTS_TOKENIZE})`);
      }).immediate();
    } catch (error) {
      throw mapConstraint(error, input.name);
    }
    return toCollection(this.collectionRow(id)!);
  }

  async updateCollection(id: string, patch: CollectionPatch): Promise<CollectionRecord> {
    await this.writable();
    const db = this.open();
    const row = this.collectionRow(id);
    if (!row) throw notFound('Collection', id);
    const name = patch.name ?? row.name;
    const description = patch.description === undefined ? row.description : patch.description;
    const bumps: VersionBumps = new Map();
    try {
      db.transaction(() => {
        const now = Date.now();
        this.prepare('UPDATE collections SET name = ?, description = ?, updated_at = ? WHERE id = ?').run(name, description, now, id);
        this.bumpVersion(id, now, bumps);
      }).immediate();
    } catch (error) {
      throw mapConstraint(error, name);
    }
    this.applyIndexOps([], bumps);
    return toCollection(this.collectionRow(id)!);
  }

  async deleteCollection(id: string): Promise<DeleteCounts | null> {
    await this.writable();
    const db = this.open();
    const row = this.collectionRow(id);
    if (!row) return null;
    const counts = db.transaction((): DeleteCounts => {
      const documents = this.prepare('DELETE FROM documents WHERE collection_id = ?');
      const chunks = this.prepare('DELETE FROM chunks WHERE collection_id = ?').run(id).changes;
      const docCount = documents.run(id).changes;
      // The FTS table is dropped with the collection; its cached statements die with it.
      this.ftsStatements.delete(id);
      db.exec(`DROP TABLE IF EXISTS ${assertFtsName(row.fts_table)}`);
      this.prepare('DELETE FROM collections WHERE id = ?').run(id);
      return { documents: docCount, chunks };
    }).immediate();
    this.indexes.delete(id);
    return counts;
  }

  async getCollection(id: string): Promise<CollectionRecord | null> {
    const row = this.collectionRow(id);
    return row ? toCollection(row) : null;
  }

  async setCollectionShare(id: string, tenant: string, role: ShareRole | null): Promise<CollectionRecord> {
    await this.writable();
    const db = this.open();
    const bumps: VersionBumps = new Map();
    db.transaction(() => {
      const row = this.collectionRow(id);
      if (!row) throw notFound('Collection', id);
      checkShareTenant(row.tenant, tenant);
      const shares = withShare(parseShares(row.shares), tenant, role);
      const now = Date.now();
      this.prepare('UPDATE collections SET shares = ? WHERE id = ?').run(JSON.stringify(shares), id);
      this.bumpVersion(id, now, bumps);
    }).immediate();
    this.applyIndexOps([], bumps);
    return toCollection(this.collectionRow(id)!);
  }

  async getCollectionByName(name: string, tenant: string = DEFAULT_TENANT): Promise<CollectionRecord | null> {
    const row = this.prepare('SELECT * FROM collections WHERE tenant = ? AND name = ?').get(tenant, name) as CollectionRow | undefined;
    return row ? toCollection(row) : null;
  }

  async listCollections(page: PageRequest, filter: CollectionListFilter = {}): Promise<Page<CollectionRecord>> {
    const { offset, limit } = checkPage(page);
    if (filter.tenant !== undefined && filter.includeShared) {
      // Shares are few per collection: a scan of the JSON arrays is cheap next to everything else a listing costs.
      const where = `tenant = @tenant OR EXISTS (SELECT 1 FROM json_each(collections.shares) s WHERE json_extract(s.value, '$.tenant') = @tenant)`;
      const total = this.prepare(`SELECT count(*) AS n FROM collections WHERE ${where}`).get({ tenant: filter.tenant }) as { n: number };
      const rows = this.prepare(`SELECT * FROM collections WHERE ${where} ORDER BY created_at, id LIMIT @limit OFFSET @offset`).all({
        tenant: filter.tenant,
        limit,
        offset,
      }) as CollectionRow[];
      return { items: rows.map(toCollection), total: total.n };
    }
    if (filter.tenant !== undefined) {
      const total = this.prepare('SELECT count(*) AS n FROM collections WHERE tenant = ?').get(filter.tenant) as { n: number };
      const rows = this.prepare('SELECT * FROM collections WHERE tenant = ? ORDER BY created_at, id LIMIT ? OFFSET ?').all(
        filter.tenant,
        limit,
        offset,
      ) as CollectionRow[];
      return { items: rows.map(toCollection), total: total.n };
    }
    const total = this.prepare('SELECT count(*) AS n FROM collections').get() as { n: number };
    const rows = this.prepare('SELECT * FROM collections ORDER BY created_at, id LIMIT ? OFFSET ?').all(
      limit,
      offset,
    ) as CollectionRow[];
    return { items: rows.map(toCollection), total: total.n };
  }

  async collectionStats(id: string): Promise<CollectionStats> {
    if (!this.collectionRow(id)) throw notFound('Collection', id);
    const row = this.prepare(
      'SELECT count(*) AS documents, coalesce(sum(chunk_count), 0) AS chunks FROM documents WHERE collection_id = ?',
    ).get(id) as CollectionStats;
    return { documents: row.documents, chunks: row.chunks };
  }

  // ---------------------------------------------------------------- documents

  async getContentHashes(collectionId: string, externalIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (externalIds.length === 0) return out;
    const rows = this.prepare(
      `SELECT external_id, content_hash FROM documents
       WHERE collection_id = ? AND external_id IN (SELECT value FROM json_each(?))`,
    ).all(collectionId, JSON.stringify(externalIds)) as { external_id: string; content_hash: string }[];
    for (const row of rows) out.set(row.external_id, row.content_hash);
    return out;
  }

  async upsertDocument(collectionId: string, doc: DocumentWrite): Promise<DocumentRecord> {
    const [result] = await this.upsertMany(collectionId, [doc]);
    if (!result!.ok) throw result!.error;
    return result!.document;
  }

  /**
   * The bulk path for ingestion: writes `docs` in ONE transaction (one commit, one version bump), each document in
   * its own savepoint, so every document is still all-or-nothing and a document that fails validation (wrong
   * vector dimensions, duplicate chunk indexes) is reported in its result without affecting the others.
   * Results are in the order of `docs`. A later write of the same external id in one batch replaces the earlier.
   * Throws NOT_FOUND for an unknown collection.
   */
  async upsertDocuments(collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]> {
    return this.upsertMany(collectionId, docs);
  }

  async deleteDocuments(ids: string[]): Promise<DeleteCounts> {
    await this.writable();
    const db = this.open();
    const unique = [...new Set(ids)];
    const ops: IndexOp[] = [];
    const bumps: VersionBumps = new Map();
    const counts = db.transaction((): DeleteCounts => {
      let documents = 0;
      let chunks = 0;
      const touched = new Set<string>();
      const findDoc = this.prepare('SELECT collection_id FROM documents WHERE id = ?');
      const chunkSeqs = this.prepare('SELECT seq FROM chunks WHERE document_id = ?', 'pluck');
      const deleteChunks = this.prepare('DELETE FROM chunks WHERE document_id = ?');
      const deleteDoc = this.prepare('DELETE FROM documents WHERE id = ?');
      for (const id of unique) {
        const doc = findDoc.get(id) as { collection_id: string } | undefined;
        if (!doc) continue;
        for (const seq of chunkSeqs.all(id) as number[]) ops.push({ kind: 'remove', collectionId: doc.collection_id, rowId: seq });
        this.fts(doc.collection_id).deleteByDocument.run(id);
        chunks += deleteChunks.run(id).changes;
        documents += deleteDoc.run(id).changes;
        touched.add(doc.collection_id);
      }
      const now = Date.now();
      for (const collectionId of touched) this.bumpVersion(collectionId, now, bumps);
      return { documents, chunks };
    }).immediate();
    this.applyIndexOps(ops, bumps);
    return counts;
  }

  async updateDocumentMetadata(id: string, metadata: Metadata): Promise<DocumentRecord | null> {
    await this.writable();
    const db = this.open();
    const json = stringifyMetadata(metadata);
    const bumps: VersionBumps = new Map();
    const updated = db.transaction((): boolean => {
      const now = Date.now();
      const row = this.prepare('SELECT collection_id FROM documents WHERE id = ?').get(id) as
        | { collection_id: string }
        | undefined;
      if (!row) return false;
      this.prepare('UPDATE documents SET metadata = jsonb(?), updated_at = ? WHERE id = ?').run(json, now, id);
      this.bumpVersion(row.collection_id, now, bumps);
      return true;
    }).immediate();
    this.applyIndexOps([], bumps);
    if (!updated) return null;
    const [doc] = await this.getDocuments([id]);
    return doc ?? null;
  }

  async getDocuments(ids: string[]): Promise<(DocumentRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = this.prepare(
      `SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.id IN (SELECT value FROM json_each(?))`,
    ).all(JSON.stringify(ids)) as DocumentRow[];
    const byId = new Map(rows.map((row) => [row.id, toDocument(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async getDocumentByExternalId(collectionId: string, externalId: string): Promise<DocumentRecord | null> {
    const row = this.prepare(
      `SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.collection_id = ? AND d.external_id = ?`,
    ).get(collectionId, externalId) as DocumentRow | undefined;
    return row ? toDocument(row) : null;
  }

  async listDocuments(collectionId: string, page: PageRequest, filter?: Filter): Promise<Page<DocumentRecord>> {
    const { offset, limit } = checkPage(page);
    const where = compileFilterSql(filter);
    const total = this.prepare(
      `SELECT count(*) AS n FROM documents d WHERE d.collection_id = ? AND ${where.sql}`,
    ).get(collectionId, ...where.params) as { n: number };
    const rows = this.prepare(
      `SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.collection_id = ? AND ${where.sql}
       ORDER BY d.created_at, d.id LIMIT ? OFFSET ?`,
    ).all(collectionId, ...where.params, limit, offset) as DocumentRow[];
    return { items: rows.map(toDocument), total: total.n };
  }

  async listChunks(documentId: string, page: PageRequest): Promise<Page<ChunkRecord>> {
    const { offset, limit } = checkPage(page);
    const total = this.prepare('SELECT count(*) AS n FROM chunks WHERE document_id = ?').get(documentId) as { n: number };
    const rows = this.prepare(
      `SELECT ${CHUNK_COLUMNS} FROM chunks c WHERE c.document_id = ? ORDER BY c.idx LIMIT ? OFFSET ?`,
    ).all(documentId, limit, offset) as ChunkRow[];
    return { items: rows.map(toChunk), total: total.n };
  }

  async getChunks(ids: string[]): Promise<(ChunkRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = this.prepare(
      `SELECT ${CHUNK_COLUMNS} FROM chunks c WHERE c.id IN (SELECT value FROM json_each(?))`,
    ).all(JSON.stringify(ids)) as ChunkRow[];
    const byId = new Map(rows.map((row) => [row.id, toChunk(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  // ---------------------------------------------------------------- search

  async search(request: SearchRequest): Promise<SearchHit[]> {
    const { offset, limit } = checkPage(request);
    const collection = this.collectionRow(request.collectionId);
    if (!collection) throw notFound('Collection', request.collectionId);
    const filter = request.filter ? compileFilterSql(request.filter) : null;
    const wantsVector = request.mode === 'VECTOR' || request.mode === 'HYBRID';
    if (wantsVector) checkQueryVector(request, collection.embedder_dimensions);
    if (request.mode === 'HYBRID' && !(request.alpha >= 0 && request.alpha <= 1)) throw badInput('alpha must be between 0 and 1.');
    if (limit === 0) return [];

    if (request.mode === 'KEYWORD') {
      const hits = this.keywordCandidates(collection, request.text, filter, limit, offset);
      return this.hydrate(hits.map((h) => ({ rowId: h.rowId, score: h.score, vectorScore: null, keywordScore: h.score })));
    }

    const query = request.vector!;
    const index = this.index(collection);
    const allowed = filter ? this.allowedRowIds(collection.id, filter) : undefined;
    if (request.mode === 'VECTOR') {
      const hits = index.search(query, offset + limit, allowed).slice(offset);
      return this.hydrate(hits.map((h) => ({ rowId: h.rowId, score: h.score, vectorScore: h.score, keywordScore: null })));
    }

    const alpha = request.alpha;
    const candidates = Math.max(offset + limit, HYBRID_CANDIDATE_FLOOR) * HYBRID_CANDIDATE_FACTOR;
    const vectorHits = index.search(query, candidates, allowed);
    const keywordHits = this.keywordCandidates(collection, request.text, filter, candidates, 0);
    const rowIdByChunk = new Map<string, number>();
    for (const h of vectorHits) rowIdByChunk.set(h.chunkId, h.rowId);
    for (const h of keywordHits) rowIdByChunk.set(h.chunkId, h.rowId);
    const page = relativeScoreFusion(
      vectorHits.map((h) => ({ id: h.chunkId, score: h.score })),
      keywordHits.map((h) => ({ id: h.chunkId, score: h.score })),
      alpha,
    ).slice(offset, offset + limit);
    // Keyword-only hits still get their cosine similarity: one dot product each against the loaded index.
    const missing = page.filter((h) => h.vectorScore === null).map((h) => rowIdByChunk.get(h.id)!);
    const missingScores = index.scoreRows(query, missing);
    const filled = new Map(missing.map((rowId, i) => [rowId, missingScores[i] ?? null]));
    return this.hydrate(
      page.map((h) => {
        const rowId = rowIdByChunk.get(h.id)!;
        return { rowId, score: h.score, vectorScore: h.vectorScore ?? filled.get(rowId) ?? null, keywordScore: h.keywordScore };
      }),
    );
  }

  // ---------------------------------------------------------------- internals

  /**
   * The connection for the code running now: the writing one, except while a sliced write is open and the code is
   * not one of its steps — then the reading one, which sees only committed data.
   */
  private open(): Database.Database {
    if (!this.db) throw new AppError('UPSTREAM_UNAVAILABLE', 'The embedded store is not open.');
    return this.slicedWrite && !this.inSlice && this.reader ? this.reader : this.db;
  }

  /** Resolves when no sliced write is open; the caller's synchronous transaction then runs alone. */
  private async writable(): Promise<void> {
    while (this.slicedWrite) await this.slicedWrite;
  }

  /**
   * A cached prepared statement, keyed by mode and SQL (so every filter of one shape shares one), least recently
   * used evicted first. `pluck` returns the first column's value, `raw` rows as arrays.
   */
  private prepare(sql: string, mode: 'object' | 'pluck' | 'raw' = 'object'): Database.Statement {
    const key = `${mode}:${sql}`;
    const db = this.open();
    const cache = db === this.reader ? this.readerStatements : this.statements;
    let statement = cache.get(key);
    if (statement) {
      cache.delete(key);
    } else {
      if (cache.size >= MAX_CACHED_STATEMENTS) cache.delete(cache.keys().next().value as string);
      statement = db.prepare(sql);
      if (mode === 'pluck') statement.pluck(true);
      if (mode === 'raw') statement.raw(true);
    }
    cache.set(key, statement);
    return statement;
  }

  private fts(collectionId: string): FtsStatements {
    let statements = this.ftsStatements.get(collectionId);
    if (!statements) {
      const row = this.collectionRow(collectionId);
      if (!row) throw notFound('Collection', collectionId);
      const table = assertFtsName(row.fts_table);
      const db = this.open();
      statements = {
        insert: db.prepare(`INSERT INTO ${table} (rowid, text) VALUES (?, ?)`),
        deleteByDocument: db.prepare(`DELETE FROM ${table} WHERE rowid IN (SELECT seq FROM chunks WHERE document_id = ?)`),
        deleteBySeqs: db.prepare(`DELETE FROM ${table} WHERE rowid IN (SELECT value FROM json_each(?))`),
      };
      this.ftsStatements.set(collectionId, statements);
    }
    return statements;
  }

  private collectionRow(id: string): CollectionRow | undefined {
    return this.prepare('SELECT * FROM collections WHERE id = ?').get(id) as CollectionRow | undefined;
  }

  /** Inside a write transaction: bumps the collection's version and records before/after in `bumps`. */
  private bumpVersion(collectionId: string, now: number, bumps: VersionBumps): void {
    const version = this.prepare('UPDATE collections SET version = version + 1, updated_at = ? WHERE id = ? RETURNING version', 'pluck').get(
      now,
      collectionId,
    ) as number | undefined;
    if (version === undefined) return;
    const seen = bumps.get(collectionId);
    bumps.set(collectionId, { before: seen?.before ?? version - 1, after: version });
  }

  private async upsertMany(collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]> {
    await this.writable();
    const chunkCount = docs.reduce((sum, doc) => sum + doc.chunks.length, 0);
    try {
      return chunkCount > SLICED_WRITE_MIN_CHUNKS ? await this.upsertSliced(collectionId, docs) : this.upsertAtOnce(collectionId, docs);
    } catch (error) {
      throw storageError(error) ?? error;
    }
  }

  /** Validation before the write lock is taken, so the transaction holds it only for the writes. */
  private validateAll(docs: readonly DocumentWrite[], collection: CollectionRow): (AppError | null)[] {
    return docs.map((doc) => {
      try {
        validateWrite(doc, collection.embedder_dimensions);
        return null;
      } catch (error) {
        if (error instanceof AppError) return error;
        throw error;
      }
    });
  }

  private upsertAtOnce(collectionId: string, docs: readonly DocumentWrite[]): BulkUpsertResult[] {
    const db = this.open();
    const collection = this.collectionRow(collectionId);
    if (!collection) throw notFound('Collection', collectionId);
    const results: BulkUpsertResult[] = [];
    const ops: IndexOp[] = [];
    const bumps: VersionBumps = new Map();
    // Nested better-sqlite3 transactions are savepoints: a failing document rolls back alone.
    const writeOne = db.transaction((doc: DocumentWrite, now: number, docOps: IndexOp[]) => runToEnd(this.writeDocument(collection, doc, now, docOps)));
    const invalid = this.validateAll(docs, collection);
    db.transaction(() => {
      const now = Date.now();
      let written = 0;
      docs.forEach((doc, i) => {
        let error = invalid[i];
        if (!error) {
          try {
            const docOps: IndexOp[] = [];
            const document = writeOne(doc, now, docOps);
            ops.push(...docOps);
            results.push({ ok: true, externalId: doc.externalId, document });
            written++;
            return;
          } catch (caught) {
            if (!(caught instanceof AppError)) throw caught;
            error = caught;
          }
        }
        results.push({ ok: false, externalId: doc.externalId, error });
      });
      if (written > 0) this.bumpVersion(collection.id, now, bumps);
    }).immediate();
    this.applyIndexOps(ops, bumps);
    return results;
  }

  /**
   * The same transaction as {@link upsertAtOnce} for large writes, committed in steps of {@link WRITE_SLICE_CHUNKS}
   * chunks with a turn of the event loop between them, so that writing a 2 MiB document (thousands of chunks and
   * their FTS postings) never blocks requests for its whole length. Still one transaction: readers (on the second
   * connection) see all of it or nothing, a crash rolls it back, other writes wait for it (`writable`).
   */
  private async upsertSliced(collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]> {
    const db = this.open();
    const collection = this.collectionRow(collectionId);
    if (!collection) throw notFound('Collection', collectionId);
    const invalid = this.validateAll(docs, collection);
    const results: BulkUpsertResult[] = [];
    const ops: IndexOp[] = [];
    const bumps: VersionBumps = new Map();
    const step = <T>(work: () => T): T => {
      this.inSlice = true;
      try {
        return work();
      } finally {
        this.inSlice = false;
      }
    };
    let done!: () => void;
    this.slicedWrite = new Promise<void>((resolve) => (done = resolve));
    try {
      step(() => db.exec('BEGIN IMMEDIATE'));
      try {
        const now = Date.now();
        let written = 0;
        for (const [i, doc] of docs.entries()) {
          let error = invalid[i];
          if (!error) {
            const docOps: IndexOp[] = [];
            step(() => db.exec('SAVEPOINT kbql_document'));
            try {
              const steps = step(() => this.writeDocument(collection, doc, now, docOps));
              let next = step(() => steps.next());
              while (!next.done) {
                await new Promise<void>((resolve) => setImmediate(resolve));
                next = step(() => steps.next());
              }
              step(() => db.exec('RELEASE kbql_document'));
              ops.push(...docOps);
              results.push({ ok: true, externalId: doc.externalId, document: next.value });
              written++;
              continue;
            } catch (caught) {
              step(() => {
                db.exec('ROLLBACK TO kbql_document');
                db.exec('RELEASE kbql_document');
              });
              if (!(caught instanceof AppError)) throw caught;
              error = caught;
            }
          }
          results.push({ ok: false, externalId: doc.externalId, error });
        }
        if (written > 0) step(() => this.bumpVersion(collection.id, now, bumps));
        step(() => db.exec('COMMIT'));
      } catch (error) {
        step(() => {
          if (db.inTransaction) db.exec('ROLLBACK');
        });
        throw error;
      }
    } finally {
      this.slicedWrite = null;
      done();
    }
    this.applyIndexOps(ops, bumps);
    return results;
  }

  /**
   * Inside a transaction: inserts or replaces one document and all its chunks, pausing (a `yield`) after every
   * {@link WRITE_SLICE_CHUNKS} chunks for a caller that commits in slices; returns the document.
   */
  private *writeDocument(collection: CollectionRow, doc: DocumentWrite, now: number, ops: IndexOp[]): Generator<void, DocumentRecord> {
    const id = documentId(collection.id, doc.externalId);
    const fts = this.fts(collection.id);
    const metadata = stringifyMetadata(doc.metadata);
    const existing = this.prepare('SELECT created_at FROM documents WHERE id = ?').get(id) as
      | { created_at: number }
      | undefined;
    if (existing) {
      const seqs = this.prepare('SELECT seq FROM chunks WHERE document_id = ?', 'pluck').all(id) as number[];
      for (const seq of seqs) ops.push({ kind: 'remove', collectionId: collection.id, rowId: seq });
      // The old chunks go in slices too: replacing a large document deletes thousands of rows and postings.
      for (let at = 0; at < seqs.length; at += WRITE_SLICE_CHUNKS) {
        const batch = JSON.stringify(seqs.slice(at, at + WRITE_SLICE_CHUNKS));
        fts.deleteBySeqs.run(batch);
        this.prepare('DELETE FROM chunks WHERE seq IN (SELECT value FROM json_each(?))').run(batch);
        if (at + WRITE_SLICE_CHUNKS < seqs.length) yield;
      }
      this.prepare(
        `UPDATE documents SET title = ?, source = ?, content_type = ?, metadata = jsonb(?), content_hash = ?,
           char_count = ?, chunk_count = ?, updated_at = ? WHERE id = ?`,
      ).run(doc.title, doc.source, doc.contentType, metadata, doc.contentHash, doc.charCount, doc.chunks.length, now, id);
    } else {
      this.prepare(
        `INSERT INTO documents (id, collection_id, external_id, title, source, content_type, metadata, content_hash,
           char_count, chunk_count, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, jsonb(?), ?, ?, ?, ?, ?)`,
      ).run(
        id,
        collection.id,
        doc.externalId,
        doc.title,
        doc.source,
        doc.contentType,
        metadata,
        doc.contentHash,
        doc.charCount,
        doc.chunks.length,
        now,
        now,
      );
    }
    const insertChunk = this.prepare(
      `INSERT INTO chunks (id, document_id, collection_id, idx, start_offset, end_offset, text, vector)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    let written = 0;
    for (const chunk of doc.chunks) {
      const cid = chunkId(id, chunk.index);
      const blob = Buffer.from(chunk.vector.buffer, chunk.vector.byteOffset, chunk.vector.byteLength);
      const info = insertChunk.run(cid, id, collection.id, chunk.index, chunk.startOffset, chunk.endOffset, chunk.text, blob);
      const rowId = Number(info.lastInsertRowid);
      fts.insert.run(rowId, chunk.text);
      ops.push({ kind: 'add', collectionId: collection.id, rowId, chunkId: cid, vector: chunk.vector });
      if (++written % WRITE_SLICE_CHUNKS === 0) yield;
    }
    return {
      id,
      collectionId: collection.id,
      externalId: doc.externalId,
      title: doc.title,
      source: doc.source,
      contentType: doc.contentType,
      metadata: JSON.parse(metadata) as Metadata,
      contentHash: doc.contentHash,
      charCount: doc.charCount,
      chunkCount: doc.chunks.length,
      createdAt: new Date(existing?.created_at ?? now),
      updatedAt: new Date(now),
    };
  }

  /**
   * After a commit: brings the loaded vector indexes of the collections the transaction bumped up to date. An index
   * that had missed a version (another writer got in between) is dropped instead, to be reloaded on next use.
   */
  /** After every committed write: the in-memory indexes follow, and a checkpoint is due. */
  private applyIndexOps(ops: readonly IndexOp[], bumps: VersionBumps): void {
    this.checkpointer?.poke();
    for (const [collectionId, { before, after }] of bumps) {
      const entry = this.indexes.get(collectionId);
      if (!entry) continue;
      if (entry.version !== before) {
        this.indexes.delete(collectionId);
        continue;
      }
      for (const op of ops) {
        if (op.collectionId !== collectionId) continue;
        if (op.kind === 'remove') entry.index.remove(op.rowId);
        else entry.index.add(op.rowId, op.chunkId, op.vector);
      }
      entry.version = after;
    }
  }

  /** The collection's vector index: loaded from SQLite on first use, and again if the collection moved on without it. */
  private index(collection: CollectionRow): VectorIndex {
    const entry = this.indexes.get(collection.id);
    if (entry && entry.version === collection.version) return entry.index;
    // One read transaction, so the rows and the version they belong to are one snapshot.
    const loaded = this.open().transaction(() => {
      const version = this.prepare('SELECT version FROM collections WHERE id = ?', 'pluck').get(collection.id) as number;
      const n = this.prepare('SELECT count(*) FROM chunks WHERE collection_id = ?', 'pluck').get(collection.id) as number;
      const index = new VectorIndex(collection.embedder_dimensions, Math.max(64, n));
      // Raw rows: no per-row objects beyond the array and the BLOB buffer, copied straight into the matrix.
      const rows = this.prepare('SELECT seq, id, vector FROM chunks WHERE collection_id = ?', 'raw');
      for (const row of rows.iterate(collection.id) as IterableIterator<[number, string, Buffer]>) {
        index.addBytes(row[0], row[1], row[2]);
      }
      return { index, version };
    })();
    this.indexes.set(collection.id, loaded);
    return loaded.index;
  }

  private allowedRowIds(collectionId: string, filter: CompiledFilter): number[] {
    return this.prepare(
      `SELECT c.seq FROM documents d JOIN chunks c ON c.document_id = d.id WHERE d.collection_id = ? AND ${filter.sql}`,
      'pluck',
    ).all(collectionId, ...filter.params) as number[];
  }

  /** BM25 hits (higher is better), best first, ties by chunk id; [] when the text has no searchable term. */
  private keywordCandidates(
    collection: CollectionRow,
    text: string,
    filter: CompiledFilter | null,
    limit: number,
    offset: number,
  ): { rowId: number; chunkId: string; score: number }[] {
    const match = ftsMatchExpression(text);
    if (match === null) return [];
    const table = assertFtsName(collection.fts_table);
    // CROSS JOIN keeps the FTS table the outer loop, which bm25() needs.
    const sql = filter
      ? `SELECT c.seq AS rowId, c.id AS chunkId, -bm25(${table}) AS score
         FROM ${table} CROSS JOIN chunks c ON c.seq = ${table}.rowid JOIN documents d ON d.id = c.document_id
         WHERE ${table} MATCH ? AND ${filter.sql}
         ORDER BY score DESC, c.id LIMIT ? OFFSET ?`
      : `SELECT c.seq AS rowId, c.id AS chunkId, -bm25(${table}) AS score
         FROM ${table} CROSS JOIN chunks c ON c.seq = ${table}.rowid
         WHERE ${table} MATCH ?
         ORDER BY score DESC, c.id LIMIT ? OFFSET ?`;
    const params = filter ? [match, ...filter.params, limit, offset] : [match, limit, offset];
    return this.prepare(sql).all(...params) as { rowId: number; chunkId: string; score: number }[];
  }

  /** Loads chunk and document rows for ranked hits, keeping their order. */
  private hydrate(
    hits: { rowId: number; score: number; vectorScore: number | null; keywordScore: number | null }[],
  ): SearchHit[] {
    if (hits.length === 0) return [];
    const chunks = this.prepare(`SELECT ${CHUNK_COLUMNS} FROM chunks c WHERE c.seq IN (SELECT value FROM json_each(?))`).all(
      JSON.stringify(hits.map((h) => h.rowId)),
    ) as ChunkRow[];
    const chunkBySeq = new Map(chunks.map((row) => [row.seq, row]));
    const docIds = [...new Set(chunks.map((row) => row.document_id))];
    const docs = this.prepare(`SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.id IN (SELECT value FROM json_each(?))`).all(
      JSON.stringify(docIds),
    ) as DocumentRow[];
    const docById = new Map(docs.map((row) => [row.id, toDocument(row)]));
    const out: SearchHit[] = [];
    for (const hit of hits) {
      const chunk = chunkBySeq.get(hit.rowId);
      const document = chunk && docById.get(chunk.document_id);
      if (!chunk || !document) continue;
      out.push({ chunk: toChunk(chunk), document, score: hit.score, vectorScore: hit.vectorScore, keywordScore: hit.keywordScore });
    }
    return out;
  }
}

// ------------------------------------------------------------------ helpers


function mapConstraint(error: unknown, name: string): unknown {
  const code = (error as { code?: unknown }).code;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new AppError('CONFLICT', `A collection named "${name}" already exists.`, { name }, { cause: error });
  }
  return storageError(error) ?? error;
}

/**
 * SQLite's "cannot write" failures (disk full, read-only file system or file, I/O error, cannot open) as AppError
 * STORAGE_UNAVAILABLE, or null for anything else. The failed transaction was rolled back in full, so nothing
 * partial is left: the caller may retry once space returns.
 */
export function storageError(error: unknown): AppError | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^SQLITE_(FULL|READONLY|IOERR|CANTOPEN)/.test(code)) return null;
  const reason = code.startsWith('SQLITE_FULL')
    ? 'disk full'
    : code.startsWith('SQLITE_READONLY')
      ? 'read-only'
      : code.startsWith('SQLITE_CANTOPEN')
        ? 'cannot open the database file: missing, read-only or full'
        : 'I/O error';
  return new AppError('STORAGE_UNAVAILABLE', `The embedded store cannot write to its data directory (${reason}); nothing was changed.`, { reason, sqliteCode: code }, { cause: error });
}

/** Chunks written between two turns of the event loop by a sliced write (about 5 ms of work here). */
const WRITE_SLICE_CHUNKS = 64;
/** Writes of more chunks than this are committed in slices (see `upsertSliced`). */
const SLICED_WRITE_MIN_CHUNKS = 256;

/** Runs a generator to its end and returns its result. */
function runToEnd<T>(steps: Generator<void, T>): T {
  let next = steps.next();
  while (!next.done) next = steps.next();
  return next.value;
}

function validateWrite(doc: DocumentWrite, dimensions: number): void {
  const seen = new Set<number>();
  doc.chunks.forEach((chunk: ChunkWrite) => {
    if (!Number.isSafeInteger(chunk.index) || chunk.index < 0 || seen.has(chunk.index)) {
      throw badInput(`Document "${doc.externalId}": chunk indexes must be distinct non-negative integers.`, {
        externalId: doc.externalId,
        index: chunk.index,
      });
    }
    seen.add(chunk.index);
    checkChunkVector(doc.externalId, chunk, dimensions);
  });
}


/**
 * The FTS5 MATCH expression for free text: its letter/digit runs, each quoted (so no FTS syntax survives) and OR-ed;
 * null when there is no term.
 */
export function ftsMatchExpression(text: string): string | null {
  const terms = new Set<string>();
  for (const match of text.toLowerCase().matchAll(/[\p{L}\p{N}\p{M}]+/gu)) {
    terms.add(match[0]);
    if (terms.size >= MAX_QUERY_TERMS) break;
  }
  if (terms.size === 0) return null;
  return [...terms].map((t) => `"${t}"`).join(' OR ');
}
