import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  ASK,
  Checks,
  CREATE_COLLECTION,
  failureOf,
  failureSummary,
  gql,
  INGEST,
  latencyRows,
  measureCapacity,
  metricSum,
  PRODUCTION_ENV,
  rssMiB,
  runLoad,
  SEARCH,
  sleep,
  startKbqlChild,
  syntheticDocument,
  syntheticQuery,
  token,
  type DrillReport,
  type LoadRequest,
} from './lib';

export interface LoadDrillOptions {
  /**
   * Requests per second (all kinds together). Default: 80 % of the capacity measured on this machine right before
   * (closed loop, 16 connections, same mix), at most 900 (the P1 HTTP throughput figure).
   */
  rate?: number;
  /** Measured load, after the warm-up. @default 300 (5 minutes) */
  seconds?: number;
  /** Warm-up at the same rate before RSS "before" is taken (JIT, caches, heap growth). @default 10 */
  warmupSeconds?: number;
  /** Documents in the collection before the load. @default 300 */
  documents?: number;
}

/** P1's HTTP throughput figure: search(topK: 10) with JWT, one cached query, autocannon, 10 connections. */
export const P1_SEARCH_RPS = 900;

/** Idle time before each memory reading. */
const SETTLE_MS = 5000;

/** KBQL_CACHE_MEMORY_MB's default: the in-process cache (results, embeddings) may fill up to this during the run. */
const CACHE_MIB = 64;

/**
 * RSS may grow by at most this much over the measured run: the in-process cache filling up (64 MiB) plus
 * max(64 MiB, 25 % of the RSS after warm-up) for heap growth under load. A leak proportional to requests exceeds it.
 */
export function rssBoundMiB(beforeMiB: number): number {
  return CACHE_MIB + Math.max(64, beforeMiB * 0.25);
}

/**
 * Mix: 90 % search, 8 % ask, 2 % ingest. Questions repeat as they do in a real knowledge base: half come from 20
 * popular ones, half from a long tail of 5,000 (so the result cache helps, but not always). Ingestion writes into
 * its own collection (one changed document per request, replacing one of 100 ids: the size stays bounded), so
 * the searched collection's cached results stay valid, as with a team that searches one collection while another
 * is being loaded.
 */
export function mixedRequest(i: number): LoadRequest {
  const slot = i % 50;
  if (slot === 0) {
    const n = Math.floor(i / 50);
    const doc = syntheticDocument(10_000 + (n % 100), 1 + (Math.floor(n / 100) % 5));
    return { kind: 'ingest', query: INGEST, variables: { c: 'drill-ingest', docs: [doc] } };
  }
  const popular = (i * 2654435761) % 2 === 0;
  const q = syntheticQuery(popular ? i % 20 : 1000 + ((i * 7) % 5000));
  if (slot <= 4) return { kind: 'ask', query: ASK, variables: { c: 'drill', q: `What is said about ${q}?` } };
  return { kind: 'search', query: SEARCH, variables: { c: 'drill', q } };
}

/**
 * Drill 1 — load: kbql as deployed (production mode, JWT, rate limiting, embedded store, in its own process) under
 * a fixed rate of mixed search / ask / ingest. Passes with 0 failed requests, none backlogged, and RSS growth
 * within {@link rssBoundMiB}.
 */
export async function loadDrill(options: LoadDrillOptions = {}): Promise<DrillReport> {
  const seconds = options.seconds ?? 300;
  const warmupSeconds = options.warmupSeconds ?? 10;
  const documents = options.documents ?? 300;
  const checks = new Checks();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-drill-load-'));
  const auth = token('WRITER');
  const kbql = await startKbqlChild({ ...PRODUCTION_ENV, KBQL_DATA_DIR: dataDir });
  try {
    for (const name of ['drill', 'drill-ingest']) {
      const created = await gql(kbql.url, CREATE_COLLECTION, { name }, { token: auth });
      checks.that(failureOf(created) === null, `create collection ${name}: ${failureOf(created)}`);
    }
    for (let i = 0; i < documents; i += 50) {
      const docs = Array.from({ length: Math.min(50, documents - i) }, (_, j) => syntheticDocument(i + j));
      const seeded = await gql(kbql.url, INGEST, { c: 'drill', docs }, { token: auth, timeoutMs: 60_000 });
      checks.that(failureOf(seeded) === null && seeded.body?.data?.ingestDocuments?.failed === 0, `seed batch ${i}: ${failureOf(seeded)}`);
    }
    // Capacity here and now (the same mix, closed loop), then the fixed rate: near it, never above P1's 900 req/s.
    const capacity = options.rate
      ? null
      : await measureCapacity({ url: kbql.url, token: auth, connections: 16, durationMs: 5000, next: (i) => mixedRequest(i + 1_000_000) });
    checks.that(
      !capacity || capacity.samples.every((s) => !s.failure),
      `calibration failures: ${capacity && failureSummary(capacity.samples)}`,
    );
    const rate = Math.max(1, Math.round(options.rate ?? Math.min(P1_SEARCH_RPS, capacity!.rps * 0.8)));
    const warm = await runLoad({ url: kbql.url, token: auth, rate, durationMs: warmupSeconds * 1000, next: mixedRequest });
    const metricsUrl = kbql.url.replace(/\/graphql$/, '/metrics');
    const heapMiB = async () =>
      metricSum(await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text(), 'kbql_nodejs_heap_size_used_bytes') /
      2 ** 20;
    // Idle a few seconds before each reading, so V8's idle-time GC runs and the figures compare like with like.
    await sleep(SETTLE_MS);
    const rssBefore = rssMiB(kbql.child.pid!);
    const heapBefore = await heapMiB();
    let rssPeak = rssBefore;
    const rssSamples: number[] = [];
    const sampler = setInterval(() => {
      try {
        rssSamples.push(rssMiB(kbql.child.pid!));
        rssPeak = Math.max(rssPeak, rssSamples.at(-1)!);
      } catch {
        // the process is gone: the checks below report it
      }
    }, 1000);
    const load = await runLoad({ url: kbql.url, token: auth, rate, durationMs: seconds * 1000, next: (i) => mixedRequest(i + warm.sent) });
    clearInterval(sampler);
    await sleep(SETTLE_MS);
    const rssAfter = rssMiB(kbql.child.pid!);
    const heapAfter = await heapMiB();
    const achieved = load.sent / (load.elapsedMs / 1000);
    const failed = load.samples.filter((s) => s.failure).length;
    checks.that(
      warm.samples.every((s) => !s.failure),
      `warm-up failures: ${failureSummary(warm.samples)}`,
    );
    checks.that(failed === 0, `${failed} failed requests: ${failureSummary(load.samples)}`);
    checks.that(load.backlogged === 0, `${load.backlogged} requests could not be sent (more than 2048 in flight)`);
    checks.that(achieved >= rate * 0.95, `achieved ${achieved.toFixed(0)} req/s of ${rate}`);
    const bound = rssBoundMiB(rssBefore);
    checks.that(rssAfter - rssBefore <= bound, `RSS grew ${(rssAfter - rssBefore).toFixed(0)} MiB (bound ${bound.toFixed(0)} MiB)`);
    const rows: (string | number)[][] = latencyRows(load.samples);
    rows.push([
      'rate req/s',
      `fixed ${rate}`,
      `achieved ${achieved.toFixed(0)}`,
      capacity ? `capacity ${capacity.rps.toFixed(0)}` : 'capacity not measured',
      `P1 ${P1_SEARCH_RPS}`,
      `backlogged ${load.backlogged}`,
    ]);
    const rssMid = rssSamples[Math.floor(rssSamples.length / 2)] ?? rssBefore;
    rows.push([
      'V8 heap used MiB',
      `before ${heapBefore.toFixed(0)}`,
      '',
      `after ${heapAfter.toFixed(0)}`,
      `growth ${(heapAfter - heapBefore).toFixed(0)}`,
      '',
    ]);
    rows.push([
      'RSS MiB',
      `before ${rssBefore.toFixed(0)}`,
      `mid-run ${rssMid.toFixed(0)}`,
      `after ${rssAfter.toFixed(0)} (peak ${rssPeak.toFixed(0)})`,
      `growth ${(rssAfter - rssBefore).toFixed(0)}`,
      `bound ${bound.toFixed(0)}`,
    ]);
    return {
      name: 'load',
      title: `Drill 1 — load: ${seconds} s of mixed search/ask/ingest (90/8/2 %, half of the questions from 20 popular ones) at ${rate} req/s after a ${warmupSeconds} s warm-up; kbql in production mode (JWT, rate limit, embedded store, ${documents} documents), own process, loopback, ${os.cpus().length} cores`,
      header: ['kind', 'requests', 'failed', 'p50 ms', 'p99 ms', 'max ms'],
      rows,
      failures: checks.failures,
    };
  } finally {
    await kbql.kill();
    await rm(dataDir, { recursive: true, force: true });
  }
}
