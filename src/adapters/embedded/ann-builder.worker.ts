import { parentPort, workerData } from 'node:worker_threads';
import { Index, MetricKind, ScalarKind } from 'usearch';
import { lowerThreadPriority } from '../workers/lower-priority';
import { checkAnnFile, vectorCrc, writeAnnFile, type AnnFingerprint } from './ann-file';

/**
 * The ANN index's builder thread. usearch's `add` is a synchronous native call (its thread count splits the work but
 * the calling thread waits for all of it), so graph insertion runs here, never on the event loop. The thread holds
 * the writable graph (the "builder"); the main thread searches the last saved file, memory-mapped.
 * Requests are answered in order, one at a time: { id, op, input } → { id, ok, value | error }.
 */
export interface AnnBuilderData {
  fingerprint: AnnFingerprint;
  /** Nice value of this thread (Linux), so that request handling wins the CPU. */
  niceness: number;
}

export type AnnBuilderRequest =
  | { op: 'check'; path: string }
  | { op: 'begin'; from: 'file' | 'empty'; path: string }
  | { op: 'apply'; removeIds: Float64Array; upsertIds: Float64Array; vectors: Float32Array; threads: number }
  | { op: 'save'; path: string }
  | { op: 'release' };

export interface AnnBuilderState {
  /** Rows in the builder. */
  size: number;
  /** Removals (deletes and replacements) applied since the builder was built from empty. */
  removals: number;
}

const { fingerprint, niceness } = workerData as AnnBuilderData;
let builder: Index | null = null;
let crcByRow = new Map<number, number>();
let removals = 0;

function newIndex(): Index {
  return new Index({
    dimensions: fingerprint.dimensions,
    metric: MetricKind.Cos,
    quantization: fingerprint.quantization as ScalarKind,
    connectivity: fingerprint.connectivity,
    expansion_add: fingerprint.expansionAdd,
    expansion_search: 64,
    multi: false,
  });
}

const state = (): AnnBuilderState => ({ size: builder?.size() ?? 0, removals });

const handlers = {
  check: ({ path }: { path: string }) => checkAnnFile(path, fingerprint),

  begin: ({ from, path }: { from: 'file' | 'empty'; path: string }) => {
    builder = newIndex();
    crcByRow = new Map();
    removals = 0;
    if (from === 'file') {
      const checked = checkAnnFile(path, fingerprint);
      if (!checked.ok) throw new Error(`cannot resume from ${path}: ${checked.detail}`);
      builder.load(path);
      const { rowIds, crcs } = checked.rows;
      for (let i = 0; i < rowIds.length; i++) crcByRow.set(rowIds[i]!, crcs[i]!);
      // Removals before the save are not known; count the file's holes as none (compaction is approximate).
    }
    return state();
  },

  apply: ({ removeIds, upsertIds, vectors, threads }: { removeIds: Float64Array; upsertIds: Float64Array; vectors: Float32Array; threads: number }) => {
    const index = builder;
    if (!index) throw new Error('apply before begin');
    const d = fingerprint.dimensions;
    // A replaced row is removed first: the wrapper refuses duplicate keys.
    const stale = [...removeIds, ...upsertIds].filter((rowId) => crcByRow.has(rowId));
    if (stale.length > 0) {
      index.remove(BigUint64Array.from(stale, BigInt));
      for (const rowId of stale) crcByRow.delete(rowId);
      removals += stale.length;
    }
    if (upsertIds.length > 0) {
      index.add(BigUint64Array.from(upsertIds, BigInt), vectors, threads);
      for (let i = 0; i < upsertIds.length; i++) crcByRow.set(upsertIds[i]!, vectorCrc(vectors.subarray(i * d, (i + 1) * d)));
    }
    return state();
  },

  save: ({ path }: { path: string }) => {
    const index = builder;
    if (!index) throw new Error('save before begin');
    const rowIds = Float64Array.from(crcByRow.keys()).sort();
    const crcs = Uint32Array.from(rowIds, (rowId) => crcByRow.get(rowId)!);
    const meta = writeAnnFile(path, fingerprint, { rowIds, crcs }, (tmp) => index.save(tmp));
    return { ...state(), count: meta.count, dataBytes: meta.dataBytes };
  },

  release: () => {
    builder = null;
    crcByRow = new Map();
    removals = 0;
    return state();
  },
};

lowerThreadPriority(niceness);
const port = parentPort!;
port.on('message', (message: { id: number } & AnnBuilderRequest) => {
  try {
    const handler = handlers[message.op] as (input: AnnBuilderRequest) => unknown;
    port.postMessage({ id: message.id, ok: true, value: handler(message) });
  } catch (error) {
    port.postMessage({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
});
