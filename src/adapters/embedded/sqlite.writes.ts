/**
 * Document writes of the embedded store: upserts (one transaction per batch, every document all-or-nothing; large
 * batches committed in slices), deletes and metadata updates, each followed by its vector-index changes.
 */
import { AppError, badInput, notFound } from '../../errors';
import { chunkId, documentId } from '../../ids';
import type { BulkUpsertResult, DeleteCounts, DocumentRecord, DocumentWrite, Metadata } from '../../ports/knowledge-store.port';
import { alignWriteVectors, type AlignedWrite } from '../embedding-checks';
import { checkChunkVector } from '../store-checks';
import { storageError, type SqliteDatabase, type VersionBumps } from './sqlite.database';
import type { SqliteReads } from './sqlite.reads';
import { parseSecondary, stringifyMetadata, type CollectionRow } from './sqlite.rows';
import type { IndexOp, LoadedVectorIndexes } from './sqlite.vector-indexes';

/**
 * Old chunks deleted by one statement of a sliced write (the slice itself ends by time, {@link WRITE_SLICE_MS}):
 * deleting a chunk's FTS5 postings costs up to a millisecond for long CJK chunks, so 64 at a time took 50–60 ms.
 */
const DELETE_BATCH_CHUNKS = 8;
/**
 * Longest run of chunk inserts between two turns of the event loop, in ms. A count would not do: 64 chunks of English
 * prose take about 5 ms here, 64 chunks of CJK text (more characters per token, more FTS5 postings) three times that.
 */
const WRITE_SLICE_MS = 5;
/** Writes of more chunks than this are committed in slices (see `upsertSliced`). */
const SLICED_WRITE_MIN_CHUNKS = 256;

export class SqliteWrites {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly indexes: LoadedVectorIndexes,
    private readonly reads: SqliteReads,
  ) {}

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
    if (!updated) return null;
    const [doc] = await this.reads.getDocuments([id]);
    return doc ?? null;
  }

  private async upsertMany(collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]> {
    await this.db.writable();
    const chunkCount = docs.reduce((sum, doc) => sum + doc.chunks.length, 0);
    try {
      return chunkCount > SLICED_WRITE_MIN_CHUNKS ? await this.upsertSliced(collectionId, docs) : this.upsertAtOnce(collectionId, docs);
    } catch (error) {
      throw storageError(error) ?? error;
    }
  }

  /**
   * Validation before the write lock is taken, so the transaction holds it only for the writes; each document's
   * vectors are aligned with the collection's active and secondary embedders (see `alignWriteVectors`).
   */
  private validateAll(docs: readonly DocumentWrite[], collection: CollectionRow): (AlignedWrite | AppError)[] {
    return docs.map((doc) => orAppError(() => runToEnd(validationSteps(doc, collection))));
  }

  /** {@link validateAll} for one document, with turns of the event loop while its vectors are checked. */
  private async validateSliced(doc: DocumentWrite, collection: CollectionRow): Promise<AlignedWrite | AppError> {
    try {
      return await stepThrough(validationSteps(doc, collection));
    } catch (error) {
      return appErrorOnly(error);
    }
  }

  /**
   * One transaction for the whole batch, without a savepoint per document: opening one makes FTS5 flush its pending
   * postings, which cost a third of a bulk write. Every way one document can fail is checked before the transaction
   * (`validateAll`); an error during the writes (the disk, the database) rolls the whole batch back and is thrown.
   */
  private upsertAtOnce(collectionId: string, docs: readonly DocumentWrite[]): BulkUpsertResult[] {
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
        results.push({ ok: true, externalId: doc.externalId, document: runToEnd(this.writeDocument(collection, aligned, now, ops)) });
        written++;
      });
      if (written > 0) this.db.bumpVersion(collection.id, now, bumps);
    }).immediate();
    this.indexes.afterCommit(ops, bumps);
    return results;
  }

  /**
   * The same transaction as {@link upsertAtOnce} for large writes, committed in steps of about {@link WRITE_SLICE_MS} ms
   * with a turn of the event loop between them, so that writing a 2 MiB document (thousands of chunks and
   * their FTS postings) never blocks requests for its whole length. Still one transaction: readers (on the second
   * connection) see all of it or nothing, a crash rolls it back, other writes wait for it (`writable`).
   */
  private async upsertSliced(collectionId: string, docs: readonly DocumentWrite[]): Promise<BulkUpsertResult[]> {
    const db = this.db.open();
    const collection = this.db.collectionRow(collectionId);
    if (!collection) throw notFound('Collection', collectionId);
    const results: BulkUpsertResult[] = [];
    const ops: IndexOp[] = [];
    const bumps: VersionBumps = new Map();
    return this.db.sliced(async (step) => {
      step(() => db.exec('BEGIN IMMEDIATE'));
      try {
        const now = Date.now();
        let written = 0;
        for (const doc of docs) {
          // Validated here, in slices too: the collection cannot change while the sliced write is open.
          const aligned = await this.validateSliced(doc, collection);
          if (aligned instanceof AppError) {
            results.push({ ok: false, externalId: doc.externalId, error: aligned });
            continue;
          }
          // At every pause a savepoint makes FTS5 flush the postings pending since the last one: left to grow to
          // FTS5's own limit (about 1 MB), each flush ran inside one insert or delete for 50–70 ms.
          const document = await stepThrough(
            step(() => this.writeDocument(collection, aligned, now, ops)),
            step,
            () => step(() => db.exec('SAVEPOINT kbql_slice; RELEASE kbql_slice')),
          );
          results.push({ ok: true, externalId: doc.externalId, document });
          written++;
        }
        if (written > 0) step(() => this.db.bumpVersion(collection.id, now, bumps));
        step(() => db.exec('COMMIT'));
      } catch (error) {
        step(() => {
          if (db.inTransaction) db.exec('ROLLBACK');
        });
        throw error;
      }
      // Before other writes go on (they wait for the sliced write to settle), as after any other commit.
      this.indexes.afterCommit(ops, bumps);
      return results;
    });
  }

  /**
   * Inside a transaction: inserts or replaces one document and all its chunks, pausing (a `yield`) after every
   * {@link WRITE_SLICE_MS} of deletes or inserts for a caller that commits in slices; returns the document.
   */
  private *writeDocument(collection: CollectionRow, aligned: AlignedWrite, now: number, ops: IndexOp[]): Generator<void, DocumentRecord> {
    const { doc, secondary } = aligned;
    const id = documentId(collection.id, doc.externalId);
    const fts = this.db.fts(collection.id);
    const metadata = stringifyMetadata(doc.metadata);
    const existing = this.db.prepare('SELECT created_at FROM documents WHERE id = ?').get(id) as { created_at: number } | undefined;
    if (existing) {
      const seqs = this.db.prepare('SELECT seq FROM chunks WHERE document_id = ?', 'pluck').all(id) as number[];
      for (const seq of seqs) ops.push({ kind: 'remove', collectionId: collection.id, rowId: seq });
      // The old chunks go in slices too: replacing a large document deletes thousands of rows and postings.
      let sliceEnds = performance.now() + WRITE_SLICE_MS;
      for (let at = 0; at < seqs.length; at += DELETE_BATCH_CHUNKS) {
        const batch = JSON.stringify(seqs.slice(at, at + DELETE_BATCH_CHUNKS));
        fts.deleteBySeqs.run(batch);
        this.db.prepare('DELETE FROM chunks WHERE seq IN (SELECT value FROM json_each(?))').run(batch);
        if (at + DELETE_BATCH_CHUNKS < seqs.length && performance.now() >= sliceEnds) {
          yield;
          sliceEnds = performance.now() + WRITE_SLICE_MS;
        }
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
    let sliceEnds = performance.now() + WRITE_SLICE_MS;
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
      if (performance.now() >= sliceEnds) {
        yield;
        sliceEnds = performance.now() + WRITE_SLICE_MS;
      }
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

/** Runs a generator to its end and returns its result. */
function runToEnd<T>(steps: Generator<void, T>): T {
  let next = steps.next();
  while (!next.done) next = steps.next();
  return next.value;
}

/**
 * A document write aligned with the collection's embedders and checked (distinct chunk indexes, vectors of the right
 * length with finite components), pausing (a `yield`) after every {@link WRITE_SLICE_MS}: checking the vectors of a
 * 2 MiB document's thousands of chunks takes tens of milliseconds.
 */
function* validationSteps(write: DocumentWrite, collection: CollectionRow): Generator<void, AlignedWrite> {
  const aligned = alignWriteVectors(
    write,
    { name: collection.embedder_name, dimensions: collection.embedder_dimensions },
    parseSecondary(collection.secondary),
  );
  const { doc } = aligned;
  const dimensions = collection.embedder_dimensions;
  const seen = new Set<number>();
  let sliceEnds = performance.now() + WRITE_SLICE_MS;
  for (const chunk of doc.chunks) {
    if (!Number.isSafeInteger(chunk.index) || chunk.index < 0 || seen.has(chunk.index)) {
      throw badInput(`Document "${doc.externalId}": chunk indexes must be distinct non-negative integers.`, {
        externalId: doc.externalId,
        index: chunk.index,
      });
    }
    seen.add(chunk.index);
    checkChunkVector(doc.externalId, chunk, dimensions);
    if (performance.now() >= sliceEnds) {
      yield;
      sliceEnds = performance.now() + WRITE_SLICE_MS;
    }
  }
  return aligned;
}

/** `validate`'s result, or the AppError it threw (other errors are thrown on). */
function orAppError<T>(validate: () => T): T | AppError {
  try {
    return validate();
  } catch (error) {
    return appErrorOnly(error);
  }
}

function appErrorOnly(error: unknown): AppError {
  if (error instanceof AppError) return error;
  throw error;
}

/** Runs `steps` to their end with a turn of the event loop at every pause (after `atPause`). */
async function stepThrough<T>(
  steps: Generator<void, T>,
  step: <R>(work: () => R) => R = (work) => work(),
  atPause: () => void = () => undefined,
): Promise<T> {
  let next = step(() => steps.next());
  while (!next.done) {
    atPause();
    await new Promise<void>((resolve) => setImmediate(resolve));
    next = step(() => steps.next());
  }
  return next.value;
}
