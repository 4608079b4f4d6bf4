/**
 * The embedded store's exact vector index against a naive brute-force scan (plain loop + full sort), same run,
 * same data: recall@10 (must be 1.000, the index is exact) and per-query latency. Synthetic seeded vectors only.
 *
 *   node dist/bench/vector-recall.bench.js [queries]
 */
import { performance } from 'node:perf_hooks';
import { VectorIndex, normalise } from '../src/adapters/embedded/vector-index';
import { mulberry32 } from '../test/helpers/fixtures';

const DIMENSIONS = 1024;
const SIZES = [10_000, 50_000];
const K = 10;
const QUERIES = Number(process.argv[2] ?? 50);
const WARMUP = 3;

function randomMatrix(rows: number, rng: () => number): Float32Array {
  const m = new Float32Array(rows * DIMENSIONS);
  for (let i = 0; i < m.length; i++) m[i] = rng() * 2 - 1;
  for (let r = 0; r < rows; r++) normalise(m.subarray(r * DIMENSIONS, (r + 1) * DIMENSIONS));
  return m;
}

/** The obvious implementation: score every row with a simple loop, sort everything, take k. */
function naiveTopK(data: Float32Array, rows: number, query: Float32Array, k: number): number[] {
  const scored: { row: number; score: number }[] = [];
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * DIMENSIONS;
    for (let j = 0; j < DIMENSIONS; j++) s += data[base + j]! * query[j]!;
    scored.push({ row: r, score: s });
  }
  scored.sort((a, b) => b.score - a.score);
  return scored.slice(0, k).map((x) => x.row);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function main(): void {
  const rng = mulberry32(1234);
  const rows: string[][] = [];
  for (const n of SIZES) {
    const data = randomMatrix(n, rng);
    const buildStart = performance.now();
    const index = new VectorIndex(DIMENSIONS, n);
    for (let r = 0; r < n; r++) index.add(r, `chunk-${String(r).padStart(8, '0')}`, data.subarray(r * DIMENSIONS, (r + 1) * DIMENSIONS));
    const buildMs = performance.now() - buildStart;
    const queries = randomMatrix(QUERIES + WARMUP, rng);

    const indexMs: number[] = [];
    const naiveMs: number[] = [];
    let hits = 0;
    for (let q = 0; q < QUERIES + WARMUP; q++) {
      const query = queries.subarray(q * DIMENSIONS, (q + 1) * DIMENSIONS);
      let t0 = performance.now();
      const got = index.search(query, K).map((m) => m.rowId);
      const tIndex = performance.now() - t0;
      t0 = performance.now();
      const want = naiveTopK(data, n, query, K);
      const tNaive = performance.now() - t0;
      if (q < WARMUP) continue;
      indexMs.push(tIndex);
      naiveMs.push(tNaive);
      const wanted = new Set(want);
      hits += got.filter((row) => wanted.has(row)).length;
    }
    const recall = hits / (QUERIES * K);
    const p50 = percentile(indexMs, 50);
    const naiveP50 = percentile(naiveMs, 50);
    rows.push([
      n.toLocaleString('en-US'),
      String(DIMENSIONS),
      recall.toFixed(3),
      p50.toFixed(2),
      percentile(indexMs, 95).toFixed(2),
      naiveP50.toFixed(2),
      percentile(naiveMs, 95).toFixed(2),
      `${(naiveP50 / p50).toFixed(1)}×`,
      (buildMs / 1000).toFixed(2),
    ]);
  }
  const header = [
    'N',
    'dims',
    'recall@10',
    'index p50 ms',
    'index p95 ms',
    'naive p50 ms',
    'naive p95 ms',
    'speed-up (p50)',
    'index build s',
  ];
  const lines = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`);
  process.stdout.write(`vector index vs naive scan: ${QUERIES} queries, top-${K}, node ${process.version}\n${lines.join('\n')}\n`);
}

main();
