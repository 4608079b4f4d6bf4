import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OpenAIEmbedder } from '../../src/adapters/embedders/openai.embedder';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { OpenAiStub } from '../../test/helpers/openai-stub';
import {
  ASK,
  Checks,
  CREATE_COLLECTION,
  failureOf,
  gql,
  INGEST,
  percentile,
  PRODUCTION_ENV,
  SEARCH,
  sleep,
  syntheticDocument,
  syntheticQuery,
  token,
  type DrillReport,
  type GqlResult,
} from './lib';

export interface ProviderDrillOptions {
  /** Deadline of one embedding call. @default 1000 */
  timeoutMs?: number;
  /** How long the open circuit fails fast before a trial call. @default 2000 */
  halfOpenAfterMs?: number;
}

/**
 * Drill 3 — the embedding provider (an OpenAI-compatible stub server) fails: first with HTTP 500s, later by not
 * answering at all. kbql (in process, over HTTP, production mode, caches off so every search needs the provider)
 * retries with backoff, then opens its circuit breaker and answers UPSTREAM_UNAVAILABLE at once without calling
 * the provider; when the stub heals, the next trial call closes the circuit and searches succeed again.
 */
export async function providerDrill(options: ProviderDrillOptions = {}): Promise<DrillReport> {
  const timeoutMs = options.timeoutMs ?? 1000;
  const halfOpenAfterMs = options.halfOpenAfterMs ?? 2000;
  const retries = 2;
  const threshold = 3;
  const checks = new Checks();
  const stub = await OpenAiStub.start({ dimensions: 16 });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-drill-provider-'));
  const embedder = new OpenAIEmbedder({
    baseURL: stub.baseUrl,
    model: 'stub-embed',
    dimensions: 16,
    timeoutMs,
    maxRetries: retries,
    resilience: { retryInitialDelayMs: 100, retryMaxDelayMs: 1000, breakerThreshold: threshold, breakerHalfOpenAfterMs: halfOpenAfterMs },
  });
  const config = loadConfig({
    ...PRODUCTION_ENV,
    KBQL_DATA_DIR: dataDir,
    // Every search needs the provider: no embedding or result cache.
    KBQL_CACHE_EMBEDDING_TTL_SECONDS: '0',
    KBQL_CACHE_RESULT_TTL_SECONDS: '0',
    KBQL_EMBEDDING_BATCH_WINDOW_MS: '0',
  });
  const app = await createApp(config, { embedder });
  const url = `${await app.listen(0, '127.0.0.1')}/graphql`;
  const auth = token('WRITER');
  const rows: (string | number)[][] = [];
  try {
    checks.that(failureOf(await gql(url, CREATE_COLLECTION, { name: 'drill' }, { token: auth })) === null, 'create collection');
    const seeded = await gql(
      url,
      INGEST,
      { c: 'drill', docs: Array.from({ length: 20 }, (_, i) => syntheticDocument(i)) },
      { token: auth },
    );
    checks.that(seeded.body?.data?.ingestDocuments?.indexed === 20, `seed: ${failureOf(seeded)}`);

    /** Sends `n` requests one after another; one table row; returns the outcomes. */
    const phase = async (label: string, n: number, kind: 'search' | 'ask' = 'search'): Promise<GqlResult[]> => {
      const callsBefore = stub.count('embeddings');
      const results: GqlResult[] = [];
      for (let i = 0; i < n; i++) {
        const q = syntheticQuery(rows.length * 100 + i);
        results.push(await gql(url, kind === 'search' ? SEARCH : ASK, { c: 'drill', q }, { token: auth, timeoutMs: 30_000 }));
      }
      const outcomes = new Map<string, number>();
      for (const r of results) outcomes.set(failureOf(r) ?? 'ok', (outcomes.get(failureOf(r) ?? 'ok') ?? 0) + 1);
      const ms = results.map((r) => r.ms);
      rows.push([
        label,
        `${n} ${kind}`,
        [...outcomes].map(([k, v]) => `${k}×${v}`).join(' '),
        stub.count('embeddings') - callsBefore,
        percentile(ms, 50),
        Math.max(...ms),
        embedder.circuitState,
      ]);
      return results;
    };
    const codes = (results: GqlResult[]) => results.map((r) => failureOf(r));
    const circuitOpen = (r: GqlResult) => r.body?.errors?.[0]?.extensions?.['circuit'] === 'open';

    const healthy = await phase('healthy', 5);
    checks.that(
      codes(healthy).every((c) => c === null),
      'healthy searches succeed',
    );

    // 1. HTTP 500 from now on: each call retries (1 + 2 attempts, backoff 100 ms then 200 ms), `threshold` failed
    //    calls open the circuit; after that no call reaches the provider.
    stub.failNext(500, 100_000, { routes: ['embeddings'] });
    let calls = stub.count('embeddings');
    const failing = await phase(`HTTP 500: first ${threshold} calls (retried)`, threshold);
    checks.that(
      codes(failing).every((c) => c === 'UPSTREAM_UNAVAILABLE'),
      `500s → UPSTREAM_UNAVAILABLE: ${codes(failing).join(',')}`,
    );
    checks.that(
      stub.count('embeddings') - calls === threshold * (1 + retries),
      `each failed call made ${1 + retries} attempts (got ${stub.count('embeddings') - calls})`,
    );
    checks.that(embedder.circuitState === 'open', 'the circuit opened');
    calls = stub.count('embeddings');
    const fast = await phase('HTTP 500: circuit open', 10);
    const fastAsk = await phase('HTTP 500: circuit open', 3, 'ask');
    checks.that(
      [...fast, ...fastAsk].every((r) => failureOf(r) === 'UPSTREAM_UNAVAILABLE' && circuitOpen(r)),
      'open circuit → UPSTREAM_UNAVAILABLE (circuit: open) for search and ask',
    );
    checks.that(stub.count('embeddings') === calls, 'no provider call while the circuit is open');
    checks.that(
      percentile(
        fast.map((r) => r.ms),
        50,
      ) <
        percentile(
          failing.map((r) => r.ms),
          50,
        ),
      'failing fast is faster than failing after retries',
    );

    // 2. The stub heals: after the half-open delay the trial call succeeds and the circuit closes.
    stub.reset();
    await sleep(halfOpenAfterMs + 100);
    const healed = await phase('healed (after half-open delay)', 5);
    checks.that(
      codes(healed).every((c) => c === null),
      `searches succeed again: ${codes(healed).join(',')}`,
    );
    checks.that(embedder.circuitState === 'closed', 'the circuit closed');

    // 3. The provider hangs: each call fails at its deadline (UPSTREAM_TIMEOUT); the timeouts open the circuit too.
    stub.hangNext(100_000, { routes: ['embeddings'] });
    const hanging = await phase(`no answer: first ${threshold} calls (deadline ${timeoutMs} ms)`, threshold);
    checks.that(
      codes(hanging).every((c) => c === 'UPSTREAM_TIMEOUT'),
      `hangs → UPSTREAM_TIMEOUT: ${codes(hanging).join(',')}`,
    );
    calls = stub.count('embeddings');
    const fast2 = await phase('no answer: circuit open', 10);
    checks.that(
      fast2.every((r) => failureOf(r) === 'UPSTREAM_UNAVAILABLE' && circuitOpen(r)),
      'open circuit after timeouts → UPSTREAM_UNAVAILABLE',
    );
    checks.that(stub.count('embeddings') === calls, 'no provider call while the circuit is open');

    stub.reset();
    await sleep(halfOpenAfterMs + 100);
    const healed2 = await phase('healed again', 5);
    checks.that(
      codes(healed2).every((c) => c === null),
      'searches succeed after the second recovery',
    );
    checks.that(embedder.circuitState === 'closed', 'the circuit closed again');

    return {
      name: 'provider',
      title: `Drill 3 — embedding provider (OpenAI-compatible stub) failing: retries ${retries} with exponential backoff from 100 ms, breaker opens after ${threshold} failed calls, half-open after ${halfOpenAfterMs} ms, call deadline ${timeoutMs} ms; kbql in process over HTTP, production mode, caches off`,
      header: ['phase', 'requests', 'outcomes', 'provider calls', 'p50 ms', 'max ms', 'circuit after'],
      rows,
      failures: checks.failures,
    };
  } finally {
    await app.stop();
    await stub.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
