import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { AnnBuilderData, AnnBuilderRequest } from './ann-builder.worker';

export interface AnnBuilderThreadOptions {
  /**
   * Nice value of the thread (Linux). The lowest priority: request handling and the ingest workers (nice 10) win the
   * CPU, and the graph catches up when they pause (rows it has not reached are searched exactly meanwhile).
   * @default 19
   */
  niceness?: number;
}

/**
 * The thread that builds the ANN graphs of every collection (one thread, not one per collection: a store may hold
 * hundreds). Requests run one at a time in arrival order, so collections catching up at once take turns batch by
 * batch. Started on first use; referenced only while a request is out, so an idle builder never keeps the process
 * alive, and a save in progress does. If the thread dies, pending requests reject and the next request starts a new
 * one (without the graphs the old one held: the indexes start theirs again from their files).
 */
export class AnnBuilderThread {
  #worker: Worker | null = null;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  constructor(private readonly options: AnnBuilderThreadOptions = {}) {}

  request(message: AnnBuilderRequest, transfer: ArrayBuffer[] = []): Promise<unknown> {
    const worker = this.#ensureWorker();
    const id = this.#nextId++;
    if (this.#waiting.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ id, ...message }, transfer);
    });
  }

  /** Stops the thread; requests still out reject. A later request starts a new thread. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#lost(worker, new Error('ANN builder thread closed'));
    await worker.terminate();
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const workerData: AnnBuilderData = { niceness: this.options.niceness ?? 19 };
    const worker = new Worker(join(__dirname, 'ann-builder.worker.js'), { workerData });
    worker.unref();
    worker.on('message', (reply: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const waiter = this.#waiting.get(reply.id);
      if (!waiter) return;
      this.#waiting.delete(reply.id);
      if (this.#waiting.size === 0) worker.unref();
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(`ANN builder: ${reply.error}`));
    });
    worker.on('error', (error) => this.#lost(worker, error));
    worker.on('exit', (code) => this.#lost(worker, new Error(`ANN builder thread exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }

  #lost(worker: Worker, error: Error): void {
    if (this.#worker !== worker) return;
    this.#worker = null;
    worker.unref();
    for (const waiter of this.#waiting.values()) waiter.reject(error);
    this.#waiting.clear();
  }
}

let shared: AnnBuilderThread | null = null;

/** The process-wide builder thread, for indexes not given one. */
export function sharedAnnBuilderThread(): AnnBuilderThread {
  shared ??= new AnnBuilderThread();
  return shared;
}
