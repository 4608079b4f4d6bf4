import os from 'node:os';
import { VectorIndex } from '../src/adapters/embedded/vector-index';
import { HashEmbedder } from '../src/adapters/embedders/hash.embedder';
import { loadScifact, percentile, printTable } from './shared-data';
import { cachedVectors, passages } from './vector-data';

/**
 * (5) Vector top-10 latency and recall@10 against exact search at 10k and 100k chunks of real embedder vectors: the
 * default embedder (kbql-hash-v1, 1,024 dims) over SciFact, cut into overlapping 20-word passages (every passage is
 * real text, no synthetic perturbation), queried with SciFact claims. Rows: a naive exact scan (the reference at 10k;
 * at 100k the exact index, equal to it at 10k, is the reference), kbql's exact index (what the embedded store runs), and the approximate pre-filter evaluated for it: 1,024-bit sign
 * codes (Hamming distance) with exact re-ranking of the best C candidates.
 * The vectors are cached in the OS temp directory (keyed by embedder name and count), so re-runs skip embedding.
 *
 *   node dist/bench/vector-search.bench.js [queries, default 50]
 */

const SIZES = [10_000, 100_000];
const K = 10;
const QUERIES = Number(process.argv[2] ?? 50);
const WARMUP = 3;
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

function timeQueries(queries: Float32Array, d: number, count: number, run: (q: Float32Array) => number[]): { ms: number[]; results: number[][] } {
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

async function main(): Promise<void> {
  const embedder = new HashEmbedder();
  const d = embedder.info.dimensions;
  const texts = passages(10);
  const largest = Math.max(...SIZES);
  if (texts.length < largest) throw new Error(`only ${texts.length} passages; need ${largest}`);
  const all = await cachedVectors(embedder, texts.slice(0, largest), 'scifact-passages');
  const claims = loadScifact().queries.slice(0, QUERIES + WARMUP).map((q) => q.text);
  const queries = await cachedVectors(embedder, claims, 'scifact-claims');

  const rows: (string | number)[][] = [];
  for (const n of SIZES) {
    // The 10k set is every 10th passage of the 100k: spread over the whole corpus, not its first abstracts.
    const step = largest / n;
    const data = new Float32Array(n * d);
    for (let r = 0; r < n; r++) data.set(all.subarray(r * step * d, (r * step + 1) * d), r * d);

    const index = new VectorIndex(d, n);
    for (let r = 0; r < n; r++) index.add(r, `chunk-${String(r).padStart(7, '0')}`, data.subarray(r * d, (r + 1) * d));
    const exact = timeQueries(queries, d, QUERIES, (q) => index.search(q, K).map((m) => m.rowId));
    // The reference: a naive scan where it is affordable; at 100k, the exact index itself (equal at 10k, see its row).
    const naive = n <= 10_000 ? timeQueries(queries, d, QUERIES, (q) => naiveTopK(data, n, d, q, K)) : null;
    const truth = (naive ?? exact).results.map((r) => new Set(r));
    const recall = (results: number[][]) => results.reduce((sum, got, i) => sum + got.filter((row) => truth[i]!.has(row)).length, 0) / (results.length * K);
    const row = (label: string, t: { ms: number[]; results: number[][] }) => [
      n.toLocaleString('en-US'),
      label,
      percentile(t.ms, 50),
      percentile(t.ms, 95),
      recall(t.results).toFixed(3),
    ];
    if (naive) rows.push(row('naive exact scan + full sort (reference)', naive));
    rows.push(row('kbql exact index (embedded store)', exact));

    const codes = new SignCodes(data, n, d);
    for (const candidates of [n / 100, n / 25]) {
      rows.push(row(`sign codes + exact re-rank of ${candidates.toLocaleString('en-US')}`, timeQueries(queries, d, QUERIES, (q) => codes.search(q, K, candidates))));
    }
  }
  printTable(
    `(5) Vector top-${K}: ${QUERIES} SciFact claims against passages embedded by ${embedder.info.name} (${d} dims); ${os.cpus().length} cores, node ${process.version}`,
    ['chunks', 'method', 'p50 ms', 'p95 ms', 'recall@10 vs exact'],
    rows,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
