/**
 * Document writes of the embedded store: upserts (one transaction per batch, every document all-or-nothing; large
 * batches on the writer thread), deletes and metadata updates, each followed by its vector-index changes.
 */
import { AppError, badInput, notFound } from '../../errors';
import { chunkId, documentId } from '../../ids';
import type { BulkUpsertResult, DeleteCounts, DocumentRecord, DocumentWrite, Metadata } from '../../ports/knowledge-store.port';
import { alignWriteVectors, type AlignedWrite } from '../embedding-checks';
import { checkChunkVector } from '../store-checks';
import { storageError, type SqliteDatabase, type VersionBumps } from './sqlite.database';
import type { SqliteReads } from './sqlite.reads';
import type { SqliteWriterThread } from './sqlite-writer';
import { parseSecondary, stringifyMetadata, type CollectionRow } from './sqlite.rows';
import type { IndexOp, LoadedVectorIndexes } from './sqlite.vector-indexes';

/** Old chunks deleted by one statement (their ids go in as one JSON array). */
const DELETE_BATCH_CHUNKS = 256;
/**
 * Writes of more chunks than this go to the store's writer thread (`sqlite-writer.ts`): a bulk write of a few hundred
 * documents, or of one 2 MiB document, is tens to hundreds of ms of SQLite and FTS5 work that would otherwise be the
 * event loop's. Smaller ones cost less than the trip to the thread.
 */
const THREAD_WRITE_MIN_CHUNKS = 256;

/** Where a committed write's vector-index changes go: the loaded indexes, or (on the writer thread) its reply. */
export type IndexSink = Pick<LoadedVectorIndexes, 'afterCommit'>;

export class SqliteWrites {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly indexes: IndexSink,
    /** Reads after a metadata update; none on the writer thread, which only runs {@link writeBatch}. */
    private readonly reads: SqliteReads | null,
    /** Where large writes go; none on the writer thread itself. */
    private readonly writer: SqliteWriterThread | null = null,
  ) {}

  /** Stops the writer thread (after the write it may be running). */
  async close(): Promise<void> {
    await this.db.writable();
    await this.writer?.close();
  }

  async upsertDocument(collectionId: string, doc: DocumentWrite): Promise<DocumentRecord> {
    const [result] = await this.upsertMany(collectionId, [doc]);
    if (!result!.ok) throw result!.error;
    return result!.document;
  }

  /**
   * The bulk path for ingestion: writes `docs` in ONE transaction (one commit, one version bump). A document that
   * fails validation (wrong vector dimensions, duplicate chunk indexes) is reported in its result without affecting
   * the others; an error of the database during the writes fails the whole batch, nothing written.
   * Results are in the order of `docs`. A later write of the same external id in one batch replaces the earlier.
   * Throws NOT_FOUND for an unknown collection.
   */
  async upsertDocuments(collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]> {
    return this.upsertMany(collectionId, docs);
  }

  async deleteDocuments(ids: string[]): Promise<DeleteCounts> {
    await this.db.writable();
    const db = this.db.open();
    const unique = [...new Set(ids)];
    const ops: IndexOp[] = [];
    const bumps: VersionBumps = new Map();
    const counts = db
      .transaction((): DeleteCounts => {
        let documents = 0;
        let chunks = 0;
        const touched = new Set<string>();
        const findDoc = this.db.prepare('SELECT collection_id FROM documents WHERE id = ?');
        const chunkSeqs = this.db.prepare('SELECT seq FROM chunks WHERE document_id = ?', 'pluck');
        const deleteChunks = this.db.prepare('DELETE FROM chunks WHERE document_id = ?');
        const deleteDoc = this.db.prepare('DELETE FROM documents WHERE id = ?');
        for (const id of unique) {
          const doc = findDoc.get(id) as { collection_id: string } | undefined;
          if (!doc) continue;
          for (const seq of chunkSeqs.all(id) as number[]) ops.push({ kind: 'remove', collectionId: doc.collection_id, rowId: seq });
          this.db.fts(doc.collection_id).deleteByDocument.run(id);
          chunks += deleteChunks.run(id).changes;
          documents += deleteDoc.run(id).changes;
          touched.add(doc.collection_id);
        }
        const now = Date.now();
        for (const collectionId of touched) this.db.bumpVersion(collectionId, now, bumps);
        return { documents, chunks };
      })
      .immediate();
    this.indexes.afterCommit(ops, bumps);
    return counts;
  }

  async updateDocumentMetadata(id: string, metadata: Metadata): Promise<DocumentRecord | null> {
    await this.db.writable();
    const db = this.db.open();
    const json = stringifyMetadata(metadata);
    const bumps: VersionBumps = new Map();
    const updated = db
      .transaction((): boolean => {
        const now = Date.now();
        const row = this.db.prepare('SELECT collection_id FROM documents WHERE id = ?').get(id) as { collection_id: string } | undefined;
        if (!row) return false;
        this.db.prepare('UPDATE documents SET metadata = jsonb(?), updated_at = ? WHERE id = ?').run(json, now, id);
        this.db.bumpVersion(row.collection_id, now, bumps);
        return true;
      })
      .immediate();
    this.indexes.afterCommit([], bumps);
    if (!updated || !this.reads) return null;
    const [doc] = await this.reads.getDocuments([id]);
    return doc ?? null;
  }

  private async upsertMany(collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]> {
    await this.db.writable();
    const chunkCount = docs.reduce((sum, doc) => sum + doc.chunks.length, 0);
    try {
      return this.writer && chunkCount > THREAD_WRITE_MIN_CHUNKS
        ? await this.upsertOnThread(this.writer, collectionId, docs)
        : this.writeBatch(collectionId, docs);
    } catch (error) {
      throw storageError(error) ?? error;
    }
  }

  /**
   * {@link writeBatch} on the store's writer thread, with its own connection: the event loop goes on meanwhile. Other
   * writes wait for it (`exclusive`), reads use the reading connection and see all of it or nothing; the vector
   * indexes of this thread change once it has committed.
   */
  private upsertOnThread(writer: SqliteWriterThread, collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]> {
    return this.db.exclusive(() => writer.upsert(collectionId, docs, (ops, bumps) => this.indexes.afterCommit(ops, bumps)));
  }

  /** Each document aligned with the collection's embedders and checked, or the AppError that fails it alone. */
  private validateAll(docs: readonly DocumentWrite[], collection: CollectionRow): (AlignedWrite | AppError)[] {
    return docs.map((doc) => {
      try {
        return validate(doc, collection);
      } catch (error) {
        if (error instanceof AppError) return error;
        throw error;
      }
    });
  }

  /**
   * One transaction for the whole batch, without a savepoint per document: opening one makes FTS5 flush its pending
   * postings, which cost a third of a bulk write. Every way one document can fail is checked before the transaction
   * (`validateAll`); an error during the writes (the disk, the database) rolls the whole batch back and is thrown.
   */
  writeBatch(collectionId: string, docs: readonly DocumentWrite[]): BulkUpsertResult[] {
    const db = this.db.open();
    const collection = this.db.collectionRow(collectionId);
    if (!collection) throw notFound('Collection', collectionId);
    const checked = this.validateAll(docs, collection);
    const results: BulkUpsertResult[] = [];
    const ops: IndexOp[] = [];
    const bumps: VersionBumps = new Map();
    db.transaction(() => {
      const now = Date.now();
      let written = 0;
      docs.forEach((doc, i) => {
        const aligned = checked[i]!;
        if (aligned instanceof AppError) {
          results.push({ ok: false, externalId: doc.externalId, error: aligned });
          return;
        }
        results.push({ ok: true, externalId: doc.externalId, document: this.writeDocument(collection, aligned, now, ops) });
        written++;
      });
      if (written > 0) this.db.bumpVersion(collection.id, now, bumps);
    }).immediate();
    this.indexes.afterCommit(ops, bumps);
    return results;
  }

  /** Inside a transaction: inserts or replaces one document and all its chunks; returns the document. */
  private writeDocument(collection: CollectionRow, aligned: AlignedWrite, now: number, ops: IndexOp[]): DocumentRecord {
    const { doc, secondary } = aligned;
    const id = documentId(collection.id, doc.externalId);
    const fts = this.db.fts(collection.id);
    const metadata = stringifyMetadata(doc.metadata);
    const existing = this.db.prepare('SELECT created_at FROM documents WHERE id = ?').get(id) as { created_at: number } | undefined;
    if (existing) {
      const seqs = this.db.prepare('SELECT seq FROM chunks WHERE document_id = ?', 'pluck').all(id) as number[];
      for (const seq of seqs) ops.push({ kind: 'remove', collectionId: collection.id, rowId: seq });
      for (let at = 0; at < seqs.length; at += DELETE_BATCH_CHUNKS) {
        const batch = JSON.stringify(seqs.slice(at, at + DELETE_BATCH_CHUNKS));
        fts.deleteBySeqs.run(batch);
        this.db.prepare('DELETE FROM chunks WHERE seq IN (SELECT value FROM json_each(?))').run(batch);
      }
      this.db
        .prepare(
          `UPDATE documents SET title = ?, source = ?, content_type = ?, metadata = jsonb(?), content_hash = ?,
           char_count = ?, chunk_count = ?, updated_at = ? WHERE id = ?`,
        )
        .run(doc.title, doc.source, doc.contentType, metadata, doc.contentHash, doc.charCount, doc.chunks.length, now, id);
    } else {
      this.db
        .prepare(
          `INSERT INTO documents (id, collection_id, external_id, title, source, content_type, metadata, content_hash,
           char_count, chunk_count, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, jsonb(?), ?, ?, ?, ?, ?)`,
        )
        .run(
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
    const insertChunk = this.db.prepare(
      `INSERT INTO chunks (id, document_id, collection_id, idx, start_offset, end_offset, text, vector)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertSecondary = secondary
      ? this.db.prepare('INSERT INTO secondary_vectors (chunk_seq, collection_id, vector) VALUES (?, ?, ?)')
      : null;
    for (const [i, chunk] of doc.chunks.entries()) {
      const cid = chunkId(id, chunk.index);
      const blob = Buffer.from(chunk.vector.buffer, chunk.vector.byteOffset, chunk.vector.byteLength);
      const info = insertChunk.run(cid, id, collection.id, chunk.index, chunk.startOffset, chunk.endOffset, chunk.text, blob);
      const rowId = Number(info.lastInsertRowid);
      fts.insert.run(rowId, chunk.text);
      if (insertSecondary) {
        const v = secondary![i]!;
        insertSecondary.run(rowId, collection.id, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
      }
      ops.push({ kind: 'add', collectionId: collection.id, rowId, chunkId: cid, vector: chunk.vector });
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
}

/**
 * A document write aligned with the collection's embedders and checked: distinct chunk indexes, vectors of the right
 * length with finite components.
 */
function validate(write: DocumentWrite, collection: CollectionRow): AlignedWrite {
  const aligned = alignWriteVectors(
    write,
    { name: collection.embedder_name, dimensions: collection.embedder_dimensions },
    parseSecondary(collection.secondary),
  );
  const { doc } = aligned;
  const dimensions = collection.embedder_dimensions;
  const seen = new Set<number>();
  for (const chunk of doc.chunks) {
    if (!Number.isSafeInteger(chunk.index) || chunk.index < 0 || seen.has(chunk.index)) {
      throw badInput(`Document "${doc.externalId}": chunk indexes must be distinct non-negative integers.`, {
        externalId: doc.externalId,
        index: chunk.index,
      });
    }
    seen.add(chunk.index);
    checkChunkVector(doc.externalId, chunk, dimensions);
  }
  return aligned;
}
