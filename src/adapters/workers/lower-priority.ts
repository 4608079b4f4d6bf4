import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the scheduling priority of the calling worker thread (Linux: a thread has its own nice value, found through
 * /proc/thread-self), so that when every core is busy with parsing, chunking or embedding, the event loop thread
 * still runs first and requests keep their latency. Elsewhere, or without permission, nothing changes.
 * @param niceness 0 (normal) to 19 (lowest). @default 10
 */
export function lowerThreadPriority(niceness = 10): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, niceness);
    return true;
  } catch {
    return false;
  }
}
