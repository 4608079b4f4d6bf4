import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import { DEVELOPMENT_PRINCIPAL } from '../src/modules/auth/principal';
import type { DocumentInputArgs } from '../src/modules/ingestion/ingestion.service';
import { loadScifact, printTable } from './shared-data';

/**
 * Ingestion-job throughput with the offline embedder: SciFact documents (`../shared/data/scifact`) through
 * `startIngestion` (job state in SQLite, in-process queue, one document per task) with 1, 2 and 8 workers, against the
 * synchronous `ingestDocuments` path (250 documents per call, bulk store writes) in the same run. In process, no
 * HTTP: the figure is the pipeline's. Each run gets a fresh data dir and app.
 *
 *   node dist/bench/ingestion-jobs.bench.js [documents, default 1000]
 */

const CHUNKING = { chunkSize: 256, chunkOverlap: 32 };

async function withApp<T>(env: Record<string, string>, work: (app: Awaited<ReturnType<typeof createApp>>) => Promise<T>): Promise<T> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-bench-jobs-'));
  const app = await createApp(loadConfig({ NODE_ENV: 'test', KBQL_LOG_LEVEL: 'error', KBQL_DATA_DIR: dataDir, ...env }));
  try {
    await app.services.collections.create({ name: 'bench', chunking: CHUNKING }, DEVELOPMENT_PRINCIPAL);
    return await work(app);
  } finally {
    await app.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function synchronous(docs: readonly DocumentInputArgs[]): Promise<{ seconds: number; indexed: number }> {
  return withApp({}, async (app) => {
    const started = performance.now();
    let indexed = 0;
    for (let i = 0; i < docs.length; i += 250) {
      indexed += (await app.services.ingestion.ingest('bench', docs.slice(i, i + 250), DEVELOPMENT_PRINCIPAL)).indexed;
    }
    return { seconds: (performance.now() - started) / 1000, indexed };
  });
}

async function jobs(docs: readonly DocumentInputArgs[], workers: number): Promise<{ seconds: number; indexed: number }> {
  return withApp({ KBQL_INGEST_CONCURRENCY: String(workers) }, async (app) => {
    const started = performance.now();
    const job = await app.services.jobs.startIngestion('bench', docs, [], DEVELOPMENT_PRINCIPAL);
    // Follow it the way a client does: the progress stream ends with the summary.
    let indexed = 0;
    for await (const item of await app.services.jobs.progress(job.id, DEVELOPMENT_PRINCIPAL)) {
      if (item.kind === 'SUMMARY') indexed = item.job!.indexed;
    }
    return { seconds: (performance.now() - started) / 1000, indexed };
  });
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1000);
  const docs: DocumentInputArgs[] = loadScifact()
    .corpus.slice(0, count)
    .map((d) => ({ id: d.id, title: d.title || null, content: d.text }));
  const sync = await synchronous(docs);
  const one = await jobs(docs, 1);
  const two = await jobs(docs, 2);
  const eight = await jobs(docs, 8);
  const rate = (r: { seconds: number }) => docs.length / r.seconds;
  printTable(
    `Ingestion jobs vs ingestDocuments — ${docs.length} SciFact documents, offline hash embedder, embedded store (${os.cpus().length} cores)`,
    ['path', 'indexed', 'seconds', 'docs/s', 'vs ingestDocuments'],
    [
      ['ingestDocuments (sync, 250 per call)', sync.indexed, sync.seconds, rate(sync), '1.00'],
      ['startIngestion, 1 worker', one.indexed, one.seconds, rate(one), (rate(one) / rate(sync)).toFixed(2)],
      ['startIngestion, 2 workers', two.indexed, two.seconds, rate(two), (rate(two) / rate(sync)).toFixed(2)],
      ['startIngestion, 8 workers', eight.indexed, eight.seconds, rate(eight), (rate(eight) / rate(sync)).toFixed(2)],
    ],
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
