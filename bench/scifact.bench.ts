import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import { DEVELOPMENT_PRINCIPAL as caller } from '../src/modules/auth/principal';
import type { SearchMode } from '../src/ports/knowledge-store.port';
import { loadScifact, ndcgAt, percentile, printTable, recallAt } from './shared-data';

/**
 * SciFact (BEIR) end to end through kbql's services: ingest the 5,183 abstracts, then run the training claims
 * that have judgements in each search mode. KEYWORD (BM25) is the baseline every other row is compared with; a
 * k-fold cross-validation then chooses the hybrid weight inside each fold's training part (the honest figure).
 * Options: KBQL_BENCH_QUERIES=N limits the queries; KBQL_HYBRID_ALPHA sets the default hybrid weight;
 * BENCH_ALPHAS=a,b,c the weights cross-validated (default 0, 0.05, 0.1, 0.2, 0.3; 0 is keyword only); BENCH_FOLDS=k (default 5).
 */
async function main(): Promise<void> {
  const data = loadScifact();
  const limit = Number(process.env.KBQL_BENCH_QUERIES ?? data.queries.length);
  const queries = data.queries.slice(0, limit);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-bench-scifact-'));
  const config = loadConfig({ ...process.env, NODE_ENV: 'test', KBQL_LOG_LEVEL: 'error', KBQL_DATA_DIR: dataDir });
  const app = await createApp(config);
  try {
    const { ingestion, query } = app.services;
    await app.services.collections.create({ name: 'scifact' }, caller);

    const batchSize = 250;
    const started = performance.now();
    let chunks = 0;
    for (let i = 0; i < data.corpus.length; i += batchSize) {
      const batch = data.corpus.slice(i, i + batchSize).map((d) => ({
        id: d.id,
        title: d.title,
        // BEIR convention: the title is part of the text that is matched.
        content: `${d.title}\n\n${d.text}`,
        contentType: 'TEXT' as const,
      }));
      const result = await ingestion.ingest('scifact', batch, caller);
      if (result.failed > 0) throw new Error(`ingest failed: ${JSON.stringify(result.results.find((r) => r.status === 'FAILED'))}`);
      chunks += result.results.reduce((sum, r) => sum + (r.chunkCount ?? 0), 0);
    }
    const ingestSeconds = (performance.now() - started) / 1000;
    printTable(
      'SciFact ingest (embedded store, default embedder)',
      ['documents', 'chunks', 'seconds', 'docs/s', 'chunks/s'],
      [[data.corpus.length, chunks, ingestSeconds, data.corpus.length / ingestSeconds, chunks / ingestSeconds]],
    );

    // One pass per mode and alpha; every query's nDCG@10 is kept so the folds below can choose alpha on their own.
    const alphas = (process.env.BENCH_ALPHAS ?? '0,0.05,0.1,0.2,0.3').split(',').filter(Boolean).map(Number);
    const runs: { label: string; mode: SearchMode; alpha?: number }[] = [
      { label: 'KEYWORD (BM25)', mode: 'KEYWORD' },
      { label: 'VECTOR', mode: 'VECTOR' },
      { label: `HYBRID (alpha ${config.defaults.hybridAlpha}, default)`, mode: 'HYBRID' },
      ...alphas.map((a) => ({ label: `HYBRID (alpha ${a})`, mode: 'HYBRID' as const, alpha: a })),
    ];
    const rows: (string | number)[][] = [];
    const perQuery = new Map<string, number[]>();
    let baseline = 0;
    for (const run of runs) {
      const latencies: number[] = [];
      const ndcgs: number[] = [];
      let recall = 0;
      for (const q of queries) {
        const t0 = performance.now();
        const result = await query.search(
          { collection: 'scifact', query: q.text, mode: run.mode, alpha: run.alpha, topK: 30 },
          { access: caller },
        );
        latencies.push(performance.now() - t0);
        const ranked: string[] = [];
        for (const hit of result.hits) if (!ranked.includes(hit.document.externalId)) ranked.push(hit.document.externalId);
        const relevant = data.qrels.get(q.id)!;
        ndcgs.push(ndcgAt(ranked, relevant, 10));
        recall += recallAt(ranked, relevant, 10);
      }
      perQuery.set(run.label, ndcgs);
      const ndcg = mean(ndcgs);
      recall /= queries.length;
      if (run.mode === 'KEYWORD') baseline = ndcg;
      rows.push([run.label, ndcg, recall, ndcg / baseline, percentile(latencies, 50), percentile(latencies, 95)]);
    }
    printTable(
      `SciFact search, ${queries.length} training claims with judgements (document-level, top 10)`,
      ['mode', 'nDCG@10', 'recall@10', 'nDCG vs KEYWORD', 'p50 ms', 'p95 ms'],
      rows,
    );
    printCrossValidation(queries, perQuery, runs.slice(3), Number(process.env.BENCH_FOLDS ?? 5));
  } finally {
    await app.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/**
 * k-fold cross-validation of the fusion weight: queries go to folds by a hash of their id; in each fold alpha is the
 * one with the best mean nDCG@10 on the other folds' queries, and the fold's HYBRID figure is that alpha's on the
 * fold's own queries. KEYWORD and VECTOR have nothing to choose: their fold figures are plain means.
 */
function printCrossValidation(
  queries: readonly { id: string }[],
  perQuery: Map<string, number[]>,
  hybridRuns: readonly { label: string; alpha?: number }[],
  folds: number,
): void {
  if (hybridRuns.length === 0 || folds < 2) return;
  const foldOf = queries.map((q) => createHash('sha256').update(q.id).digest().readUInt32BE(0) % folds);
  const keyword = perQuery.get('KEYWORD (BM25)')!;
  const vector = perQuery.get('VECTOR')!;
  const rows: (string | number)[][] = [];
  const cv: number[] = [];
  for (let f = 0; f < folds; f++) {
    const inFold = (train: boolean) => (xs: readonly number[]) => xs.filter((_, i) => (foldOf[i] === f) !== train);
    let chosen = hybridRuns[0]!;
    for (const run of hybridRuns)
      if (mean(inFold(true)(perQuery.get(run.label)!)) > mean(inFold(true)(perQuery.get(chosen.label)!))) chosen = run;
    const hybrid = inFold(false)(perQuery.get(chosen.label)!);
    for (let i = 0; i < hybrid.length; i++) cv.push(hybrid[i]!);
    const kw = mean(inFold(false)(keyword));
    rows.push([`fold ${f + 1}`, hybrid.length, chosen.alpha ?? '', mean(inFold(false)(vector)), kw, mean(hybrid), mean(hybrid) - kw]);
  }
  rows.push(['all (cross-validated)', cv.length, '', mean(vector), mean(keyword), mean(cv), mean(cv) - mean(keyword)]);
  printTable(
    `SciFact nDCG@10, ${folds}-fold cross-validation of the fusion weight (alpha chosen on the other folds)`,
    ['fold', 'queries', 'alpha', 'VECTOR', 'KEYWORD', 'HYBRID', 'HYBRID − KEYWORD'],
    rows,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
