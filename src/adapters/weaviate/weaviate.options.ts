/** The Weaviate store's options, checked and resolved once. */
import { createHash } from 'node:crypto';
import { badInput } from '../../errors';
import type { ConnectFn, ConnectOptions } from './weaviate.client';

/** How `WeaviateKnowledgeStore` reaches and treats Weaviate. Times in milliseconds. */
export interface WeaviateStoreOptions {
  /** REST endpoint, `http(s)://host:port` (an optional path for a forwarding proxy). */
  url: string;
  /** gRPC port. @default 50051 */
  grpcPort?: number;
  /** gRPC host. @default the host of `url` */
  grpcHost?: string;
  /** TLS for gRPC. @default true when `url` is https */
  grpcSecure?: boolean;
  /** Weaviate API key (sent as a bearer token). @default none (anonymous access) */
  apiKey?: string;
  /**
   * Prefix of every Weaviate collection kbql creates: `<prefix>Registry`, `<prefix>Documents` and one
   * `<prefix>Chunks_<collection id>` per kbql collection. Must match `[A-Z][A-Za-z0-9]*`. @default 'Kbql'
   */
  collectionPrefix?: string;
  /**
   * Create every collection with multi-tenancy on, and scope every call to a tenant: the `tenant` option or the
   * one given to `WeaviateKnowledgeStore.withTenant`. Data calls without a tenant are refused. @default false
   */
  multiTenant?: boolean;
  /** Tenant of this store when `multiTenant` is on (`[A-Za-z0-9_-]{1,64}`). @default none */
  tenant?: string;
  /**
   * With `multiTenant`: keep the chunks of each kbql collection (their text, vectors and filterable metadata — the
   * searchable bulk of a tenant's data) in the Weaviate tenant named after the collection's kbql tenant (see
   * {@link weaviateTenantFor}), created on demand, instead of the store's one `tenant`. The registry and the
   * document records stay in `tenant`: document ids do not name their collection, so they are looked up there.
   * @default false
   */
  bindTenants?: boolean;
  /** Bound of one query attempt (also passed to the client as its query timeout). @default 10000 */
  timeoutMs?: number;
  /** Bound of one write attempt (batch insert, batch delete, schema change). @default 30000 */
  insertTimeoutMs?: number;
  /**
   * Bound of connecting: init() retries a failing connection (unless `retries` is 0) until this bound, then fails
   * with UPSTREAM_UNAVAILABLE naming the URL. @default 10000
   */
  initTimeoutMs?: number;
  /** Retries of a call after a transient failure (connection refused/reset, 5xx, gRPC UNAVAILABLE). @default 2 */
  retries?: number;
  /** First retry delay, doubling with jitter. @default 100 */
  retryInitialDelayMs?: number;
  /** Largest retry delay. @default 2000 */
  retryMaxDelayMs?: number;
  /** Consecutive failed attempts that open the circuit breaker (calls then fail fast). @default 5 */
  breakerThreshold?: number;
  /** How long the open breaker fails fast before one trial call. @default 10000 */
  breakerHalfOpenAfterMs?: number;
  /** Objects per batch insert. @default 100 */
  batchSize?: number;
  /** Weaviate's QUERY_MAXIMUM_RESULTS: offset + limit of one query never exceeds it. @default 10000 */
  maxQueryResults?: number;
  /** Weaviate's QUERY_HYBRID_MAXIMUM_RESULTS: candidates per side of a hybrid query. @default 100 */
  hybridCandidates?: number;
  /**
   * Age after which a collection-name claim whose collection does not carry the name may be taken over (a claimer
   * crashed); a create or rename must finish within half of it (`weaviate.claims.ts`). Keep replica clocks within
   * a quarter of it. @default 120000
   */
  claimGraceMs?: number;
}

export interface WeaviateStoreDeps {
  /** Opens the client; tests pass an in-memory fake. @default `connectWeaviate` */
  connect?: ConnectFn;
  /**
   * Where weaviate-client's gRPC retry lines go instead of console.warn (which would break JSON logs): kbql's
   * logger at warn level. @default dropped
   */
  log?: (message: string, fields: Record<string, unknown>) => void;
}

export type Resolved = Required<Omit<WeaviateStoreOptions, 'apiKey' | 'tenant' | 'grpcHost' | 'grpcSecure'>> & {
  connect: ConnectOptions;
  /** The REST URL without credentials, for messages. */
  displayUrl: string;
};

const TENANT_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const PREFIX_PATTERN = /^[A-Z][A-Za-z0-9]{0,63}$/;

export function resolveOptions(options: WeaviateStoreOptions): Resolved {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError(`Weaviate url "${options.url}" is not a URL; use http(s)://host:port`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('Weaviate url must use http or https');
  const secure = url.protocol === 'https:';
  const prefix = options.collectionPrefix ?? 'Kbql';
  if (!PREFIX_PATTERN.test(prefix)) throw new TypeError('collectionPrefix must match [A-Z][A-Za-z0-9]{0,63}');
  const positiveInt = (value: number | undefined, fallback: number, name: string): number => {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer`);
    return v;
  };
  const timeoutMs = positiveInt(options.timeoutMs, 10_000, 'timeoutMs');
  const insertTimeoutMs = positiveInt(options.insertTimeoutMs, 30_000, 'insertTimeoutMs');
  const initTimeoutMs = positiveInt(options.initTimeoutMs, 10_000, 'initTimeoutMs');
  const grpcPort = positiveInt(options.grpcPort, 50051, 'grpcPort');
  const httpPort = url.port ? Number(url.port) : secure ? 443 : 80;
  const displayUrl = `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '')}`;
  return {
    url: options.url,
    grpcPort,
    collectionPrefix: prefix,
    multiTenant: options.multiTenant ?? false,
    bindTenants: options.bindTenants ?? false,
    timeoutMs,
    insertTimeoutMs,
    initTimeoutMs,
    retries: options.retries ?? 2,
    retryInitialDelayMs: options.retryInitialDelayMs ?? 100,
    retryMaxDelayMs: options.retryMaxDelayMs ?? 2_000,
    breakerThreshold: options.breakerThreshold ?? 5,
    breakerHalfOpenAfterMs: options.breakerHalfOpenAfterMs ?? 10_000,
    batchSize: positiveInt(options.batchSize, 100, 'batchSize'),
    maxQueryResults: positiveInt(options.maxQueryResults, 10_000, 'maxQueryResults'),
    hybridCandidates: positiveInt(options.hybridCandidates, 100, 'hybridCandidates'),
    claimGraceMs: positiveInt(options.claimGraceMs, 120_000, 'claimGraceMs'),
    displayUrl,
    connect: {
      httpHost: url.hostname,
      httpPort,
      httpSecure: secure,
      httpPath: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, ''),
      grpcHost: options.grpcHost ?? url.hostname,
      grpcPort,
      grpcSecure: options.grpcSecure ?? secure,
      apiKey: options.apiKey,
      timeouts: { initMs: initTimeoutMs, queryMs: timeoutMs, insertMs: insertTimeoutMs },
    },
  };
}

export function checkTenant(tenant: string): void {
  if (typeof tenant !== 'string' || !TENANT_PATTERN.test(tenant)) {
    throw badInput('A tenant name is 1 to 64 letters, digits, "-" or "_".', { tenant: String(tenant).slice(0, 80) });
  }
}

/**
 * The Weaviate tenant of a kbql tenant (with `bindTenants`): the name itself when Weaviate accepts it
 * (`[A-Za-z0-9_-]{1,64}`); otherwise (kbql also allows `.`) `kbqlh-` and the first 40 hex digits of its SHA-256.
 */
export function weaviateTenantFor(kbqlTenant: string): string {
  return TENANT_PATTERN.test(kbqlTenant) ? kbqlTenant : `kbqlh-${createHash('sha256').update(kbqlTenant).digest('hex').slice(0, 40)}`;
}
