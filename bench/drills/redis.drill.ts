import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { redisCommand, redisServerAvailable, startOwnRedis } from '../../test/helpers/redis';
import {
  ASK,
  Checks,
  CREATE_COLLECTION,
  failureOf,
  failureSummary,
  getJson,
  gql,
  INGEST,
  latencyRows,
  metricSum,
  PRODUCTION_ENV,
  runLoad,
  SEARCH,
  sleep,
  startKbqlChild,
  syntheticDocument,
  syntheticQuery,
  token,
  waitFor,
  type DrillReport,
  type LoadRequest,
  type LoadSample,
} from './lib';

export interface RedisDrillOptions {
  /** Length of the load; Redis is stopped at 30 % of it and restarted at 55 %. @default 30 */
  seconds?: number;
  /** @default 60 */
  rate?: number;
}

const PREFIX = 'drill2';

/** Keys in Redis matching `pattern` (one EVAL, so the reply is a single integer line). */
async function countKeys(port: number, pattern: string): Promise<number> {
  const reply = await redisCommand(port, `EVAL "return #redis.call('keys', ARGV[1])" 0 ${pattern}`);
  return Number(reply.replace(/^:/, ''));
}

function request(i: number): LoadRequest {
  const slot = i % 20;
  if (slot === 0)
    return {
      kind: 'ingest',
      query: INGEST,
      variables: { c: 'drill-ingest', docs: [syntheticDocument(20_000 + (i % 50), Math.floor(i / 50))] },
    };
  if (slot <= 3) return { kind: 'ask', query: ASK, variables: { c: 'drill', q: `What about ${syntheticQuery(i % 30)}?` } };
  // A few searches never seen before: repeats are answered in process (response cache), these reach Redis's caches.
  if (slot <= 6) return { kind: 'search', query: SEARCH, variables: { c: 'drill', q: syntheticQuery(10_000 + i) } };
  return { kind: 'search', query: SEARCH, variables: { c: 'drill', q: syntheticQuery(i % 30) } };
}

/**
 * Drill 2 — Redis (cache and rate-limit counters of every replica) is stopped during load and started again, empty.
 * Passes with 0 failed requests, /readyz reporting the cache up again, cache hits after the restart and the
 * rate-limit counters back in Redis.
 */
export async function redisDrill(options: RedisDrillOptions = {}): Promise<DrillReport> {
  const header = ['phase', 'requests', 'failed', 'p50 ms', 'p99 ms', 'max ms'];
  const title =
    'Drill 2 — Redis killed and restarted during load (kbql in its own process, production mode, cache and rate limits on a private redis-server)';
  if (!redisServerAvailable()) return { name: 'redis', title, header, rows: [], failures: [], skipped: 'redis-server is not installed' };
  const seconds = options.seconds ?? 30;
  const rate = options.rate ?? 60;
  const checks = new Checks();
  const redis = await startOwnRedis();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-drill-redis-'));
  const auth = token('WRITER');
  const kbql = await startKbqlChild({ ...PRODUCTION_ENV, KBQL_DATA_DIR: dataDir, REDIS_URL: redis.url, KBQL_CACHE_PREFIX: PREFIX });
  const metricsUrl = kbql.url.replace(/\/graphql$/, '/metrics');
  const readyUrl = kbql.url.replace(/\/graphql$/, '/readyz');
  const scrape = async () => (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
  try {
    for (const name of ['drill', 'drill-ingest'])
      checks.that(failureOf(await gql(kbql.url, CREATE_COLLECTION, { name }, { token: auth })) === null, `create ${name}`);
    const seeded = await gql(
      kbql.url,
      INGEST,
      { c: 'drill', docs: Array.from({ length: 100 }, (_, i) => syntheticDocument(i)) },
      { token: auth, timeoutMs: 60_000 },
    );
    checks.that(failureOf(seeded) === null, `seed: ${failureOf(seeded)}`);

    const stopAt = seconds * 0.3 * 1000;
    const restartAt = seconds * 0.55 * 1000;
    const events: { what: string; atMs: number }[] = [];
    const started = performance.now();
    const outage = (async () => {
      await sleep(stopAt);
      await redis.stop();
      events.push({ what: 'redis stopped', atMs: performance.now() - started });
      await sleep(restartAt - stopAt);
      await redis.restart();
      events.push({ what: 'redis restarted (empty)', atMs: performance.now() - started });
    })();
    const before = await scrape();
    const load = await runLoad({ url: kbql.url, token: auth, rate, durationMs: seconds * 1000, next: request });
    await outage;
    const during = await scrape();

    const recovered = await waitFor(async () => (await getJson(readyUrl)).body?.checks?.cache?.status === 'up', 15_000);
    checks.that(recovered, '/readyz reports the cache up again within 15 s of the restart');
    // After the restart: searches the load never sent (the result cache keeps recent answers in process too, so a
    // repeated one would not reach Redis); the first of each is written to the restarted Redis, the repeats hit.
    const afterRestart = await scrape();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) {
        const r = await gql(kbql.url, SEARCH, { c: 'drill', q: syntheticQuery(100 + i) }, { token: auth });
        checks.that(failureOf(r) === null, `search after restart: ${failureOf(r)}`);
      }
    }
    const end = await scrape();
    const hitsAfter =
      metricSum(end, 'kbql_cache_requests_total', { result: 'hit' }) -
      metricSum(afterRestart, 'kbql_cache_requests_total', { result: 'hit' });
    const bypassDuring =
      metricSum(during, 'kbql_cache_requests_total', { result: 'bypass' }) -
      metricSum(before, 'kbql_cache_requests_total', { result: 'bypass' });
    const cacheKeys = await countKeys(redis.port, `${PREFIX}::*`);
    const rateLimitKeys = await countKeys(redis.port, `${PREFIX}:rl*`);

    const failed = load.samples.filter((s) => s.failure).length;
    checks.that(failed === 0, `${failed} failed requests: ${failureSummary(load.samples)}`);
    checks.that(bypassDuring > 0, 'the outage was felt: cache calls bypassed while Redis was down');
    checks.that(hitsAfter > 0, 'cache hits again after the restart');
    checks.that(cacheKeys > 0, 'cache entries written to the restarted Redis');
    checks.that(rateLimitKeys > 0, 'rate-limit counters written to the restarted Redis');

    const stopMs = events[0]?.atMs ?? stopAt;
    const restartMs = events[1]?.atMs ?? restartAt;
    const phase = (from: number, to: number) => (s: LoadSample) => s.at >= from && s.at < to;
    const rows: (string | number)[][] = [
      [
        'before the stop',
        ...latencyRows(load.samples.filter(phase(0, stopMs)))
          .at(-1)!
          .slice(1),
      ],
      [
        'Redis down',
        ...latencyRows(load.samples.filter(phase(stopMs, restartMs)))
          .at(-1)!
          .slice(1),
      ],
      [
        'after the restart',
        ...latencyRows(load.samples.filter(phase(restartMs, Infinity)))
          .at(-1)!
          .slice(1),
      ],
      ['all', ...latencyRows(load.samples).at(-1)!.slice(1)],
      ['not sent (over 256 in flight)', load.backlogged, '', '', '', ''],
      ['cache calls bypassed while down', bypassDuring, '', '', '', ''],
      ['cache hits after restart (30 searches)', hitsAfter, '', '', '', ''],
      ['keys in Redis after: cache / rate limit', `${cacheKeys} / ${rateLimitKeys}`, '', '', '', ''],
      ['/readyz cache check after restart', recovered ? 'up' : 'down', '', '', '', ''],
    ];
    return {
      name: 'redis',
      title: `${title}: ${seconds} s at ${rate} req/s (search/ask/ingest 80/15/5 %), stopped at ${(stopMs / 1000).toFixed(1)} s, restarted at ${(restartMs / 1000).toFixed(1)} s`,
      header,
      rows,
      failures: checks.failures,
    };
  } finally {
    await kbql.kill();
    await redis.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
