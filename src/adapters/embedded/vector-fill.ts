import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FillRange, VectorFillConnection, VectorFillReply, VectorFillTask } from './vector-fill.worker';

/** A collection's rows as read by {@link fillVectors}: normalised vectors in shared memory, and their ids. */
export interface FilledRows {
  /** The collection version the rows belong to. */
  version: number;
  matrix: Float32Array;
  rowIds: Float64Array;
  chunkIds: string[];
}

export interface FillOptions extends VectorFillConnection {
  dimensions: number;
  /** Threads reading ranges of rows at once. @default min(2, available parallelism) */
  threads?: number;
  /** Longest the whole fill may take, in ms; past it the threads are stopped and the fill rejects. */
  timeoutMs: number;
  /** Aborted at shutdown: the threads stop at once. */
  signal?: AbortSignal;
}

/** The collection moved on (a write) between the plan and a range's read: the caller plans again. */
export class FillMovedError extends Error {}

/**
 * Reads a collection's vectors on short-lived worker threads (each its own read-only connection), so that loading a
 * million rows — seconds of copying and normalising — never blocks the event loop and uses every core. One thread
 * plans (the version, the rows cut into ranges of row ids with their counts), then one thread per range fills its
 * slots of one shared matrix, each in a read transaction that must still see the planned version; any write to the
 * collection in between makes the fill reject with {@link FillMovedError}. Rejects too when a thread fails, the
 * whole fill takes longer than `timeoutMs`, or `signal` aborts.
 */
export async function fillVectors(options: FillOptions): Promise<FilledRows> {
  const { dimensions, timeoutMs, signal } = options;
  const connection: VectorFillConnection = {
    filename: options.filename,
    collectionId: options.collectionId,
    busyTimeoutMs: options.busyTimeoutMs,
  };
  const deadline = Date.now() + timeoutMs;
  const threads = Math.max(1, options.threads ?? Math.min(2, availableParallelism()));
  const planned = await runTask({ ...connection, kind: 'plan', parts: threads }, deadline, signal);
  if (planned.kind !== 'plan') throw new Error('vector fill: unexpected reply');
  const matrix = new SharedArrayBuffer(planned.count * dimensions * 4);
  const rowIds = new SharedArrayBuffer(planned.count * 8);
  const fill = (range: FillRange) =>
    runTask({ ...connection, kind: 'fill', version: planned.version, range, dimensions, matrix, rowIds }, deadline, signal);
  const filled = await Promise.all(planned.ranges.map(fill));
  const chunkIds: string[] = [];
  for (const reply of filled)
    if (reply.kind === 'fill' && reply.chunkIds !== '') for (const id of reply.chunkIds.split('\n')) chunkIds.push(id);
  if (chunkIds.length !== planned.count) throw new FillMovedError(`vector fill: ${chunkIds.length} ids for ${planned.count} rows`);
  return { version: planned.version, matrix: new Float32Array(matrix), rowIds: new Float64Array(rowIds), chunkIds };
}

type OkReply = Extract<VectorFillReply, { ok: true }>;

function runTask(task: VectorFillTask, deadline: number, signal: AbortSignal | undefined): Promise<OkReply> {
  return new Promise((resolve, reject) => {
    const what = `vector fill (${task.kind}) of ${task.collectionId}`;
    if (signal?.aborted) return reject(new Error(`${what} aborted`));
    const worker = new Worker(join(__dirname, 'vector-fill.worker.js'), { workerData: task });
    const stop = (error: Error) => {
      done();
      void worker.terminate();
      reject(error);
    };
    const timer = setTimeout(() => stop(new Error(`${what} ran past its deadline`)), Math.max(0, deadline - Date.now()));
    const onAbort = () => stop(new Error(`${what} aborted`));
    signal?.addEventListener('abort', onAbort, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    worker.once('message', (reply: VectorFillReply) => {
      done();
      if (reply.ok) resolve(reply);
      else reject(reply.moved ? new FillMovedError(`${what}: ${reply.error}`) : new Error(`${what}: ${reply.error}`));
    });
    worker.once('error', (error) => {
      done();
      reject(error);
    });
    worker.once('exit', (code) => {
      done();
      reject(new Error(`${what}: thread exited with code ${code}`));
    });
  });
}
