/**
 * Child process for the ANN index crash test: builds an index at the path given as argv[2] over
 * {@link crashRows}(0), then applies round after round of changes (deletes, re-used row ids with new vectors, new
 * rows), printing `round <r>` when a round is "committed" (before the index sees it, as the store commits to SQLite
 * first), while the builder thread indexes and saves continuously, until the parent SIGKILLs it.
 * Run as `node ann-crash.child.js <path>` (compiled). The parent rebuilds any round's rows with {@link crashRows}.
 */
import { AnnIndex } from '../../src/adapters/embedded/ann-index';
import { mulberry32 } from './fixtures';

export const CRASH_ANN = { dimensions: 32, rows: 2000, clusters: 40, exactBelowRows: 200, embedder: 'crash-test' } as const;

const centres = (() => {
  const rng = mulberry32(77);
  return Array.from({ length: CRASH_ANN.clusters }, () => Float32Array.from({ length: CRASH_ANN.dimensions }, () => rng() * 2 - 1));
})();

/** Row `rowId`'s vector in its `version` (a row id re-used by a later round gets a new version). */
export function crashVector(rowId: number, version: number): Float32Array {
  const rng = mulberry32(rowId * 1009 + version * 7919 + 1);
  const c = centres[(rowId * 7 + version * 13) % CRASH_ANN.clusters]!;
  return Float32Array.from(c, (x) => x + 0.35 * (rng() * 2 - 1));
}

/** Round r's changes: 15 rows deleted, 10 of them re-used with new vectors, 8 new rows. */
export function roundChanges(r: number): { removed: number[]; upserted: number[] } {
  const start = (r * 37) % CRASH_ANN.rows;
  const removed = Array.from({ length: 15 }, (_, i) => (start + i) % CRASH_ANN.rows);
  const upserted = [...removed.slice(0, 10), ...Array.from({ length: 8 }, (_, i) => CRASH_ANN.rows + r * 8 + i)];
  return { removed, upserted };
}

/** The rows (row id → vector) after `round` rounds. */
export function crashRows(round: number): Map<number, Float32Array> {
  const version = new Map<number, number>();
  for (let rowId = 0; rowId < CRASH_ANN.rows; rowId++) version.set(rowId, 0);
  for (let r = 1; r <= round; r++) {
    const { removed, upserted } = roundChanges(r);
    for (const rowId of removed) version.delete(rowId);
    for (const rowId of upserted) version.set(rowId, r);
  }
  return new Map([...version].map(([rowId, v]) => [rowId, crashVector(rowId, v)]));
}

export const crashChunkId = (rowId: number): string => `chunk-${String(rowId).padStart(6, '0')}`;

async function main(): Promise<void> {
  const path = process.argv[2]!;
  const index = new AnnIndex({
    dimensions: CRASH_ANN.dimensions,
    path,
    embedder: CRASH_ANN.embedder,
    exactBelowRows: CRASH_ANN.exactBelowRows,
    saveIntervalMs: 0,
  });
  for (const [rowId, v] of crashRows(0)) index.add(rowId, crashChunkId(rowId), v);
  await index.open();
  for (let r = 1; ; r++) {
    process.stdout.write(`round ${r}\n`);
    const { removed, upserted } = roundChanges(r);
    for (const rowId of removed) index.remove(rowId);
    for (const rowId of upserted) index.add(rowId, crashChunkId(rowId), crashVector(rowId, r));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

if (require.main === module) void main();
