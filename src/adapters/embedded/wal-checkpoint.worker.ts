/**
 * Worker thread of {@link WalCheckpointer}: its own connection to the database file, which copies committed WAL
 * frames back into the file on request. Messages: `{ id }` in, `{ id, ok, error? }` out.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database((workerData as { filename: string }).filename, { timeout: 5_000 });
parentPort!.on('message', (message: { id: number }) => {
  try {
    // PASSIVE: never waits for, and never blocks, the readers and the writer of the main thread.
    db.pragma('wal_checkpoint(PASSIVE)');
    parentPort!.postMessage({ id: message.id, ok: true });
  } catch (error) {
    parentPort!.postMessage({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) });
  }
});
