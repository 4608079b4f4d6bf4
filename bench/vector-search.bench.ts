import { statSync } from 'node:fs';
import os from 'node:os';
import { sidecarPath } from '../src/adapters/embedded/ann-file';
import { AnnIndex, type AnnOpenResult } from '../src/adapters/embedded/ann-index';
import { VectorIndex } from '../src/adapters/embedded/vector-index';
import { HashEmbedder } from '../src/adapters/embedders/hash.embedder';
import {
  K,
  WARMUP,
  annPath,
  SOURCE_VERSION,
  chunkIdOf,
  ensureAnnFile,
  eventLoopCost,
  fileRows,
  filteredSweep,
  openAnn,
  recallAgainst,
  runChild,
  streamedTruth,
  thresholdSweep,
  timeQueries,
  type MillionReport,
  type RowSource,
} from './ann-bench';
import { loadScifact, percentile, printTable } from './shared-data';
import { cachedVectors, cachedVectorsFile, passages } from './vector-data';

/**
 * (5) Vector top-10 latency and recall@10 against exact search of real embedder vectors: the default embedder
 * (kbql-hash-v1, 1,024 dims) over SciFact, cut into overlapping 20-word passages (every passage is real text, no
 * synthetic perturbation), queried with SciFact claims.
 * - 10k and 100k chunks (windows every 10 words; the 10k set is every 10th of the 100k): a naive exact scan (the
 *   reference at 10k; at 100k the exact index, equal to it at 10k, is the reference), kbql's exact index, the
 *   approximate pre-filter evaluated for it earlier (1,024-bit sign codes with exact re-ranking), and kbql's ANN index
 *   (usearch HNSW, candidates re-ranked exactly).
 * - The ANN index's life cycle (build, file, cold start: filling the exact copy and opening the saved graph), its
 *   filtered search against an exact scan of the allowed rows, the collection size where the graph starts to pay, and
 *   the event-loop cost of indexing.
 * - 1,000,000 chunks: every 20-word window of every abstract, starting at every word (1,013,955 windows; the first
 *   million), so the same passages at stride 1 instead of 10: real text, heavy overlap. Built once (in a child
 *   process, 2 builder threads; tens of minutes) and cached; measured in a fresh child process (cold start and RSS).
 * Vectors, built index files and the 1M ground truth are cached in the OS temp directory, so re-runs skip that work.
 *
 *   node dist/bench/vector-search.bench.js [queries, default 50] [--no-million]
 */

const SIZES = [10_000, 100_000];
const MILLION = 1_000_000;
const args = process.argv.slice(2);
const QUERIES = Number(args.find((a) => /^\d+$/.test(a)) ?? 50);
const SMALL_SIZES = [1_000, 2_000, 5_000, 10_000];
const ANN_LABEL = 'kbql ANN index (HNSW i8, M16, ef max(128, n/1000), 20 candidates re-ranked)';

/** The obvious exact search: score every row, sort everything, take k. */
function naiveTopK(data: Float32Array, rows: number, d: number, query: Float32Array, k: number): number[] {
  const scores = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * d;
    for (let j = 0; j < d; j++) s += data[base + j]! * query[j]!;
    scores[r] = s;
  }
  const order = Array.from({ length: rows }, (_, i) => i);
  order.sort((a, b) => scores[b]! - scores[a]!);
  return order.slice(0, k);
}

/** Sign codes (1 bit per dimension, of the vector minus the corpus mean) and Hamming scan + exact re-rank. */
class SignCodes {
  readonly words: number;
  readonly codes: Int32Array;
  readonly mean: Float32Array;
  constructor(
    private readonly data: Float32Array,
    private readonly rows: number,
    private readonly d: number,
  ) {
    this.words = d / 32;
    this.mean = new Float32Array(d);
    for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) this.mean[j]! += data[r * d + j]! / rows;
    this.codes = new Int32Array(rows * this.words);
    for (let r = 0; r < rows; r++) this.encodeInto(data, r * d, this.codes, r * this.words);
  }

  private encodeInto(v: Float32Array, offset: number, out: Int32Array, at: number): void {
    for (let j = 0; j < this.d; j++) if (v[offset + j]! > this.mean[j]!) out[at + (j >> 5)]! |= 1 << (j & 31);
  }

  search(query: Float32Array, k: number, candidates: number): number[] {
    const q = new Int32Array(this.words);
    this.encodeInto(query, 0, q, 0);
    const distance = new Uint16Array(this.rows);
    const histogram = new Int32Array(this.d + 1);
    for (let r = 0; r < this.rows; r++) {
      let h = 0;
      const o = r * this.words;
      for (let w = 0; w < this.words; w++) {
        let x = this.codes[o + w]! ^ q[w]!;
        x -= (x >>> 1) & 0x55555555;
        x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
        h += (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
      }
      distance[r] = h;
      histogram[h]!++;
    }
    let threshold = 0;
    for (let seen = 0; threshold <= this.d && seen + histogram[threshold]! < candidates; threshold++) seen += histogram[threshold]!;
    const picked: { row: number; score: number }[] = [];
    for (let r = 0; r < this.rows; r++) {
      if (distance[r]! > threshold) continue;
      let s = 0;
      const base = r * this.d;
      for (let j = 0; j < this.d; j++) s += this.data[base + j]! * query[j]!;
      picked.push({ row: r, score: s });
    }
    picked.sort((a, b) => b.score - a.score);
    return picked.slice(0, k).map((p) => p.row);
  }
}

async function main(): Promise<void> {
  if (args.includes('--million-build') || args.includes('--million-measure')) return millionChild();
  const embedder = new HashEmbedder();
  const d = embedder.info.dimensions;
  const texts = passages(10);
  const largest = Math.max(...SIZES);
  if (texts.length < largest) throw new Error(`only ${texts.length} passages; need ${largest}`);
  const all = await cachedVectors(embedder, texts.slice(0, largest), 'scifact-passages');
  const claims = loadScifact()
    .queries.slice(0, QUERIES + WARMUP)
    .map((q) => q.text);
  const queries = await cachedVectors(embedder, claims, 'scifact-claims');
  const load = `load ${os.loadavg()[0]!.toFixed(1)}`;

  const rows: (string | number)[][] = [];
  const life: (string | number)[][] = [];
  let filtered: (string | number)[][] = [];
  let eventLoop: (string | number)[][] = [];
  for (const n of SIZES) {
    // The 10k set is every 10th passage of the 100k: spread over the whole corpus, not its first abstracts.
    const step = largest / n;
    const data = new Float32Array(n * d);
    for (let r = 0; r < n; r++) data.set(all.subarray(r * step * d, (r * step + 1) * d), r * d);

    const index = new VectorIndex(d, n);
    for (let r = 0; r < n; r++) index.add(r, chunkIdOf(r), data.subarray(r * d, (r + 1) * d));
    const exact = timeQueries(queries, d, QUERIES, (q) => index.search(q, K).map((m) => m.rowId));
    // The reference: a naive scan where it is affordable; at 100k, the exact index itself (equal at 10k, see its row).
    const naive = n <= 10_000 ? timeQueries(queries, d, QUERIES, (q) => naiveTopK(data, n, d, q, K)) : null;
    const truth = (naive ?? exact).results;
    const row = (label: string, t: { ms: number[]; results: number[][] }) => [
      n.toLocaleString('en-US'),
      label,
      percentile(t.ms, 50),
      percentile(t.ms, 95),
      recallAgainst(truth, t.results).toFixed(3),
    ];
    if (naive) rows.push(row('naive exact scan + full sort (reference)', naive));
    rows.push(row('kbql exact index (embedded store)', exact));

    const codes = new SignCodes(data, n, d);
    for (const candidates of [n / 100, n / 25]) {
      rows.push(
        row(
          `sign codes + exact re-rank of ${candidates.toLocaleString('en-US')}`,
          timeQueries(queries, d, QUERIES, (q) => codes.search(q, K, candidates)),
        ),
      );
    }

    // The filter thresholds are zeroed so that the sweep below measures the graph path at every selectivity.
    const source: RowSource = (add) => {
      for (let r = 0; r < n; r++) add(r, data.subarray(r * d, (r + 1) * d));
    };
    const opened = await openAnn(`scifact-${n}`, n, d, embedder.info.name, source, { filterExactRows: 0, filterExactFraction: 0 });
    if (opened.open.status !== 'loaded') throw new Error(`ANN index not loaded: ${opened.open.status} ${opened.open.detail}`);
    rows.push(
      row(
        ANN_LABEL,
        timeQueries(queries, d, QUERIES, (q) => opened.ann.search(q, K).map((m) => m.rowId)),
      ),
    );
    life.push(
      lifeRow(
        `${n.toLocaleString('en-US')} (clean restart)`,
        opened.buildS,
        opened.buildThreads,
        opened.fileBytes,
        opened.fillMs,
        opened.open,
        process.memoryUsage().rss,
      ),
    );
    if (n === largest) {
      filtered = filteredSweep(index, opened.ann, queries, d, QUERIES);
      const fresh = all.slice(0, 1000 * d).map((x, i) => x + (((i * 2654435761) % 1000) / 1e6 - 5e-4));
      eventLoop = await eventLoopCost(opened, fresh, 10 * n, d);
    }
    await opened.ann.close();
  }
  printTable(
    `(5) Vector top-${K}: ${QUERIES} SciFact claims against passages embedded by ${embedder.info.name} (${d} dims); ${os.cpus().length} cores, node ${process.version}, ${load}`,
    ['chunks', 'method', 'p50 ms', 'p95 ms', 'recall@10 vs exact'],
    rows,
  );

  const small = await thresholdSweep(all, d, embedder.info.name, queries, QUERIES, SMALL_SIZES);
  printTable(
    `(5b) Small collections: exact scan against the ANN graph (the store scans exactly below 5,000 chunks)`,
    ['chunks', 'exact p50 ms', 'ANN p50 ms', 'ANN recall@10'],
    small,
  );
  printTable(
    `(5c) Filtered top-${K} at ${largest.toLocaleString('en-US')} chunks: exact scan of the allowed rows against the graph (1.2 x 20 / selectivity candidates, x4 until ${K} allowed ones, at most 4,096, then exact); the store scans exactly up to 3,000 allowed rows or 1%`,
    ['allowed', 'rows', 'exact scan p50 ms', 'graph p50 ms', 'graph p95 ms', 'graph recall@10', `always ${K} hits`],
    filtered,
  );
  printTable(
    `(5d) Indexing 1,000 new chunks into the ${largest.toLocaleString('en-US')}-chunk graph: event-loop delay`,
    ['where', 'chunks', 'until searchable in the graph, ms', 'event-loop delay p99 ms', 'max ms'],
    eventLoop,
  );

  if (!args.includes('--no-million')) {
    const m = await million(embedder, queries);
    life.push(
      lifeRow(`${MILLION.toLocaleString('en-US')} (clean restart)`, m.buildS, 2, m.fileBytes, m.fillMs, m.open, m.rssAfterOpenMb * 1e6),
    );
    life.push(
      lifeRow(
        `${MILLION.toLocaleString('en-US')} (after a crash)`,
        null,
        2,
        m.afterCrash.fileBytes,
        m.afterCrash.fillMs,
        m.afterCrash.open,
        m.afterCrash.rssAfterOpenMb * 1e6,
      ),
    );
    printTable(
      `(5e) ${MILLION.toLocaleString('en-US')} chunks (20-word windows at every word of SciFact, first million), ${QUERIES} claims, fresh process`,
      ['method', 'p50 ms', 'p95 ms', 'recall@10 vs exact', 'RSS after open MB', 'RSS after queries MB'],
      [
        ['kbql exact index (mean of the streamed reference scan)', m.exactScanMsPerQuery, '', '1.000', '', ''],
        [ANN_LABEL, m.p50, m.p95, m.recall.toFixed(3), Math.round(m.rssAfterOpenMb), Math.round(m.rssAfterQueriesMb)],
      ],
    );
  }
  printTable(
    `(5f) ANN index life cycle: build (2 builder threads), file (graph + sidecar), cold start = fill the exact copy from a float32 file (from SQLite in the store) + open: check the file's checksum (builder thread), map the graph, verify each row's checksum (skipped on a clean restart: same source version)`,
    [
      'chunks',
      'build s',
      'build ms/chunk x threads',
      'file MB',
      'fill s',
      'open s',
      'check s',
      'map ms',
      'verify s (rows)',
      'cold start s',
      'RSS MB',
    ],
    life,
  );
}

function lifeRow(
  label: string,
  buildS: number | null,
  threads: number,
  fileBytes: number,
  fillMs: number,
  open: AnnOpenResult,
  rss: number,
): (string | number)[] {
  const n = Number(label.split(' ')[0]!.replace(/,/g, ''));
  return [
    label,
    buildS === null ? 'cached' : buildS.toFixed(0),
    buildS === null ? '' : ((buildS * 1000 * threads) / n).toFixed(2),
    (fileBytes / 1e6).toFixed(0),
    (fillMs / 1000).toFixed(2),
    (open.ms / 1000).toFixed(2),
    (open.checkMs / 1000).toFixed(2),
    open.mapMs.toFixed(1),
    `${(open.verifyMs / 1000).toFixed(2)} (${open.verified.toLocaleString('en-US')} rows)`,
    ((fillMs + open.ms) / 1000).toFixed(2),
    (rss / 1e6).toFixed(0),
  ];
}

/** The 1M rows: vectors and ground truth here (streamed), build and measurement in child processes. */
async function million(
  embedder: HashEmbedder,
  queries: Float32Array,
): Promise<MillionReport & { afterCrash: MillionReport; buildS: number | null }> {
  const d = embedder.info.dimensions;
  const texts = passages(1);
  if (texts.length < MILLION) throw new Error(`only ${texts.length} windows; need ${MILLION}`);
  const file = await cachedVectorsFile(embedder, texts.slice(0, MILLION), 'scifact-windows-stride1');
  streamedTruth(file, d, MILLION, queries, QUERIES);
  const built = runChild(__filename, ['--million-build', file]) as { buildS: number | null };
  const measured = runChild(__filename, ['--million-measure', file, String(QUERIES), 'clean']) as MillionReport;
  const afterCrash = runChild(__filename, ['--million-measure', file, String(QUERIES), 'crash']) as MillionReport;
  return { ...measured, afterCrash, buildS: built.buildS };
}

/** A child process: builds the 1M index file if needed, or measures a cold start and queries; prints JSON. */
async function millionChild(): Promise<void> {
  const embedder = new HashEmbedder();
  const d = embedder.info.dimensions;
  const file = args[1]!;
  const source = fileRows(file, d, MILLION);
  if (args[0] === '--million-build') {
    const buildS = await ensureAnnFile('scifact-windows-1m', MILLION, d, embedder.info.name, source);
    process.stdout.write(`${JSON.stringify({ buildS })}\n`);
    return;
  }
  const count = Number(args[2]);
  const claims = loadScifact()
    .queries.slice(0, count + WARMUP)
    .map((q) => q.text);
  const queries = await cachedVectors(embedder, claims, 'scifact-claims');
  const { truth, msPerQuery } = streamedTruth(file, d, MILLION, queries, count);
  const path = annPath('scifact-windows-1m');
  const ann = new AnnIndex({ dimensions: d, path, embedder: embedder.info.name, initialCapacity: MILLION });
  const started = performance.now();
  source((rowId, v) => ann.add(rowId, chunkIdOf(rowId), v));
  const fillMs = performance.now() - started;
  // A clean restart opens at the version the file was saved at; after a crash the versions differ: every row is checked.
  const open = await ann.open({ sourceVersion: args[3] === 'clean' ? SOURCE_VERSION : SOURCE_VERSION + 1 });
  if (open.status !== 'loaded') throw new Error(`1M index not loaded: ${open.status} ${open.detail}`);
  const rssAfterOpenMb = process.memoryUsage().rss / 1e6;
  const t = timeQueries(queries, d, count, (q) => ann.search(q, K).map((m) => m.rowId));
  const report: MillionReport = {
    rows: MILLION,
    fillMs,
    open,
    fileBytes: statSync(path).size + statSync(sidecarPath(path)).size,
    rssAfterOpenMb,
    rssAfterQueriesMb: process.memoryUsage().rss / 1e6,
    p50: percentile(t.ms, 50),
    p95: percentile(t.ms, 95),
    recall: recallAgainst(truth, t.results),
    exactScanMsPerQuery: msPerQuery,
  };
  await ann.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
