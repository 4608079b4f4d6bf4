import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HashEmbedder } from '../src/adapters/embedders/hash.embedder';
import { createApp, type App } from '../src/app';
import { loadConfig } from '../src/config';
import { createContext } from '../src/app/context';
import type { Embedder } from '../src/ports/embedder.port';
import { graphqlRequest } from '../test/helpers/http';
import { BENCH_REDIS_URL, deleteRedisPrefix, redisReachable } from './bench-redis';
import { seedScifact } from './seed-scifact';
import { loadScifact, percentile, printTable } from './shared-data';

/**
 * (4) Latency of a repeated `ask` over HTTP: the first time (a miss: embed the question, hybrid search over SciFact,
 * synthesise) against the repeats (hits). In-process cache and Redis; for Redis also a hit on a second replica, whose
 * in-process copies are empty (the Redis round trip). The miss uses the local hash embedder, and in one row a
 * provider stub that takes 50 ms per call, like a remote embedding API.
 *
 *   node dist/bench/cache-latency.bench.js [questions, default 40]
 */

const QUESTIONS = Number(process.argv[2] ?? 40);
const DOCUMENTS = 1000;
const REPEATS = 3;
const ASK = `query($q: String!) { ask(collection: "scifact", question: $q) {
  answer abstained citations { marker source { n } } sources { n score chunk { id text } document { id title } } } }`;

class SlowProvider implements Embedder {
  readonly inner = new HashEmbedder();
  readonly info = this.inner.info;
  readonly maxBatchSize = 2048;
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return this.inner.embed(texts);
  }
}

/** In process (`executeOperation`, no HTTP): the server's own work only. */
function inProcess(app: App): (q: string) => Promise<number> {
  let n = 0;
  return async (q) => {
    const started = performance.now();
    const response = await app.apollo.executeOperation(
      { query: ASK, variables: { q } },
      { contextValue: createContext(app.store, `bench-${++n}`) },
    );
    if (response.body.kind !== 'single' || response.body.singleResult.errors) throw new Error('ask failed');
    return performance.now() - started;
  };
}

async function ask(url: string, q: string): Promise<number> {
  const { body, ms } = await graphqlRequest(url, ASK, { q }, { path: '' });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return ms;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-bench-cache-'));
  const base = { NODE_ENV: 'test', KBQL_LOG_LEVEL: 'error', KBQL_DATA_DIR: dataDir, KBQL_RATE_LIMIT: 'false' };
  const apps: App[] = [];
  const prefix = `kbql-bench-latency-${process.pid}`;
  const start = async (env: Record<string, string>, embedder?: Embedder) => {
    const app = await createApp(loadConfig({ ...base, ...env }), embedder ? { embedder } : {});
    apps.push(app);
    return `${await app.listen(0, '127.0.0.1')}/graphql`;
  };
  try {
    const seed = await createApp(loadConfig(base));
    await seedScifact(seed, DOCUMENTS);
    await seed.stop();

    const claims = loadScifact().queries.map((q) => q.text);
    let next = 0;
    const rows: (string | number)[][] = [];
    type Asker = string | ((q: string) => Promise<number>);
    const call = (asker: Asker, q: string) => (typeof asker === 'string' ? ask(asker, q) : asker(q));
    const measure = async (label: string, missUrl: Asker, hitUrl: Asker = missUrl, repeats = REPEATS) => {
      await call(missUrl, 'warm-up: vitamin D and fractures');
      await call(hitUrl, 'warm-up: vitamin D and fractures');
      const misses: number[] = [];
      const hits: number[] = [];
      for (const q of claims.slice(next, next + QUESTIONS)) {
        misses.push(await call(missUrl, q));
        // The result is written to the cache after the response: let it land before the repeats.
        await new Promise((resolve) => setTimeout(resolve, 5));
        for (let r = 0; r < repeats; r++) hits.push(await call(hitUrl, q));
      }
      next += QUESTIONS;
      const missP50 = percentile(misses, 50);
      const hitP50 = percentile(hits, 50);
      rows.push([label, missP50, percentile(misses, 95), hitP50, percentile(hits, 95), `${(hitP50 / missP50).toFixed(3)}×`]);
    };

    const firstUrl = await start({});
    // The floor any request pays here (HTTP on loopback, the client in this process, GraphQL): a trivial query.
    const floor: number[] = [];
    for (let i = 0; i < 50; i++) {
      floor.push((await graphqlRequest(firstUrl, '{ __typename }', undefined, { path: '' })).ms);
    }
    await measure('in-process cache, local hash embedder', firstUrl);
    await measure('same, without HTTP (executeOperation: the server’s own work)', inProcess(apps[0]!));
    await measure('in-process cache, provider stub (50 ms per call)', await start({}, new SlowProvider()));
    if (await redisReachable()) {
      const redis = { REDIS_URL: BENCH_REDIS_URL, KBQL_CACHE_PREFIX: prefix };
      const first = await start(redis);
      await measure('Redis, hit on the same replica (its in-process copy)', first);
      // One repeat only: the replica's later repeats would be served from its own in-process copy.
      await measure('Redis, hit on another replica (Redis round trip)', first, await start(redis), 1);
    }
    printTable(
      `(4) A repeated ask (over HTTP unless said): ${QUESTIONS} SciFact claims, first call (miss) vs ${REPEATS} repeats (hits), ${DOCUMENTS} abstracts; ` +
        `HTTP floor ({ __typename }) p50 ${percentile(floor, 50).toFixed(2)} ms; ${os.cpus().length} cores, node ${process.version}`,
      ['setup', 'miss p50 ms', 'miss p95 ms', 'hit p50 ms', 'hit p95 ms', 'hit / miss (p50)'],
      rows,
    );
  } finally {
    for (const app of apps) await app.stop();
    await rm(dataDir, { recursive: true, force: true });
    if (await redisReachable()) await deleteRedisPrefix(prefix);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
