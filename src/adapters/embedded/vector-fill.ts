import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { VectorFillData, VectorFillReply } from './vector-fill.worker';

/** A collection's rows as read by {@link fillVectorsInThread}: normalised vectors in shared memory, and their ids. */
export interface FilledRows {
  /** The collection version the rows belong to (read in the same transaction). */
  version: number;
  matrix: Float32Array;
  rowIds: Float64Array;
  chunkIds: string[];
}

/**
 * Reads a collection's vectors on a short-lived worker thread (its own read-only connection), so that loading a
 * million rows (seconds of copying and normalising) never blocks the event loop. Rejects when the thread fails or
 * takes longer than `timeoutMs` (the caller then loads on the main thread), or when `signal` aborts (shutdown).
 */
export function fillVectorsInThread(data: VectorFillData, timeoutMs: number, signal?: AbortSignal): Promise<FilledRows> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error(`vector fill of ${data.collectionId} aborted`));
    const worker = new Worker(join(__dirname, 'vector-fill.worker.js'), { workerData: data });
    const stop = (message: string) => {
      void worker.terminate();
      reject(new Error(message));
    };
    const timer = setTimeout(() => stop(`vector fill of ${data.collectionId} took more than ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => stop(`vector fill of ${data.collectionId} aborted`);
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    worker.once('message', (reply: VectorFillReply) => {
      done();
      if (!reply.ok) return reject(new Error(`vector fill of ${data.collectionId}: ${reply.error}`));
      resolve({
        version: reply.version,
        matrix: new Float32Array(reply.matrix),
        rowIds: new Float64Array(reply.rowIds),
        chunkIds: reply.chunkIds === '' ? [] : reply.chunkIds.split('\n'),
      });
    });
    worker.once('error', (error) => {
      done();
      reject(error);
    });
    worker.once('exit', (code) => {
      done();
      reject(new Error(`vector fill thread of ${data.collectionId} exited with code ${code}`));
    });
  });
}
