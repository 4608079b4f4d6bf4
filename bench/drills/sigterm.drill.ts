import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OpenAiStub } from '../../test/helpers/openai-stub';
import {
  Checks,
  CREATE_COLLECTION,
  failureOf,
  gql,
  INGEST,
  percentile,
  PRODUCTION_ENV,
  runLoad,
  SEARCH,
  sleep,
  startKbqlChild,
  syntheticDocument,
  syntheticQuery,
  token,
  type DrillReport,
  type LoadSample,
} from './lib';

export interface SigtermDrillOptions {
  /** Load before SIGTERM, seconds. @default 3 */
  secondsBefore?: number;
  /** Load after SIGTERM (new requests to refuse), seconds. @default 3 */
  secondsAfter?: number;
  /** @default 60 */
  rate?: number;
  /** How long each embedding call takes at the provider, so requests are in flight at SIGTERM. @default 400 */
  providerDelayMs?: number;
}

/** main.js exits 1 if draining has not finished by then (src/main.ts SHUTDOWN_DEADLINE_MS). */
const SHUTDOWN_DEADLINE_MS = 15_000;

/**
 * Drill 5 — SIGTERM under load: kbql (compiled main.js, own process, production mode) serves searches whose
 * embedding call takes `providerDelayMs` at an OpenAI-compatible stub, so requests are in flight when SIGTERM
 * arrives. Every request sent before SIGTERM must complete successfully; requests sent after it must be refused
 * cleanly (connection refused: never a reset mid-request, an error status or a hang); the process exits 0, which
 * main.js only does when the drain finished before its 15 s deadline.
 */
export async function sigtermDrill(options: SigtermDrillOptions = {}): Promise<DrillReport> {
  const before = (options.secondsBefore ?? 3) * 1000;
  const after = (options.secondsAfter ?? 3) * 1000;
  const rate = options.rate ?? 60;
  const delay = options.providerDelayMs ?? 400;
  const checks = new Checks();
  const stub = await OpenAiStub.start({ dimensions: 16 });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-drill-sigterm-'));
  const auth = token('WRITER');
  const kbql = await startKbqlChild({
    ...PRODUCTION_ENV,
    KBQL_LOG_LEVEL: 'info',
    KBQL_DATA_DIR: dataDir,
    KBQL_EMBEDDER: 'openai',
    OPENAI_BASE_URL: stub.baseUrl,
    KBQL_EMBEDDING_MODEL: 'stub-embed',
    KBQL_EMBEDDING_DIMENSIONS: '16',
    // Every search calls the provider.
    KBQL_CACHE_EMBEDDING_TTL_SECONDS: '0',
    KBQL_CACHE_RESULT_TTL_SECONDS: '0',
  });
  try {
    checks.that(failureOf(await gql(kbql.url, CREATE_COLLECTION, { name: 'drill' }, { token: auth })) === null, 'create collection');
    const seeded = await gql(
      kbql.url,
      INGEST,
      { c: 'drill', docs: Array.from({ length: 20 }, (_, i) => syntheticDocument(i)) },
      { token: auth },
    );
    checks.that(seeded.body?.data?.ingestDocuments?.indexed === 20, `seed: ${failureOf(seeded)}`);
    stub.delayNext(delay, 1_000_000, { routes: ['embeddings'] });

    let sigtermAt = Number.POSITIVE_INFINITY;
    let loadStarted = 0;
    const signal = (async () => {
      await sleep(before);
      sigtermAt = performance.now() - loadStarted;
      kbql.child.kill('SIGTERM');
    })();
    loadStarted = performance.now();
    // One connection per request, as a load balancer opens them: a request after the listener closed is refused.
    const load = await runLoad({
      url: kbql.url,
      token: auth,
      rate,
      durationMs: before + after,
      keepAlive: false,
      timeoutMs: SHUTDOWN_DEADLINE_MS + 5000,
      next: (i) => ({ kind: 'search', query: SEARCH, variables: { c: 'drill', q: syntheticQuery(i) } }),
    });
    await signal;
    const exit = await kbql.exited;
    const exitAfterMs = exit.atMs - loadStarted - sigtermAt;

    // Request ids kbql logged (one JSON line per request it handled). Every request kbql handled must have succeeded
    // (in-flight ones included); every request it never handled must have been refused at the TCP level: connection
    // refused, or reset while still waiting in the listen backlog when the listener closed (whatever the client's
    // send time, the server never saw it). Anything else (an error status, a reset mid-request, a timeout) is unclean.
    const handled = new Set([...kbql.stderr().matchAll(/"requestId":"(load-\d+)"/g)].map((m) => m[1]!));
    const clean = (s: LoadSample) =>
      handled.has(s.requestId) ? s.failure === null : s.failure === 'ECONNREFUSED' || s.failure === 'ECONNRESET';
    const sentBefore = load.samples.filter((s) => s.at < sigtermAt);
    const sentAfter = load.samples.filter((s) => s.at >= sigtermAt);
    const inFlight = sentBefore.filter((s) => handled.has(s.requestId) && s.at + s.ms > sigtermAt);
    const notHandled = (of: LoadSample[]) => of.filter((s) => !handled.has(s.requestId));
    const ok = (of: LoadSample[]) => of.filter((s) => s.failure === null).length;
    const unclean = load.samples.filter((s) => !clean(s));
    const refusedAfter = notHandled(sentAfter).filter(clean);
    const backlogResets = notHandled(load.samples).filter((s) => s.failure === 'ECONNRESET').length;
    checks.that(
      inFlight.length > 0 && inFlight.every((s) => s.failure === null),
      `requests in flight at SIGTERM: ${inFlight.length}, all completed: ${inFlight.every((s) => s.failure === null)}`,
    );
    if (!checks.that(unclean.length === 0, `${unclean.length} requests failed uncleanly: ${summary(unclean)}`)) {
      // What the server logged (JSON lines on stderr), for the report.
      const errors = kbql
        .stderr()
        .split('\n')
        .filter((l) => /"level":"(error|warn)"|"outcome":"error"/.test(l));
      checks.failures.push(`server log: ${errors.slice(-5).join(' | ').slice(0, 2000)}`);
    }
    checks.that(refusedAfter.length > 0, 'new requests were refused after SIGTERM');
    checks.that(
      exit.code === 0 && exit.signal === null,
      `exit code ${exit.code}, signal ${exit.signal} (0 means drained within the ${SHUTDOWN_DEADLINE_MS / 1000} s deadline)`,
    );
    checks.that(/SIGTERM received, draining/.test(kbql.stdout()), 'main.js announced the drain');
    const ms = (of: LoadSample[]) =>
      of.length
        ? `${percentile(
            of.map((s) => s.ms),
            50,
          ).toFixed(0)} / ${Math.max(...of.map((s) => s.ms)).toFixed(0)}`
        : '-';
    return {
      name: 'sigterm',
      title: `Drill 5 — SIGTERM under load: ${rate} searches/s, each waiting ${delay} ms for the embedding provider (stub); SIGTERM after ${before / 1000} s, load continues ${after / 1000} s; kbql = compiled main.js, own process`,
      header: ['requests', 'count', 'completed OK', 'refused (never handled)', 'unclean', 'p50 / max ms'],
      rows: [
        [
          'sent before SIGTERM',
          sentBefore.length,
          ok(sentBefore),
          notHandled(sentBefore).filter(clean).length,
          sentBefore.filter((s) => !clean(s)).length,
          ms(sentBefore),
        ],
        ['… in flight at SIGTERM', inFlight.length, ok(inFlight), 0, inFlight.filter((s) => !clean(s)).length, ms(inFlight)],
        [
          'sent after SIGTERM',
          sentAfter.length,
          ok(sentAfter),
          refusedAfter.length,
          sentAfter.filter((s) => !clean(s)).length,
          ms(sentAfter),
        ],
        ['(refusals that were backlog resets)', backlogResets, '', backlogResets, '', ''],
        [
          'process exit',
          `code ${exit.code}`,
          `${(exitAfterMs / 1000).toFixed(2)} s after SIGTERM`,
          `deadline ${SHUTDOWN_DEADLINE_MS / 1000} s`,
          '',
          '',
        ],
      ],
      failures: checks.failures,
    };
  } finally {
    await kbql.kill();
    await stub.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function summary(samples: LoadSample[]): string {
  const counts = new Map<string, number>();
  for (const s of samples) counts.set(s.failure ?? 'ok', (counts.get(s.failure ?? 'ok') ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k}×${n}`).join(', ') || 'none';
}
