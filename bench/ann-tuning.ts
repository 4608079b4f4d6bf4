import { existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Index, MetricKind, ScalarKind } from 'usearch';
import { VectorIndex } from '../src/adapters/embedded/vector-index';
import { HashEmbedder } from '../src/adapters/embedders/hash.embedder';
import { loadScifact, percentile, printTable } from './shared-data';
import { benchCacheDir, cachedVectors, passages } from './vector-data';

/**
 * The measurements behind the ANN index's defaults (docs/ann-index.md): usearch HNSW over the vector bench's
 * 100,000 kbql-hash-v1 SciFact passages, per quantisation and connectivity: build time, file size, and per search
 * expansion and candidate count (re-ranked exactly), p50 latency and recall@10 against the exact index.
 * Not part of `npm run bench` (it builds several indexes: minutes).
 *
 *   node dist/bench/ann-tuning.js [n=100000] [quantisations=f16,i8] [connectivities=16,32] [threads=2]
 */
const N = Number(process.argv[2] ?? 100_000);
const QUANTS = (process.argv[3] ?? 'f16,i8').split(',') as ScalarKind[];
const CONNECTIVITIES = (process.argv[4] ?? '16,32').split(',').map(Number);
const THREADS = Number(process.argv[5] ?? 2);
const K = 10;
const QUERIES = 100;

async function main(): Promise<void> {
  const embedder = new HashEmbedder();
  const d = embedder.info.dimensions;
  const all = await cachedVectors(embedder, passages(10).slice(0, 100_000), 'scifact-passages');
  const data = all.slice(0, N * d);
  const claims = loadScifact()
    .queries.slice(0, QUERIES)
    .map((q) => q.text);
  const queries = await cachedVectors(embedder, claims, 'scifact-claims-100');
  const exact = new VectorIndex(d, N);
  for (let r = 0; r < N; r++) exact.add(r, `c${String(r).padStart(7, '0')}`, data.subarray(r * d, (r + 1) * d));
  const q = (i: number) => queries.slice(i * d, (i + 1) * d);
  const truth = Array.from({ length: QUERIES }, (_, i) => new Set(exact.search(q(i), K).map((m) => m.rowId)));
  const keys = new BigUint64Array(N);
  for (let r = 0; r < N; r++) keys[r] = BigInt(r);

  const rows: (string | number)[][] = [];
  for (const quantization of QUANTS) {
    for (const connectivity of CONNECTIVITIES) {
      const file = path.join(benchCacheDir(), `kbql-ann-tuning-${N}-${quantization}-m${connectivity}.usearch`);
      let buildS = NaN;
      if (!existsSync(file)) {
        const index = new Index({
          dimensions: d,
          metric: MetricKind.Cos,
          quantization,
          connectivity,
          expansion_add: 128,
          expansion_search: 64,
          multi: false,
        });
        const started = performance.now();
        for (let at = 0; at < N; at += 10_000) {
          const end = Math.min(N, at + 10_000);
          index.add(keys.slice(at, end), data.slice(at * d, end * d), THREADS);
        }
        buildS = (performance.now() - started) / 1000;
        index.save(file);
      }
      for (const expansion of [32, 64, 128, 256]) {
        const index = new Index({
          dimensions: d,
          metric: MetricKind.Cos,
          quantization,
          connectivity,
          expansion_add: 128,
          expansion_search: expansion,
          multi: false,
        });
        index.load(file);
        for (const candidates of [10, 20, 40, 80]) {
          const ms: number[] = [];
          let hits = 0;
          for (let i = 0; i < QUERIES; i++) {
            const query = q(i);
            const started = performance.now();
            const found = index.search(query, candidates, 1);
            const rowIds = Array.from(found.keys.subarray(0, Math.min(candidates, found.keys.length)), Number);
            const scores = exact.scoreRows(query, rowIds);
            const top = rowIds
              .map((rowId, j) => ({ rowId, score: scores[j] ?? -Infinity }))
              .sort((a, b) => b.score - a.score)
              .slice(0, K);
            ms.push(performance.now() - started);
            hits += top.filter((m) => truth[i]!.has(m.rowId)).length;
          }
          rows.push([
            quantization,
            connectivity,
            Number.isNaN(buildS) ? 'cached' : buildS.toFixed(0),
            (statSync(file).size / 1e6).toFixed(0),
            expansion,
            candidates,
            percentile(ms, 50),
            percentile(ms, 95),
            (hits / (QUERIES * K)).toFixed(3),
          ]);
        }
      }
    }
  }
  printTable(
    `ANN tuning: usearch HNSW over ${N.toLocaleString('en-US')} kbql-hash-v1 SciFact passages (${d} dims), ${QUERIES} claims, top-${K} re-ranked exactly; ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`,
    ['quant', 'M', 'build s', 'file MB', 'ef', 'candidates', 'p50 ms', 'p95 ms', 'recall@10'],
    rows,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
