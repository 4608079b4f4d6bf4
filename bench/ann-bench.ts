import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Index, MetricKind, ScalarKind } from 'usearch';
import { AnnIndex, type AnnIndexOptions, type AnnOpenResult } from '../src/adapters/embedded/ann-index';
import { sidecarPath } from '../src/adapters/embedded/ann-file';
import { VectorIndex, type VectorMatch } from '../src/adapters/embedded/vector-index';
import { mulberry32 } from '../test/helpers/fixtures';
import { percentile } from './shared-data';
import { benchCacheDir } from './vector-data';

/**
 * The ANN parts of the vector bench (5): build or load a cached index file, cold start (fill the exact copy, open),
 * filtered search, the exact-scan threshold, event-loop delay while indexing, and the 1M-chunk child processes.
 */
export const K = 10;
export const WARMUP = 3;
export const chunkIdOf = (rowId: number): string => `chunk-${String(rowId).padStart(7, '0')}`;

/** Feeds rows to an index: `add(rowId, vector)` for each. */
export type RowSource = (add: (rowId: number, vector: Float32Array) => void) => void;

export interface AnnOpened {
  ann: AnnIndex;
  /** Seconds the build took in this run (null when the cached file was loaded). */
  buildS: number | null;
  buildThreads: number;
  fillMs: number;
  open: AnnOpenResult;
  path: string;
  fileBytes: number;
}

/** The cached index file for `label` (the index itself refuses a stale one by its fingerprint and checksums). */
export function annPath(label: string): string {
  return path.join(benchCacheDir(), `kbql-bench-ann-${label}.usearch`);
}

const BUILD_THREADS = 2;
/** The bench's data never changes: one source version, as a store's collection version after its last write. */
export const SOURCE_VERSION = 1;

function makeAnn(label: string, rows: number, dimensions: number, embedder: string, options: Partial<AnnIndexOptions>): AnnIndex {
  return new AnnIndex({
    dimensions,
    path: annPath(label),
    embedder,
    initialCapacity: rows,
    onError: (e) => console.error(`ANN ${label}: ${e.message}`),
    ...options,
  });
}

/**
 * Builds the cached index file when it is missing or stale (2 builder threads, in a throwaway index); the seconds
 * it took, or null when the file was good.
 */
export async function ensureAnnFile(
  label: string,
  rows: number,
  dimensions: number,
  embedder: string,
  source: RowSource,
  options: Partial<AnnIndexOptions> = {},
): Promise<number | null> {
  const probe = makeAnn(label, rows, dimensions, embedder, { ...options, buildThreads: BUILD_THREADS, batchRows: 4096, saveIntervalMs: 0 });
  let first: Float32Array | null = null;
  source((rowId, v) => {
    first ??= v.slice();
    probe.add(rowId, chunkIdOf(rowId), v);
  });
  const started = performance.now();
  const opened = await probe.open({ sourceVersion: SOURCE_VERSION });
  let buildS: number | null = null;
  if (opened.status !== 'loaded' || opened.pending > 0 || probe.stats().tombstones > 0) {
    process.stderr.write(`building the ANN index ${label} (${opened.status}: ${opened.detail})\n`);
    await probe.flush();
    buildS = (performance.now() - started) / 1000;
  } else if (opened.verified > 0 && first) {
    // Saved at another source version: re-save (one row rewritten) so that a clean restart can trust it.
    probe.add(0, chunkIdOf(0), first);
    probe.setSourceVersion(SOURCE_VERSION);
    await probe.flush();
  }
  await probe.close({ save: true });
  return buildS;
}

/** An opened ANN index over the rows of `source`, as the store would have it after a restart (the file built first if needed). */
export async function openAnn(
  label: string,
  rows: number,
  dimensions: number,
  embedder: string,
  source: RowSource,
  options: Partial<AnnIndexOptions> = {},
): Promise<AnnOpened> {
  const buildS = await ensureAnnFile(label, rows, dimensions, embedder, source, options);
  const ann = makeAnn(label, rows, dimensions, embedder, options);
  const started = performance.now();
  source((rowId, v) => ann.add(rowId, chunkIdOf(rowId), v));
  const fillMs = performance.now() - started;
  const open = await ann.open({ sourceVersion: SOURCE_VERSION });
  const file = annPath(label);
  return {
    ann,
    buildS,
    buildThreads: BUILD_THREADS,
    fillMs,
    open,
    path: file,
    fileBytes: statSync(file).size + statSync(sidecarPath(file)).size,
  };
}

export interface Timed {
  ms: number[];
  results: number[][];
}

export function timeQueries(queries: Float32Array, d: number, count: number, run: (q: Float32Array) => number[]): Timed {
  const ms: number[] = [];
  const results: number[][] = [];
  for (let i = 0; i < count + WARMUP; i++) {
    const q = queries.subarray(i * d, (i + 1) * d);
    const started = performance.now();
    const got = run(q);
    const took = performance.now() - started;
    if (i < WARMUP) continue;
    ms.push(took);
    results.push(got);
  }
  return { ms, results };
}

export function recallAgainst(truth: readonly (readonly number[])[], results: readonly number[][]): number {
  let hits = 0;
  let total = 0;
  results.forEach((got, i) => {
    const t = new Set(truth[i]);
    hits += got.filter((row) => t.has(row)).length;
    total += t.size;
  });
  return total === 0 ? 1 : hits / total;
}

/**
 * Filtered top-10 at several selectivities (allowed rows drawn uniformly): the exact scan of the allowed rows
 * against the graph with oversampling and refill (forced, whatever the index's thresholds), recall against the exact
 * scan. Picks the exact-filter thresholds.
 */
export function filteredSweep(
  exact: VectorIndex,
  graphOnly: AnnIndex,
  queries: Float32Array,
  d: number,
  count: number,
): (string | number)[][] {
  const n = exact.size;
  const rng = mulberry32(42);
  const rows: (string | number)[][] = [];
  for (const selectivity of [0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005]) {
    const allowed: number[] = [];
    for (let r = 0; r < n; r++) if (rng() < selectivity) allowed.push(r);
    const scan = timeQueries(queries, d, count, (q) => exact.search(q, K, allowed).map((m) => m.rowId));
    const graph = timeQueries(queries, d, count, (q) => graphOnly.search(q, K, allowed).map((m) => m.rowId));
    const full = graph.results.every((r) => r.length === K);
    rows.push([
      `${(selectivity * 100).toString()}%`,
      allowed.length.toLocaleString('en-US'),
      percentile(scan.ms, 50),
      percentile(graph.ms, 50),
      percentile(graph.ms, 95),
      recallAgainst(scan.results, graph.results).toFixed(3),
      full ? 'yes' : 'NO',
    ]);
  }
  return rows;
}

/** Exact scan against the graph on small collections (the first `n` rows of `data`): where the graph starts to pay. */
export async function thresholdSweep(
  data: Float32Array,
  d: number,
  embedder: string,
  queries: Float32Array,
  count: number,
  sizes: number[],
): Promise<(string | number)[][]> {
  const rows: (string | number)[][] = [];
  for (const n of sizes) {
    const step = Math.floor(data.length / d / n);
    const source: RowSource = (add) => {
      for (let r = 0; r < n; r++) add(r, data.subarray(r * step * d, (r * step + 1) * d));
    };
    const exact = new VectorIndex(d, n);
    source((rowId, v) => exact.add(rowId, chunkIdOf(rowId), v));
    const scan = timeQueries(queries, d, count, (q) => exact.search(q, K).map((m) => m.rowId));
    const { ann } = await openAnn(`small-${n}`, n, d, embedder, source, { exactBelowRows: 0 });
    const graph = timeQueries(queries, d, count, (q) => ann.search(q, K).map((m) => m.rowId));
    await ann.close();
    rows.push([
      n.toLocaleString('en-US'),
      percentile(scan.ms, 50),
      percentile(graph.ms, 50),
      recallAgainst(scan.results, graph.results).toFixed(3),
    ]);
  }
  return rows;
}

/**
 * What indexing costs the event loop: usearch `add` called on the event loop (into a writable copy of the saved
 * graph) against the index's builder thread catching up on the same rows, with the event-loop delay measured.
 */
export async function eventLoopCost(opened: AnnOpened, fresh: Float32Array, firstRowId: number, d: number): Promise<(string | number)[][]> {
  const count = fresh.length / d;
  const rows: (string | number)[][] = [];

  const writable = new Index({
    dimensions: d,
    metric: MetricKind.Cos,
    quantization: ScalarKind.I8,
    connectivity: 16,
    expansion_add: 128,
    expansion_search: 128,
    multi: false,
  });
  writable.load(opened.path);
  const keys = BigUint64Array.from({ length: count }, (_, i) => BigInt(firstRowId + i));
  let started = performance.now();
  writable.add(keys, fresh.slice(), 2);
  const blockedMs = performance.now() - started;
  rows.push([`usearch add on the event loop (2 threads)`, count, blockedMs, blockedMs, blockedMs]);

  const histogram = monitorEventLoopDelay({ resolution: 1 });
  const ann = opened.ann;
  histogram.enable();
  started = performance.now();
  for (let i = 0; i < count; i++) ann.add(firstRowId + i, chunkIdOf(firstRowId + i), fresh.subarray(i * d, (i + 1) * d));
  await ann.flush();
  const caughtUpMs = performance.now() - started;
  histogram.disable();
  rows.push([`kbql ANN builder thread (1 thread, nice 10)`, count, caughtUpMs, histogram.percentile(99) / 1e6, histogram.max / 1e6]);
  // Back to the cached file's rows, so that the next run loads it as it was.
  for (let i = 0; i < count; i++) ann.remove(firstRowId + i);
  await ann.flush();
  return rows;
}

// ---------------------------------------------------------------- 1M chunks (child processes)

export interface MillionReport {
  rows: number;
  fillMs: number;
  open: AnnOpenResult;
  fileBytes: number;
  rssAfterOpenMb: number;
  rssAfterQueriesMb: number;
  p50: number;
  p95: number;
  recall: number;
  exactScanMsPerQuery: number;
}

/** Rows of a float32 matrix file, read in chunks (the 1M matrix is 4 GB: never held twice). */
export function fileRows(file: string, d: number, rows: number, chunkRows = 16_384): RowSource {
  return (add) => {
    const fd = openSync(file, 'r');
    try {
      const buffer = new Float32Array(chunkRows * d);
      const bytes = new Uint8Array(buffer.buffer);
      for (let at = 0; at < rows; at += chunkRows) {
        const n = Math.min(chunkRows, rows - at);
        let got = 0;
        while (got < n * d * 4) {
          const r = readSync(fd, bytes, got, n * d * 4 - got, at * d * 4 + got);
          if (r === 0) throw new Error(`${file} ends early`);
          got += r;
        }
        for (let i = 0; i < n; i++) add(at + i, buffer.subarray(i * d, (i + 1) * d));
      }
    } finally {
      closeSync(fd);
    }
  };
}

/** Exact top-k of every query over the file's rows, streamed in slices through the exact index (cached on disk). */
export function streamedTruth(
  file: string,
  d: number,
  rows: number,
  queries: Float32Array,
  count: number,
): { truth: number[][]; msPerQuery: number } {
  const cache = `${file}.truth-${count}.json`;
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, 'utf8')) as { truth: number[][]; msPerQuery: number };
  const best: VectorMatch[][] = Array.from({ length: count }, () => []);
  const slice = 65_536;
  let searchMs = 0;
  let slab = new VectorIndex(d, slice);
  const flush = () => {
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      const q = queries.subarray((i + WARMUP) * d, (i + WARMUP + 1) * d);
      best[i] = [...best[i]!, ...slab.search(q, K)]
        .sort((a, b) => (a.score !== b.score ? b.score - a.score : a.chunkId < b.chunkId ? -1 : 1))
        .slice(0, K);
    }
    searchMs += performance.now() - started;
    slab = new VectorIndex(d, slice);
  };
  fileRows(
    file,
    d,
    rows,
  )((rowId, v) => {
    slab.add(rowId, chunkIdOf(rowId), v);
    if (slab.size === slice) flush();
  });
  if (slab.size > 0) flush();
  const out = { truth: best.map((b) => b.map((m) => m.rowId)), msPerQuery: searchMs / count };
  writeFileSync(cache, JSON.stringify(out));
  return out;
}

/** Runs this bench file again as a child (`--million-build` or `--million-measure`), returning its JSON output. */
export function runChild(script: string, args: string[]): unknown {
  const result = spawnSync(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  if (result.status !== 0) throw new Error(`child ${args.join(' ')} exited with ${result.status}`);
  const out = result.stdout.toString('utf8').trim().split('\n').pop()!;
  return JSON.parse(out);
}
