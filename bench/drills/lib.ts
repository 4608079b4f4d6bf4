import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { mulberry32 } from '../../test/helpers/fixtures';

/**
 * Shared parts of the drills (`npm run drills`, `test/e2e/drills.test.ts`): a kbql child process, a GraphQL client
 * over node:http, an open-loop fixed-rate load generator, synthetic documents and the result table. Everything
 * talks to 127.0.0.1 only; every wait is bounded.
 */

/** The compiled entry point the child-process drills run (`dist*` /src/main.js next to this build). */
export const MAIN_JS = path.resolve(__dirname, '..', '..', 'src', 'main.js');

/** What one drill reports: a table, whether every check held, and why not. */
export interface DrillReport {
  name: string;
  title: string;
  header: string[];
  rows: (string | number)[][];
  /** Failed checks; empty = the drill passed. */
  failures: string[];
  /** Set when the drill could not run here (e.g. no redis-server, not root); then it neither passed nor failed. */
  skipped?: string;
}

/** Collects the outcome of each check instead of throwing at the first, so the table is always printed. */
export class Checks {
  readonly failures: string[] = [];
  /** Records `what` as failed unless `ok`; returns `ok`. */
  that(ok: boolean, what: string): boolean {
    if (!ok) this.failures.push(what);
    return ok;
  }
}

export function printReport(report: DrillReport): void {
  const cells = [report.header, ...report.rows.map((r) => r.map(formatCell))];
  const widths = report.header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]) => `| ${r.map((c, i) => String(c).padEnd(widths[i]!)).join(' | ')} |`;
  const verdict = report.skipped ? `SKIPPED (${report.skipped})` : report.failures.length === 0 ? 'PASS' : 'FAIL';
  const out = [`\n${report.title} — ${verdict}`, line(report.header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`];
  for (const r of cells.slice(1)) out.push(line(r));
  for (const failure of report.failures) out.push(`  ✗ ${failure}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

function formatCell(c: string | number): string {
  if (typeof c !== 'number') return c;
  if (!Number.isFinite(c) || Number.isInteger(c)) return String(c);
  return Math.abs(c) >= 100 ? c.toFixed(0) : Math.abs(c) >= 1 ? c.toFixed(1) : c.toFixed(3);
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 50 ms until it holds; false after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await sleep(50);
  }
  return condition();
}

// ------------------------------------------------------------------------------------------------ auth

export const JWT_SECRET = randomBytes(32).toString('hex');

/** An HS256 token signed with {@link JWT_SECRET} for `role` of tenant `default`, valid for two hours. */
export function token(role: 'READER' | 'WRITER' | 'ADMIN' = 'WRITER', subject = 'drill'): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: subject, kbql_role: role, kbql_tenant: 'default', iat: now, exp: now + 7200 })}`;
  return `${unsigned}.${createHmac('sha256', JWT_SECRET).update(unsigned).digest('base64url')}`;
}

/** Production settings as deployed (JWT on, rate limiting on with a limit the load is counted against, not refused by). */
export const PRODUCTION_ENV: Record<string, string> = {
  NODE_ENV: 'production',
  KBQL_AUTH_MODE: 'jwt',
  KBQL_JWT_SECRET: JWT_SECRET,
  KBQL_RATE_LIMIT: 'true',
  KBQL_RATE_LIMIT_MAX: '1000000',
  KBQL_LOG_LEVEL: 'error',
  // The drills read /metrics next to /graphql (several processes at once: no shared fixed metrics port).
  KBQL_METRICS_PORT: 'main',
};

// ------------------------------------------------------------------------------------------------ HTTP client

export interface GqlResult {
  /** HTTP status, or 0 when no response came (see `networkError`). */
  status: number;
  body: { data?: any; errors?: { message: string; extensions?: { code?: string } & Record<string, unknown> }[] } | null;
  ms: number;
  /** `ECONNREFUSED`, `ECONNRESET`, `timeout`… when the request got no response. */
  networkError: string | null;
}

export interface GqlOptions {
  token?: string;
  /** Bound of the whole request. @default 30000 */
  timeoutMs?: number;
  /** A keep-alive agent to reuse connections; default: one connection per request (`Connection: close`). */
  agent?: http.Agent;
  /** Sent as `x-request-id` (kbql logs it with the request). */
  requestId?: string;
}

/** POSTs one GraphQL operation to `url` (`http://127.0.0.1:port/graphql`); never throws. */
export function gql(url: string, query: string, variables: Record<string, unknown> = {}, options: GqlOptions = {}): Promise<GqlResult> {
  const started = performance.now();
  const payload = JSON.stringify({ query, variables });
  const target = new URL(url);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (status: number, text: string | null, networkError: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      let body: GqlResult['body'] = null;
      if (text !== null) {
        try {
          body = JSON.parse(text) as GqlResult['body'];
        } catch {
          body = null;
        }
      }
      resolve({ status, body, ms: performance.now() - started, networkError });
    };
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent: options.agent ?? false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...(options.agent ? {} : { connection: 'close' }),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.requestId ? { 'x-request-id': options.requestId } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => finish(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), null));
        res.on('error', (e: NodeJS.ErrnoException) => finish(0, null, e.code ?? e.message));
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error('timeout'));
      finish(0, null, 'timeout');
    }, options.timeoutMs ?? 30_000);
    req.on('error', (e: NodeJS.ErrnoException) => finish(0, null, e.code ?? e.message));
    req.end(payload);
  });
}

/** The first error code of a response, `HTTP <status>` for a non-JSON failure, the network error, or null when OK. */
export function failureOf(result: GqlResult): string | null {
  if (result.networkError) return result.networkError;
  const code = result.body?.errors?.[0]?.extensions?.code;
  if (code) return code;
  if (result.status !== 200 || !result.body?.data) return `HTTP ${result.status}`;
  return null;
}

export async function getJson(url: string, timeoutMs = 5000): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

/** The sum of a Prometheus counter's samples whose labels include `labels`, from a /metrics page. */
export function metricSum(page: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of page.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

// ------------------------------------------------------------------------------------------------ load

/**
 * A keep-alive agent that drops idle sockets after 4 s, before kbql's server closes them (keepAliveTimeout 5 s):
 * otherwise a request can be written onto a socket the server is closing at that moment and fail with ECONNRESET,
 * a client-side race that proxies (nginx `keepalive_timeout` below the upstream's) avoid the same way.
 */
export function keepAliveAgent(maxSockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets, timeout: 4000 });
}

export interface LoadRequest {
  kind: string;
  query: string;
  variables: Record<string, unknown>;
}

export interface LoadSample {
  kind: string;
  /** The `x-request-id` it was sent with (`load-<i>`). */
  requestId: string;
  /** Time since the load started when the request was sent, ms. */
  at: number;
  ms: number;
  failure: string | null;
}

export interface LoadOptions {
  url: string;
  token: string;
  /** Requests per second, sent on schedule whether or not earlier ones have answered (open loop). */
  rate: number;
  durationMs: number;
  /** Request `i` of the run. */
  next: (i: number) => LoadRequest;
  /** Most requests in flight; a scheduled request beyond it is counted as `backlogged` and not sent. @default 2048 */
  maxInFlight?: number;
  /** Reuse connections (as a proxy does). @default true */
  keepAlive?: boolean;
  timeoutMs?: number;
  /** Called once per request as it completes. */
  onSample?: (sample: LoadSample) => void;
}

export interface LoadResult {
  samples: LoadSample[];
  sent: number;
  backlogged: number;
  elapsedMs: number;
}

/**
 * Sends `rate` requests per second for `durationMs` (bounded in count: rate × duration), then waits for the ones in
 * flight (each bounded by `timeoutMs`). Latency is measured from sending to the end of the response.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const agent = options.keepAlive === false ? undefined : keepAliveAgent(64);
  const maxInFlight = options.maxInFlight ?? 2048;
  const total = Math.round((options.rate * options.durationMs) / 1000);
  const samples: LoadSample[] = [];
  const pending = new Set<Promise<void>>();
  let sent = 0;
  let backlogged = 0;
  const started = performance.now();
  try {
    while (sent + backlogged < total) {
      const elapsed = performance.now() - started;
      const due = Math.min(total, Math.floor((elapsed * options.rate) / 1000) + 1);
      while (sent + backlogged < due) {
        if (pending.size >= maxInFlight) {
          backlogged++;
          continue;
        }
        const i = sent + backlogged;
        const request = options.next(i);
        sent++;
        const at = performance.now() - started;
        const requestId = `load-${i}`;
        const p = gql(options.url, request.query, request.variables, {
          token: options.token,
          agent,
          requestId,
          timeoutMs: options.timeoutMs ?? 30_000,
        }).then((result) => {
          const sample = { kind: request.kind, requestId, at, ms: result.ms, failure: failureOf(result) };
          samples.push(sample);
          options.onSample?.(sample);
          pending.delete(p);
        });
        pending.add(p);
      }
      const nextDue = ((sent + backlogged) * 1000) / options.rate;
      await sleep(Math.max(1, Math.min(20, nextDue - (performance.now() - started))));
    }
    await Promise.all(pending);
  } finally {
    agent?.destroy();
  }
  return { samples, sent, backlogged, elapsedMs: performance.now() - started };
}

/**
 * Closed-loop capacity: `connections` clients each sending the next request as soon as the previous answered, for
 * `durationMs`; resolves with the completed requests per second (failed ones excluded) and the samples.
 */
export async function measureCapacity(options: {
  url: string;
  token: string;
  connections: number;
  durationMs: number;
  next: (i: number) => LoadRequest;
}): Promise<{ rps: number; samples: LoadSample[] }> {
  const agent = keepAliveAgent(options.connections);
  const samples: LoadSample[] = [];
  const started = performance.now();
  let i = 0;
  try {
    await Promise.all(
      Array.from({ length: options.connections }, async () => {
        while (performance.now() - started < options.durationMs) {
          const request = options.next(i++);
          const at = performance.now() - started;
          const result = await gql(options.url, request.query, request.variables, { token: options.token, agent, timeoutMs: 30_000 });
          samples.push({ kind: request.kind, requestId: 'capacity', at, ms: result.ms, failure: failureOf(result) });
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  const ok = samples.filter((s) => !s.failure).length;
  return { rps: ok / ((performance.now() - started) / 1000), samples };
}

/** Rows `kind | requests | failed | p50 | p99 | max` (ms) per request kind and in total. */
export function latencyRows(samples: readonly LoadSample[]): (string | number)[][] {
  const kinds = [...new Set(samples.map((s) => s.kind))].sort();
  const row = (label: string, of: readonly LoadSample[]) => {
    const ms = of.map((s) => s.ms);
    return [label, of.length, of.filter((s) => s.failure).length, percentile(ms, 50), percentile(ms, 99), Math.max(...ms)];
  };
  return [
    ...kinds.map((k) =>
      row(
        k,
        samples.filter((s) => s.kind === k),
      ),
    ),
    row('all', samples),
  ];
}

/** The distinct failures and how often each came. */
export function failureSummary(samples: readonly LoadSample[]): string {
  const counts = new Map<string, number>();
  for (const s of samples) if (s.failure) counts.set(`${s.kind}:${s.failure}`, (counts.get(`${s.kind}:${s.failure}`) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k}×${n}`).join(', ') || 'none';
}

// ------------------------------------------------------------------------------------------------ operations

export const SEARCH = `query DrillSearch($c: String!, $q: String!) { search(collection: $c, query: $q, topK: 10) { hits { score chunk { id index } document { id externalId } } } }`;
export const ASK = `query DrillAsk($c: String!, $q: String!) { ask(collection: $c, question: $q) { abstained answer citations { marker } } }`;
export const INGEST = `mutation DrillIngest($c: String!, $docs: [DocumentInput!]!) {
  ingestDocuments(collection: $c, documents: $docs) { indexed unchanged failed results { index status code reason externalId chunkCount } } }`;
export const CREATE_COLLECTION = `mutation DrillCreate($name: String!) { createCollection(input: { name: $name }) { id name } }`;
export const DOCUMENTS = `query DrillDocuments($c: String!, $after: String) {
  documents(collection: $c, first: 100, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id externalId contentHash chunkCount chunks(first: 1) { totalCount } } } } }`;

export interface DocumentSummary {
  externalId: string;
  contentHash: string;
  chunkCount: number;
  /** Chunks actually stored (the chunk connection's totalCount). */
  storedChunks: number;
}

/** Every document of a collection, through the API. */
export async function listDocuments(url: string, auth: string, collection: string): Promise<DocumentSummary[]> {
  const out: DocumentSummary[] = [];
  let after: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const result = await gql(url, DOCUMENTS, { c: collection, after }, { token: auth });
    const failure = failureOf(result);
    if (failure) throw new Error(`documents(${collection}) failed: ${failure} ${JSON.stringify(result.body?.errors)}`);
    const connection = result.body!.data.documents as {
      pageInfo: { hasNextPage: boolean; endCursor: string | null };
      edges: { node: { externalId: string; contentHash: string; chunkCount: number; chunks: { totalCount: number } } }[];
    };
    for (const { node } of connection.edges) {
      out.push({
        externalId: node.externalId,
        contentHash: node.contentHash,
        chunkCount: node.chunkCount,
        storedChunks: node.chunks.totalCount,
      });
    }
    if (!connection.pageInfo.hasNextPage) return out;
    after = connection.pageInfo.endCursor;
  }
  throw new Error('too many pages');
}

// ------------------------------------------------------------------------------------------------ synthetic data

const WORDS = (
  'vector index ledger harbor quartz meadow signal lantern copper orbit thistle canyon ember willow prism glacier ' +
  'falcon mosaic tundra beacon saffron cobalt juniper marble nectar pylon raven sonnet tidal umber velvet walnut ' +
  'zephyr anchor basalt cedar dune fjord grove heron iris jasper kelp lichen maple nimbus opal pebble quill reef'
).split(' ');

/** A deterministic pseudo-random generator (mulberry32, shared with the test fixtures). */
export const rng = mulberry32;

/** Document `i` (version `version`): a few paragraphs of sentences drawn from a fixed vocabulary. */
export function syntheticDocument(
  i: number,
  version = 0,
  paragraphs = 3,
): { id: string; title: string; content: string; contentType: 'TEXT' } {
  const random = rng(i * 7919 + version * 104_729 + 1);
  const sentence = () => {
    const words = Array.from({ length: 8 + Math.floor(random() * 12) }, () => WORDS[Math.floor(random() * WORDS.length)]!);
    return `${words[0]!.charAt(0).toUpperCase()}${words[0]!.slice(1)} ${words.slice(1).join(' ')}.`;
  };
  const body = Array.from({ length: paragraphs }, () => Array.from({ length: 4 + Math.floor(random() * 4) }, sentence).join(' ')).join(
    '\n\n',
  );
  return {
    id: `doc-${String(i).padStart(5, '0')}`,
    title: `Document ${i} v${version}`,
    content: `Document ${i} version ${version}\n\n${body}`,
    contentType: 'TEXT',
  };
}

/** A search query of 3–5 vocabulary words (deterministic in `i`). */
export function syntheticQuery(i: number): string {
  const random = rng(i * 31 + 17);
  return Array.from({ length: 3 + Math.floor(random() * 3) }, () => WORDS[Math.floor(random() * WORDS.length)]!).join(' ');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

// ------------------------------------------------------------------------------------------------ child process

export interface KbqlChild {
  url: string;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
  /** SIGKILLs the process if it is still running. */
  kill(): Promise<void>;
}

/** The resident set size of a process, in MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

/**
 * Runs the compiled `main.js` with `env` (plus PATH) on 127.0.0.1 and a free port, and resolves once it printed
 * `kbql ready at …`; rejects if it exits first or is not ready within `timeoutMs`.
 */
export async function startKbqlChild(env: Record<string, string>, timeoutMs = 60_000): Promise<KbqlChild> {
  const child = spawn(process.execPath, [MAIN_JS], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, atMs: performance.now() })),
  );
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  const ready = await waitFor(() => exitedEarly || /kbql ready at (http:\/\/\S+)\/graphql/.test(stdout), timeoutMs);
  const match = /kbql ready at (http:\/\/\S+)\/graphql/.exec(stdout);
  if (!ready || !match) {
    await kill();
    throw new Error(`kbql did not start (${exitedEarly ? `exited ${child.exitCode}` : 'timeout'}):\n${stdout}\n${stderr.slice(-2000)}`);
  }
  return { url: `${match[1]}/graphql`, child, stdout: () => stdout, stderr: () => stderr, exited, kill };
}
