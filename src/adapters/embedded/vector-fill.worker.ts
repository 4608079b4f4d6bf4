/**
 * Worker thread of {@link fillVectors} (vector-fill.ts), on its own read-only, memory-mapped connection to the
 * database file, one read transaction per task (rows and version are one snapshot). Two tasks:
 * - `plan`: the collection's version, and its rows cut into ranges of row ids with their counts;
 * - `fill`: one range's vectors, normalised, into shared memory from a given slot, if the collection is still at the
 *   planned version (every write to a collection bumps it).
 * Input: {@link VectorFillTask}; one message out, then the thread ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { normaliseAt } from './vector-index';

/** Largest mapping of the database file a fill thread asks for (SQLite maps at most the file's size). */
const FILL_MMAP_BYTES = 64 * 1024 ** 3;

export interface VectorFillConnection {
  filename: string;
  collectionId: string;
  busyTimeoutMs: number;
}

/** Rows with `from <= seq < to`, `count` of them, written from matrix slot `slot`. */
export interface FillRange {
  from: number;
  to: number;
  count: number;
  slot: number;
}

export type VectorFillTask =
  | (VectorFillConnection & { kind: 'plan'; parts: number })
  | (VectorFillConnection & {
      kind: 'fill';
      version: number;
      range: FillRange;
      dimensions: number;
      matrix: SharedArrayBuffer;
      rowIds: SharedArrayBuffer;
    });

export type VectorFillReply =
  | { ok: true; kind: 'plan'; version: number; count: number; ranges: FillRange[] }
  | { ok: true; kind: 'fill'; chunkIds: string }
  /** The collection is gone or moved on since the plan: plan again. */
  | { ok: false; moved: true; error: string }
  | { ok: false; moved?: false; error: string };

function run(task: VectorFillTask): VectorFillReply {
  const db = new Database(task.filename, { readonly: true, timeout: task.busyTimeoutMs });
  // Reads the file through a memory map instead of copying every page into SQLite's cache: about half the time.
  db.pragma(`mmap_size = ${FILL_MMAP_BYTES}`);
  try {
    return db.transaction((): VectorFillReply => {
      const version = db.prepare('SELECT version FROM collections WHERE id = ?').pluck().get(task.collectionId) as number | undefined;
      if (version === undefined) return { ok: false, moved: true, error: `collection ${task.collectionId} not found` };
      return task.kind === 'plan' ? plan(db, task.collectionId, version, task.parts) : fill(db, task, version);
    })();
  } finally {
    db.close();
  }
}

function plan(db: Database.Database, collectionId: string, version: number, parts: number): VectorFillReply {
  const [count, min, max] = db
    .prepare('SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), -1) FROM chunks WHERE collection_id = ?')
    .raw()
    .get(collectionId) as [number, number, number];
  // Equal spans of row ids: a collection's rows are mostly contiguous, so the counts come out close.
  const span = Math.max(1, Math.ceil((max - min + 1) / parts));
  const counter = db.prepare('SELECT count(*) FROM chunks WHERE collection_id = ? AND seq >= ? AND seq < ?').pluck();
  const ranges: FillRange[] = [];
  let slot = 0;
  for (let from = min; from <= max; from += span) {
    const to = Math.min(from + span, max + 1);
    const n = parts === 1 ? count : (counter.get(collectionId, from, to) as number);
    ranges.push({ from, to, count: n, slot });
    slot += n;
  }
  return { ok: true, kind: 'plan', version, count, ranges };
}

function fill(db: Database.Database, task: Extract<VectorFillTask, { kind: 'fill' }>, version: number): VectorFillReply {
  if (version !== task.version) return { ok: false, moved: true, error: `collection moved from version ${task.version} to ${version}` };
  const { range, dimensions } = task;
  const rowBytes = dimensions * 4;
  const bytes = new Uint8Array(task.matrix);
  const matrix = new Float32Array(task.matrix);
  const rowIds = new Float64Array(task.rowIds);
  // One string of ids joined by newlines: one structured-clone copy instead of a million small strings.
  const ids: string[] = [];
  let slot = range.slot;
  const end = range.slot + range.count;
  const rows = db.prepare('SELECT seq, id, vector FROM chunks WHERE collection_id = ? AND seq >= ? AND seq < ?').raw();
  for (const [seq, id, blob] of rows.iterate(task.collectionId, range.from, range.to) as IterableIterator<[number, string, Buffer]>) {
    if (slot >= end) return { ok: false, moved: true, error: 'more rows than planned' };
    if (id.includes('\n')) return { ok: false, error: `chunk id ${JSON.stringify(id)} holds a newline` };
    if (blob.byteLength !== rowBytes)
      return { ok: false, error: `chunk ${id}: vector blob has ${blob.byteLength} bytes, expected ${rowBytes}` };
    bytes.set(blob, slot * rowBytes);
    rowIds[slot] = seq;
    ids.push(id);
    slot++;
  }
  if (slot !== end) return { ok: false, moved: true, error: 'fewer rows than planned' };
  // A pass of its own: normalising each row right after copying it in measured 4–5 times slower per row.
  for (let s = range.slot; s < end; s++) normaliseAt(matrix, s * dimensions, dimensions);
  return { ok: true, kind: 'fill', chunkIds: ids.join('\n') };
}

let reply: VectorFillReply;
try {
  reply = run(workerData as VectorFillTask);
} catch (error) {
  reply = { ok: false, error: error instanceof Error ? error.message : String(error) };
}
parentPort!.postMessage(reply);
