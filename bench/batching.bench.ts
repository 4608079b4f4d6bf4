import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HashEmbedder } from '../src/adapters/embedders/hash.embedder';
import { createApp, type App } from '../src/app';
import { loadConfig } from '../src/config';
import { createContext } from '../src/app/context';
import { DEVELOPMENT_PRINCIPAL } from '../src/modules/auth/principal';
import type { Embedder } from '../src/ports/embedder.port';
import { graphqlRequest } from '../test/helpers/http';
import { loadScifact, printTable } from './shared-data';

/**
 * (3) Embedding provider calls and wall time for N = 1, 16, 64, 256 concurrent `ask`s, with a provider stub that
 * sleeps 50 ms per call (and returns real vectors). kbql's shared batching window, with the asks started together in
 * process and sent as concurrent HTTP requests, against the baseline of one provider call per ask (the same server
 * with a provider limit of one text per call). Every ask is a different SciFact claim, so no cache answers.
 *
 *   node dist/bench/batching.bench.js
 */

const SIZES = [1, 16, 64, 256];
const DELAY_MS = 50;
const DOCUMENTS = 300;
const ASK = 'query($q: String!) { ask(collection: "scifact", question: $q) { abstained sources { n } } }';

class StubProvider implements Embedder {
  readonly inner = new HashEmbedder();
  readonly info = this.inner.info;
  calls: number[] = [];
  constructor(readonly maxBatchSize: number) {}
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.calls.push(texts.length);
    await new Promise((resolve) => setTimeout(resolve, DELAY_MS));
    return this.inner.embed(texts);
  }
}

type Mode = 'in process' | 'HTTP';

async function run(app: App, url: string, mode: Mode, questions: readonly string[]): Promise<number> {
  const started = performance.now();
  await Promise.all(
    questions.map(async (q, i) => {
      let errors: unknown;
      if (mode === 'in process') {
        const response = await app.apollo.executeOperation(
          { query: ASK, variables: { q } },
          { contextValue: createContext(app.store, `bench-${i}`) },
        );
        errors = response.body.kind === 'single' ? response.body.singleResult.errors : 'not single';
      } else {
        errors = (await graphqlRequest(url, ASK, { q }, { path: '' })).body.errors;
      }
      if (errors) throw new Error(JSON.stringify(errors));
    }),
  );
  return performance.now() - started;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-bench-batching-'));
  const env = { NODE_ENV: 'test', KBQL_LOG_LEVEL: 'error', KBQL_DATA_DIR: dataDir, KBQL_RATE_LIMIT: 'false' };
  try {
    const seed = await createApp(loadConfig(env));
    await seed.services.collections.create({ name: 'scifact' }, DEVELOPMENT_PRINCIPAL);
    const corpus = loadScifact().corpus.slice(0, DOCUMENTS);
    await seed.services.ingestion.ingest(
      'scifact',
      corpus.map((d) => ({ id: d.id, title: d.title, content: `${d.title}\n\n${d.text}`, contentType: 'TEXT' as const })),
      DEVELOPMENT_PRINCIPAL,
    );
    await seed.stop();

    const claims = loadScifact().queries.map((q) => q.text);
    const rows: (string | number)[][] = [];
    const setups: { label: string; mode: Mode; limit: number; windowMs?: number }[] = [
      { label: 'kbql shared window (2 ms), asks started together (in process)', mode: 'in process', limit: 2048 },
      { label: 'kbql shared window (2 ms), concurrent HTTP requests', mode: 'HTTP', limit: 2048 },
      { label: 'kbql shared window (20 ms), concurrent HTTP requests', mode: 'HTTP', limit: 2048, windowMs: 20 },
      { label: 'baseline: one provider call per ask (in process)', mode: 'in process', limit: 1 },
    ];
    const results = new Map<string, (string | number)[]>();
    for (const setup of setups) {
      // A fresh server per setup (empty caches); each N gets its own claims, so nothing is answered from a cache.
      const provider = new StubProvider(setup.limit);
      const app = await createApp(loadConfig({ ...env, KBQL_EMBEDDING_BATCH_WINDOW_MS: String(setup.windowMs ?? 2) }), {
        embedder: provider,
      });
      const url = `${await app.listen(0, '127.0.0.1')}/graphql`;
      try {
        await run(app, url, setup.mode, ['warm-up question about vitamin D']);
        let offset = 0;
        for (const n of SIZES) {
          provider.calls = [];
          const ms = await run(app, url, setup.mode, claims.slice(offset, offset + n));
          offset += n;
          const texts = provider.calls.reduce((a, b) => a + b, 0);
          results.set(`${n}|${setup.label}`, [n, setup.label, provider.calls.length, texts / provider.calls.length, ms]);
        }
      } finally {
        await app.stop();
      }
    }
    for (const n of SIZES) for (const setup of setups) rows.push(results.get(`${n}|${setup.label}`)!);
    printTable(
      `(3) Concurrent asks, embedding provider stub sleeping ${DELAY_MS} ms per call; ${os.cpus().length} cores, node ${process.version}`,
      ['N asks', 'setup', 'provider calls', 'texts per call', 'wall ms'],
      rows,
    );
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
