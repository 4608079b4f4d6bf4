import { SingleBar } from 'cli-progress';

/** The payload of every progress-bar update. */
export interface BarCounts {
  rate: string;
  indexed: number;
  unchanged: number;
  failed: number;
}

/**
 * The `kbql ingest` progress bar on stderr (stdout stays for the summary and --json), or null when not shown.
 * Shared by the synchronous path (per batch) and the job path (per ingestionProgress event).
 */
export function createBar(show: boolean): SingleBar | null {
  if (!show) return null;
  return new SingleBar({
    stream: process.stderr,
    format: 'ingest [{bar}] {value}/{total} docs | {rate} docs/s | {indexed} indexed, {unchanged} unchanged, {failed} failed',
    barsize: 30,
    hideCursor: true,
    noTTYOutput: !process.stderr.isTTY,
    notTTYSchedule: 1000,
  });
}
