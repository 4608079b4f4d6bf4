import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import { graphqlRequest } from '../test/helpers/http';
import { BENCH_REDIS_URL, deleteRedisPrefix, redisReachable } from './bench-redis';
import { seedScifact } from './seed-scifact';
import { printTable } from './shared-data';

/**
 * (1) HTTP throughput and latency of `search(topK: 10)`: kbql in production mode (all production plugins: metrics,
 * tracing, request records; result cache, document cache) against a bare Apollo Server 5 (`startStandaloneServer`)
 * answering the same response from memory. autocannon on loopback, 10 connections, each server in its own process.
 * Rows for kbql with its caches switched off show what each one is worth.
 *
 *   node dist/bench/http-throughput.bench.js [seconds per run, default 4]
 */

interface AutocannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as Autocannon;

const SECONDS = Number(process.argv[2] ?? 4);
const CONNECTIONS = 10;
const DOCUMENTS = 500;
const QUERY = `query Search($q: String!) { search(collection: "scifact", query: $q, topK: 10) {
  hits { score vectorScore keywordScore chunk { id index text } document { id externalId title } } } }`;
const VARIABLES = { q: 'vitamin D deficiency and bone fractures in older adults' };
const JWT_SECRET = randomBytes(32).toString('hex');
/** Production as deployed: JWT authentication and rate limiting on (the limit raised so the load is counted, not refused). */
const PRODUCTION = [
  'KBQL_METRICS_PORT=main',
  'KBQL_AUTH_MODE=jwt',
  `KBQL_JWT_SECRET=${JWT_SECRET}`,
  'KBQL_RATE_LIMIT=true',
  'KBQL_RATE_LIMIT_MAX=1000000',
];

/** An HS256 token for a READER of the default tenant (where the seeded collection lives). */
function token(): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'bench', kbql_role: 'READER', kbql_tenant: 'default', iat: now, exp: now + 3600 })}`;
  return `${unsigned}.${createHmac('sha256', JWT_SECRET).update(unsigned).digest('base64url')}`;
}
const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${token()}` };

function startTarget(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  // NODE_ENV=production for both: graphql-js skips its development-only checks, as in a deployment.
  const child = spawn(process.execPath, [path.join(__dirname, 'http-target.js'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (data: Buffer) => {
      out += data.toString();
      const ready = /READY (\S+)/.exec(out);
      if (ready) resolve({ url: ready[1]!, child });
    });
    child.once('exit', (code) => reject(new Error(`target ${args[0]} exited with ${code}`)));
  });
}

async function stopTarget(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function post(url: string): Promise<unknown> {
  return (await graphqlRequest(url, QUERY, VARIABLES, { headers: HEADERS, path: '' })).body;
}

async function load(url: string): Promise<AutocannonResult> {
  const options = {
    url,
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({ query: QUERY, variables: VARIABLES }),
    connections: CONNECTIONS,
  };
  await autocannon({ ...options, duration: 1 }); // warm-up: JIT, caches, connections
  return autocannon({ ...options, duration: SECONDS });
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-bench-http-'));
  const tmpResponse = path.join(dataDir, 'response.json');
  const children: ChildProcess[] = [];
  const prefix = `kbql-bench-http-${process.pid}`;
  try {
    // One data set for every kbql variant: SciFact abstracts in the embedded store.
    const seed = await createApp(loadConfig({ NODE_ENV: 'test', KBQL_LOG_LEVEL: 'error', KBQL_DATA_DIR: dataDir }));
    await seedScifact(seed, DOCUMENTS);
    await seed.stop();

    const redis = await redisReachable();
    const variants: { label: string; args: string[] }[] = [
      { label: 'bare Apollo Server 5, response from memory (baseline)', args: ['apollo', tmpResponse] },
      { label: 'kbql, production (JWT, rate limit, metrics, tracing; caches in process)', args: ['kbql', dataDir, ...PRODUCTION] },
      ...(redis
        ? [
            {
              label: 'kbql, production, cache + rate limit on Redis',
              args: ['kbql', dataDir, ...PRODUCTION, `REDIS_URL=${BENCH_REDIS_URL}`, `KBQL_CACHE_PREFIX=${prefix}`],
            },
          ]
        : []),
      {
        label: 'kbql, production, document cache off (parse + validate every request)',
        args: ['kbql', dataDir, ...PRODUCTION, 'KBQL_DOCUMENT_CACHE_SIZE=0'],
      },
      {
        label: 'kbql, production, result cache off (hybrid search every request)',
        args: ['kbql', dataDir, ...PRODUCTION, 'KBQL_CACHE_RESULT_TTL_SECONDS=0'],
      },
      // What the security features cost on this path (same server otherwise).
      {
        label: 'kbql, production without JWT verification (KBQL_AUTH_MODE=none)',
        args: ['kbql', dataDir, ...PRODUCTION, 'KBQL_AUTH_MODE=none'],
      },
      {
        label: 'kbql, production without JWT or rate limiting',
        args: ['kbql', dataDir, ...PRODUCTION, 'KBQL_AUTH_MODE=none', 'KBQL_RATE_LIMIT=false'],
      },
    ];

    // The bare server answers exactly what kbql answers.
    const probe = await startTarget(['kbql', dataDir, ...PRODUCTION]);
    children.push(probe.child);
    const reference = (await post(probe.url)) as { data: { search: unknown } };
    await stopTarget(probe.child);
    await writeFile(tmpResponse, JSON.stringify(reference.data.search));

    const rows: (string | number)[][] = [];
    let baseline = 0;
    for (const variant of variants) {
      const target = await startTarget(variant.args);
      children.push(target.child);
      const body = await post(target.url);
      if (JSON.stringify(body) !== JSON.stringify(reference)) throw new Error(`${variant.label}: response differs from kbql's`);
      const result = await load(target.url);
      // autocannon stops sending at the deadline; let the requests still in flight finish before the server stops.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await stopTarget(target.child);
      if (result.non2xx + result.errors + result.timeouts > 0)
        throw new Error(`${variant.label}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      if (baseline === 0) baseline = result.requests.average;
      rows.push([
        variant.label,
        Math.round(result.requests.average),
        result.latency.p50,
        result.latency.p99,
        `${(result.requests.average / baseline).toFixed(2)}×`,
      ]);
    }
    printTable(
      `(1) search(topK: 10) over HTTP: autocannon, ${CONNECTIONS} connections, ${SECONDS} s per run, loopback, ${os.cpus().length} cores, node ${process.version}`,
      ['server', 'req/s', 'p50 ms', 'p99 ms', 'vs bare Apollo'],
      rows,
    );
  } finally {
    for (const child of children) await stopTarget(child);
    await rm(dataDir, { recursive: true, force: true });
    // The cache's keys and the rate limiter's (`<prefix>:rl:…`).
    if (await redisReachable()) await deleteRedisPrefix(prefix);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
