/**
 * Worker thread of {@link fillVectorsInThread}: reads one collection's vectors from the database file on its own
 * read-only connection, in one read transaction (rows and version are one snapshot), into shared memory, normalised.
 * Input: {@link VectorFillData}; one message out, then the thread ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { normaliseAt } from './vector-index';

/** Largest mapping of the database file a fill thread asks for (SQLite maps at most the file's size). */
const FILL_MMAP_BYTES = 64 * 1024 ** 3;

export interface VectorFillData {
  filename: string;
  collectionId: string;
  dimensions: number;
  busyTimeoutMs: number;
}

export type VectorFillReply =
  { ok: true; version: number; matrix: SharedArrayBuffer; rowIds: SharedArrayBuffer; chunkIds: string } | { ok: false; error: string };

function fill({ filename, collectionId, dimensions, busyTimeoutMs }: VectorFillData): VectorFillReply {
  const db = new Database(filename, { readonly: true, timeout: busyTimeoutMs });
  // Reads the file through a memory map instead of copying every page into SQLite's cache: half the time at 1M rows.
  db.pragma(`mmap_size = ${FILL_MMAP_BYTES}`);
  try {
    return db.transaction((): VectorFillReply => {
      const version = db.prepare('SELECT version FROM collections WHERE id = ?').pluck().get(collectionId) as number | undefined;
      if (version === undefined) return { ok: false, error: `collection ${collectionId} not found` };
      const count = db.prepare('SELECT count(*) FROM chunks WHERE collection_id = ?').pluck().get(collectionId) as number;
      const rowBytes = dimensions * 4;
      const matrixBuffer = new SharedArrayBuffer(count * rowBytes);
      const bytes = new Uint8Array(matrixBuffer);
      const matrix = new Float32Array(matrixBuffer);
      const rowIdsBuffer = new SharedArrayBuffer(count * 8);
      const rowIds = new Float64Array(rowIdsBuffer);
      // One string of ids joined by newlines: one structured-clone copy instead of a million small strings.
      const ids: string[] = [];
      let slot = 0;
      const rows = db.prepare('SELECT seq, id, vector FROM chunks WHERE collection_id = ?').raw();
      for (const row of rows.iterate(collectionId) as IterableIterator<[number, string, Buffer]>) {
        const [seq, id, blob] = row;
        if (slot >= count) break;
        if (id.includes('\n')) return { ok: false, error: `chunk id ${JSON.stringify(id)} holds a newline` };
        if (blob.byteLength !== rowBytes)
          return { ok: false, error: `chunk ${id}: vector blob has ${blob.byteLength} bytes, expected ${rowBytes}` };
        bytes.set(blob, slot * rowBytes);
        normaliseAt(matrix, slot * dimensions, dimensions);
        rowIds[slot] = seq;
        ids.push(id);
        slot++;
      }
      return { ok: true, version, matrix: matrixBuffer, rowIds: rowIdsBuffer, chunkIds: ids.join('\n') };
    })();
  } finally {
    db.close();
  }
}

let reply: VectorFillReply;
try {
  reply = fill(workerData as VectorFillData);
} catch (error) {
  reply = { ok: false, error: error instanceof Error ? error.message : String(error) };
}
parentPort!.postMessage(reply);
