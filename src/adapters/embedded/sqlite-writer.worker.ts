/**
 * The embedded store's writer thread (`sqlite-writer.ts`): its own writing connection to the store's file, on which
 * it runs bulk upserts, each in one transaction. Messages: `WriterRequest`s in (a write's parts, then its documents),
 * one `WriterReply` per write out.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteDatabase, type VersionBumps } from './sqlite.database';
import { PartCollector, toWire, type WriterReply, type WriterRequest, type WriterThreadData } from './sqlite-writer';
import type { IndexOp } from './sqlite.vector-indexes';
import { SqliteWrites } from './sqlite.writes';

const data = workerData as WriterThreadData;
const db = new SqliteDatabase(data.dataDir, data.busyTimeoutMs, data.synchronousFull, 'writer');
/** What the last committed write reports for the vector indexes of the main thread. */
let committed: { ops: readonly IndexOp[]; bumps: VersionBumps } = { ops: [], bumps: new Map() };
const writes = new SqliteWrites(db, { afterCommit: (ops, bumps) => (committed = { ops, bumps }) }, null);
const ready = db.init();
/** Writes whose parts are arriving, by id. */
const collecting = new Map<number, PartCollector>();

parentPort!.on('message', (request: WriterRequest) => {
  if (request.kind === 'part') {
    const collector = collecting.get(request.id) ?? new PartCollector();
    collector.add(request.part);
    collecting.set(request.id, collector);
    return;
  }
  const collector = collecting.get(request.id) ?? new PartCollector();
  collecting.delete(request.id);
  void ready
    .then(() => {
      committed = { ops: [], bumps: new Map() };
      // Another thread may have dropped and re-created the collection's FTS table: its statements are prepared anew.
      db.dropFts(request.collectionId);
      const results = writes.writeBatch(request.collectionId, collector.writes(request.headers));
      parentPort!.postMessage(
        reply(request.id, results, collector),
        collector.parts.map((floats) => floats.buffer as ArrayBuffer),
      );
    })
    .catch((error: unknown) => parentPort!.postMessage({ id: request.id, ok: false, error: toWire(error) } satisfies WriterReply));
});

function reply(id: number, results: ReturnType<SqliteWrites['writeBatch']>, collector: PartCollector): WriterReply {
  const removed: number[] = [];
  const added = {
    rowIds: [] as number[],
    chunkIds: [] as string[],
    parts: [] as number[],
    offsets: [] as number[],
    lengths: [] as number[],
  };
  for (const op of committed.ops) {
    if (op.kind === 'remove') {
      removed.push(op.rowId);
      continue;
    }
    const { part, offset } = collector.locate(op.vector);
    added.rowIds.push(op.rowId);
    added.chunkIds.push(op.chunkId);
    added.parts.push(part);
    added.offsets.push(offset);
    added.lengths.push(op.vector.length);
  }
  return {
    id,
    ok: true,
    results: results.map((r) => (r.ok ? r : { ok: false, externalId: r.externalId, error: toWire(r.error) })),
    removed: Float64Array.from(removed),
    added: {
      rowIds: Float64Array.from(added.rowIds),
      chunkIds: added.chunkIds,
      parts: Int32Array.from(added.parts),
      offsets: Int32Array.from(added.offsets),
      lengths: Int32Array.from(added.lengths),
    },
    floats: collector.parts,
    bumps: committed.bumps,
  };
}
