import 'reflect-metadata';
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
 * that have judgements in each search mode. KEYWORD (BM25) is the baseline every other row is compared with.
 * Options: KBQL_BENCH_QUERIES=N limits the queries; KBQL_HYBRID_ALPHA sets the hybrid weight; BENCH_ALPHAS=a,b,c
 * adds a hybrid row per alpha.
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

    const runs: { label: string; mode: SearchMode; alpha?: number }[] = [
      { label: 'KEYWORD (BM25)', mode: 'KEYWORD' },
      { label: 'VECTOR', mode: 'VECTOR' },
      { label: `HYBRID (alpha ${config.defaults.hybridAlpha}, default)`, mode: 'HYBRID' },
      ...(process.env.BENCH_ALPHAS ?? '')
        .split(',')
        .filter(Boolean)
        .map((a) => ({ label: `HYBRID (alpha ${a})`, mode: 'HYBRID' as const, alpha: Number(a) })),
    ];
    const rows: (string | number)[][] = [];
    let baseline = 0;
    for (const run of runs) {
      const latencies: number[] = [];
      let ndcg = 0;
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
        ndcg += ndcgAt(ranked, relevant, 10);
        recall += recallAt(ranked, relevant, 10);
      }
      ndcg /= queries.length;
      recall /= queries.length;
      if (run.mode === 'KEYWORD') baseline = ndcg;
      rows.push([run.label, ndcg, recall, ndcg / baseline, percentile(latencies, 50), percentile(latencies, 95)]);
    }
    printTable(
      `SciFact search, ${queries.length} training claims with judgements (document-level, top 10)`,
      ['mode', 'nDCG@10', 'recall@10', 'nDCG vs KEYWORD', 'p50 ms', 'p95 ms'],
      rows,
    );
  } finally {
    await app.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
