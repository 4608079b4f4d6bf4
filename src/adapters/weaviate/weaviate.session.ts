/**
 * The Weaviate store's connection and its state shared by a store and its tenant views: connecting, one call under
 * the resilience policies, and the batched fetches, inserts and deletes the other parts make.
 */
import type { FilterValue } from 'weaviate-client';
import { AppError, badInput } from '../../errors';
import { checkPage } from '../store-checks';
import type { ConnectFn, WeaviateClientLike, WObject, WriteObject } from './weaviate.client';
import { byIds } from './weaviate.filters';
import type { Resolved } from './weaviate.options';
import { authFailureOf, reasonOf, Resilience } from './weaviate.resilience';
import { isCanonicalId } from './weaviate.rows';

const ID_BATCH = 500;
const MAX_DELETE_ROUNDS = 10_000;

/** State shared by a store and its tenant views. */
export interface WeaviateCore {
  options: Resolved;
  connectFn: ConnectFn;
  resilience: Resilience;
  client: Promise<WeaviateClientLike> | null;
  closed: boolean;
  base: Promise<void> | null;
  /** Known properties per Weaviate collection, and when they were last read. */
  schema: Map<string, { properties: Set<string>; readAt: number }>;
  /** `collection \0 tenant` pairs known to exist. */
  tenants: Set<string>;
  /** In-process serialisation of read-modify-write on a collection record. */
  locks: Map<string, Promise<unknown>>;
  /** kbql tenant of each collection seen (a collection never changes owner). */
  owners: Map<string, string>;
}

/** The shared state of a new store: not connected yet, nothing cached. */
export function createCore(resolved: Resolved, connectFn: ConnectFn): WeaviateCore {
  return {
    options: resolved,
    connectFn,
    resilience: new Resilience({
      dependency: 'weaviate',
      target: resolved.displayUrl,
      timeoutMs: resolved.timeoutMs,
      retries: resolved.retries,
      retryInitialDelayMs: resolved.retryInitialDelayMs,
      retryMaxDelayMs: resolved.retryMaxDelayMs,
      breakerThreshold: resolved.breakerThreshold,
      breakerHalfOpenAfterMs: resolved.breakerHalfOpenAfterMs,
    }),
    client: null,
    closed: false,
    base: null,
    schema: new Map(),
    tenants: new Set(),
    locks: new Map(),
    owners: new Map(),
  };
}

/** The calls of one store or tenant view: `tenant` is the Weaviate tenant its calls use unless told otherwise. */
export class WeaviateSession {
  constructor(
    readonly core: WeaviateCore,
    readonly tenant: string | undefined,
  ) {}

  /**
   * The shared client, connecting on first use. init() waits for Weaviate up to `initTimeoutMs`, retrying; a
   * connection opened lazily by a call makes one attempt through the breaker, so a dead Weaviate fails fast.
   */
  async client(patient = false): Promise<WeaviateClientLike> {
    const core = this.core;
    if (core.closed) throw new AppError('UPSTREAM_UNAVAILABLE', 'The Weaviate store is closed.', { dependency: 'weaviate' });
    if (!core.client) {
      core.client = this.connect(patient);
      core.client.catch(() => {
        core.client = null;
      });
    }
    return core.client;
  }

  private async connect(patient: boolean): Promise<WeaviateClientLike> {
    const { options } = this.core;
    const attempts: Promise<WeaviateClientLike>[] = [];
    const started = Date.now();
    let lastFailure: unknown;
    try {
      return await this.core.resilience.run(
        'connect',
        () => {
          const attempt = this.core.connectFn(options.connect);
          attempts.push(attempt);
          attempt.catch((error: unknown) => {
            lastFailure = error;
          });
          return attempt;
        },
        patient
          ? // init(): keep trying until the bound, Weaviate may still be starting.
            { timeoutMs: options.initTimeoutMs, timeoutScope: 'total', retries: options.retries === 0 ? 0 : 1_000, breaker: false }
          : { timeoutMs: options.initTimeoutMs, timeoutScope: 'total', retry: false },
      );
    } catch (error) {
      // An attempt that completes after the deadline must not leak its connection.
      for (const attempt of attempts) attempt.then((c) => c.close()).catch(() => undefined);
      const grpc = `${options.connect.grpcHost}:${options.connect.grpcPort}`;
      const failure = lastFailure ?? (error as { cause?: unknown }).cause ?? error;
      const auth = authFailureOf(failure);
      if (auth) {
        // Not retried: another attempt with the same key gets the same answer.
        throw new AppError(
          'UPSTREAM_UNAVAILABLE',
          `Weaviate at ${options.displayUrl} refused kbql's credentials (${auth}); check WEAVIATE_API_KEY and its role.`,
          { dependency: 'weaviate', url: options.displayUrl, reason: auth },
          { cause: failure },
        );
      }
      const reason = reasonOf(failure);
      throw new AppError(
        'UPSTREAM_UNAVAILABLE',
        `Weaviate at ${options.displayUrl} (gRPC ${grpc}) is unreachable (${reason}); ` +
          `gave up connecting after ${Date.now() - started} ms (limit ${options.initTimeoutMs} ms).`,
        { dependency: 'weaviate', url: options.displayUrl, grpc, timeoutMs: options.initTimeoutMs },
        { cause: error },
      );
    }
  }

  /** One call to Weaviate under the timeout, retry and breaker policies. */
  async call<T>(
    operation: string,
    fn: (client: WeaviateClientLike) => Promise<T>,
    options: { write?: boolean; retry?: boolean } = {},
  ): Promise<T> {
    const client = await this.client();
    const { timeoutMs, insertTimeoutMs } = this.core.options;
    return this.core.resilience.run(operation, () => fn(client), {
      timeoutMs: options.write ? insertTimeoutMs : timeoutMs,
      retry: options.retry,
    });
  }

  async fetchByIds(
    name: string,
    ids: string[],
    options: { includeVector?: boolean; returnProperties?: string[] } = {},
    shard: string | undefined = this.tenant,
  ): Promise<WObject[]> {
    const unique = [...new Set(ids.filter(isCanonicalId))];
    const out: WObject[] = [];
    for (let i = 0; i < unique.length; i += ID_BATCH) {
      const batch = unique.slice(i, i + ID_BATCH);
      out.push(
        ...(await this.call('fetch by id', (c) =>
          c.collection(name, shard).fetchObjects({ filters: byIds(batch), limit: batch.length, ...options }),
        )),
      );
    }
    return out;
  }

  /** Batch upsert in slices; any per-object error fails the whole write with AppError (never a partial success). */
  async insertAll(name: string, objects: WriteObject[], operation: string, shard: string | undefined = this.tenant): Promise<void> {
    const { batchSize } = this.core.options;
    for (let i = 0; i < objects.length; i += batchSize) {
      const batch = objects.slice(i, i + batchSize);
      const result = await this.call(operation, (c) => c.collection(name, shard).insertMany(batch), { write: true });
      const failed = Object.entries(result.errors);
      if (failed.length > 0) {
        const cause = new Error(
          failed
            .slice(0, 5)
            .map(([index, e]) => `#${Number(index) + i}: ${e.message}`)
            .join('; '),
        );
        throw new AppError(
          'UPSTREAM_UNAVAILABLE',
          `Weaviate rejected ${failed.length} of ${batch.length} objects while trying to ${operation}; nothing was committed.`,
          { dependency: 'weaviate', operation, failed: failed.length, objects: objects.length },
          { cause },
        );
      }
    }
  }

  /** Batch delete, repeated until nothing matches: Weaviate caps the objects one call deletes. */
  async deleteAll(name: string, filters: FilterValue, operation: string, shard: string | undefined = this.tenant): Promise<number> {
    let deleted = 0;
    for (let round = 0; round < MAX_DELETE_ROUNDS; round++) {
      const result = await this.call(operation, (c) => c.collection(name, shard).deleteMany(filters), { write: true });
      if (result.failed > 0) {
        throw new AppError('UPSTREAM_UNAVAILABLE', `Weaviate failed to delete ${result.failed} objects during ${operation}.`, {
          dependency: 'weaviate',
          operation,
          failed: result.failed,
        });
      }
      deleted += result.successful;
      if (result.matches === 0 || result.successful === 0) return deleted;
    }
    throw new AppError('UPSTREAM_UNAVAILABLE', `Weaviate kept matching objects during ${operation}.`, {
      dependency: 'weaviate',
      operation,
    });
  }

  /** Runs `fn` after every earlier call with the same key settled (in this process only). */
  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.core.locks.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.core.locks.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.core.locks.get(key) === settled) this.core.locks.delete(key);
    }
  }

  /** {@link checkPage}, within Weaviate's QUERY_MAXIMUM_RESULTS. */
  checkPage(page: { offset: number; limit: number }): { offset: number; limit: number } {
    const { offset, limit } = checkPage(page);
    const max = this.core.options.maxQueryResults;
    if (limit > 0 && offset + limit > max) throw badInput(`offset + limit must not exceed ${max} on Weaviate.`, { offset, limit, max });
    return { offset, limit };
  }
}
