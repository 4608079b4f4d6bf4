// First: every module below loads at the thread's lower priority.
import '../workers/lowered-priority';
import { parentPort } from 'node:worker_threads';
import { Index, MetricKind, ScalarKind } from 'usearch';
import { checkAnnFile, vectorCrc, writeAnnFile, type AnnFingerprint } from './ann-file';

/**
 * The ANN builder thread (see AnnBuilderThread). usearch's `add` is a synchronous native call (its thread count
 * splits the work, but the caller waits for all of it), so graph insertion runs here, never on the event loop. The
 * thread holds one writable graph (a "builder") per index, keyed by the index's file path; the index itself searches
 * the last saved file, memory-mapped. Requests are answered in order: { id, op, … } → { id, ok, value | error }.
 */
export interface AnnBuilderData {
  /** Nice value of this thread (Linux). */
  niceness: number;
}

export type AnnBuilderRequest =
  | { op: 'check'; path: string; fingerprint: AnnFingerprint }
  | { op: 'begin'; path: string; fingerprint: AnnFingerprint; from: 'file' | 'empty' }
  | { op: 'apply'; path: string; removeIds: Float64Array; upsertIds: Float64Array; vectors: Float32Array; threads: number }
  | { op: 'save'; path: string; sourceVersion: number | null }
  | { op: 'release'; path: string };

export interface AnnBuilderState {
  /** Rows in the builder. */
  size: number;
  /** Removals (deletes and replacements) applied since the builder was built from empty. */
  removals: number;
}

interface Builder {
  fingerprint: AnnFingerprint;
  index: Index;
  /** CRC-32 of each row's vector, for the sidecar. */
  crcByRow: Map<number, number>;
  removals: number;
}

const builders = new Map<string, Builder>();

function builderFor(path: string): Builder {
  const builder = builders.get(path);
  if (!builder) throw new Error(`no builder for ${path} (begin first)`);
  return builder;
}

const state = (b: Builder): AnnBuilderState => ({ size: b.index.size(), removals: b.removals });

const handlers: { [Op in AnnBuilderRequest['op']]: (request: Extract<AnnBuilderRequest, { op: Op }>) => unknown } = {
  check: ({ path, fingerprint }) => checkAnnFile(path, fingerprint),

  begin: ({ path, fingerprint, from }) => {
    const index = new Index({
      dimensions: fingerprint.dimensions,
      metric: MetricKind.Cos,
      quantization: fingerprint.quantization as ScalarKind,
      connectivity: fingerprint.connectivity,
      expansion_add: fingerprint.expansionAdd,
      expansion_search: 64,
      multi: false,
    });
    const builder: Builder = { fingerprint, index, crcByRow: new Map(), removals: 0 };
    builders.delete(path);
    if (from === 'file') {
      const checked = checkAnnFile(path, fingerprint);
      if (!checked.ok) throw new Error(`cannot resume from ${path}: ${checked.detail}`);
      index.load(path);
      const { rowIds, crcs } = checked.rows;
      for (let i = 0; i < rowIds.length; i++) builder.crcByRow.set(rowIds[i]!, crcs[i]!);
    }
    builders.set(path, builder);
    return state(builder);
  },

  apply: ({ path, removeIds, upsertIds, vectors, threads }) => {
    const builder = builderFor(path);
    const d = builder.fingerprint.dimensions;
    // A replaced row is removed first: the wrapper refuses duplicate keys.
    const stale = [...removeIds, ...upsertIds].filter((rowId) => builder.crcByRow.has(rowId));
    if (stale.length > 0) {
      builder.index.remove(BigUint64Array.from(stale, BigInt));
      for (const rowId of stale) builder.crcByRow.delete(rowId);
      builder.removals += stale.length;
    }
    if (upsertIds.length > 0) {
      builder.index.add(BigUint64Array.from(upsertIds, BigInt), vectors, threads);
      for (let i = 0; i < upsertIds.length; i++) builder.crcByRow.set(upsertIds[i]!, vectorCrc(vectors.subarray(i * d, (i + 1) * d)));
    }
    return state(builder);
  },

  save: ({ path, sourceVersion }) => {
    const builder = builderFor(path);
    const rowIds = Float64Array.from(builder.crcByRow.keys()).sort();
    const crcs = Uint32Array.from(rowIds, (rowId) => builder.crcByRow.get(rowId)!);
    writeAnnFile(path, builder.fingerprint, { rowIds, crcs }, sourceVersion, (tmp) => builder.index.save(tmp));
    return state(builder);
  },

  release: ({ path }) => builders.delete(path),
};

const port = parentPort!;
port.on('message', (message: { id: number } & AnnBuilderRequest) => {
  try {
    const handler = handlers[message.op] as (request: AnnBuilderRequest) => unknown;
    port.postMessage({ id: message.id, ok: true, value: handler(message) });
  } catch (error) {
    port.postMessage({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
});
