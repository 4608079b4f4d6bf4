import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/** How long after a write the checkpoint runs (writes in between share it), in ms. */
const DELAY_MS = 250;

/**
 * Checkpoints the WAL on a worker thread. SQLite's automatic checkpoint runs inside the COMMIT that crosses its
 * threshold and copies the whole WAL back into the database file: after a large write (a 2 MiB document is ~25 MB of
 * pages) that is a synchronous pause of 100+ ms on the event loop. The store turns it off and asks for a passive
 * checkpoint here after its writes instead. Failures are ignored: the WAL only grows until the next one succeeds.
 */
export class WalCheckpointer {
  #worker: Worker | null = null;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #again = false;
  #nextId = 1;

  constructor(private readonly filename: string) {}

  /** A write committed: checkpoint soon. */
  poke(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#run();
    }, DELAY_MS);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const worker = this.#worker;
    this.#worker = null;
    await worker?.terminate();
  }

  #run(): void {
    if (!this.#worker) {
      this.#worker = new Worker(join(__dirname, 'wal-checkpoint.worker.js'), { workerData: { filename: this.filename } });
      this.#worker.unref();
      this.#worker.on('error', () => {
        this.#worker = null;
        this.#running = false;
      });
    }
    const worker = this.#worker;
    this.#running = true;
    worker.once('message', () => {
      this.#running = false;
      if (this.#again) {
        this.#again = false;
        this.poke();
      }
    });
    worker.postMessage({ id: this.#nextId++ });
  }
}
