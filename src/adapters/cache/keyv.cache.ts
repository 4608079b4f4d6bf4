import KeyvRedis from '@keyv/redis';
import { createClient, type RedisClientType } from '@redis/client';
import { Keyv, type Deserialize, type Serialize } from 'keyv';
import type { Cache, CacheBypassReason, CacheHooks, CacheKind, CacheStore } from '../../ports/cache.port';
import { LruMap } from './lru-map';

/** Where log lines go; a subset of `src/logger.ts`'s Logger. */
interface CacheLogger {
  warn(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
}

export interface KeyvCacheOptions {
  /** `redis://` or `rediss://` URL; null or absent: an in-process cache (this replica only). */
  redisUrl?: string | null;
  /**
   * Prefix of every key in Redis (`<prefix>::<kind>:<key>`), so deployments can share a Redis.
   * @default 'kbql'
   */
  prefix?: string;
  /**
   * Longest any one cache call may take, in ms; past it the call is a bypass (a miss, or a skipped write).
   * @default 50
   */
  timeoutMs?: number;
  /**
   * After a failed or timed-out read, calls skip Redis for this long (ms) instead of each paying the timeout; a
   * reconnection closes the breaker at once.
   * @default 1000
   */
  breakerMs?: number;
  /**
   * Size bound of the in-process cache, in bytes (least recently used entries go first).
   * @default 67108864 (64 MiB)
   */
  memoryMaxBytes?: number;
  /**
   * Most keys per Redis command in getMany/setMany; larger calls are sliced, at most 4 slices in flight, each with
   * its own timeout.
   * @default 64
   */
  sliceSize?: number;
  /**
   * How long {@link createKeyvCache} waits for the first connection, in ms. The cache works without it: until
   * Redis answers, calls are bypasses, and the client keeps reconnecting in the background.
   * @default 1000
   */
  connectWaitMs?: number;
  /**
   * Longest pause between reconnection attempts, in ms (the pause doubles from 50 ms up to this).
   * @default 1000
   */
  maxReconnectDelayMs?: number;
  hooks?: CacheHooks;
  logger?: CacheLogger;
}

const SLICES_IN_FLIGHT = 4;

/**
 * Builds the cache: Keyv over its own `@redis/client` connection when `redisUrl` is set (offline queue disabled, so a
 * command fails at once while disconnected instead of queueing; reconnection with capped exponential backoff;
 * errors thrown rather than swallowed), else Keyv over a bounded in-process LRU map.
 *
 * Every call is raced against `timeoutMs` and never throws (see {@link Cache}). A cache that cannot be reached makes
 * requests slower by at most `timeoutMs`, and only until the breaker opens; it never fails them.
 */
export async function createKeyvCache(options: KeyvCacheOptions = {}): Promise<Cache> {
  const cache = new KeyvCache(options);
  await cache.waitUntilReady(options.connectWaitMs ?? 1000);
  if (!cache.available) options.logger?.warn('cache not reachable yet; serving without it until Redis answers', { backend: 'redis' });
  return cache;
}

class KeyvCache implements Cache {
  readonly backend: 'memory' | 'redis';
  readonly #keyv: Keyv<string>;
  readonly #client: RedisClientType | null;
  readonly #timeoutMs: number;
  readonly #breakerMs: number;
  readonly #sliceSize: number;
  readonly #hooks: CacheHooks;
  readonly #logger: CacheLogger | undefined;
  #openUntil = 0;
  #closed = false;
  #wasReady = false;

  constructor(options: KeyvCacheOptions) {
    this.#timeoutMs = options.timeoutMs ?? 50;
    this.#breakerMs = options.breakerMs ?? 1000;
    this.#sliceSize = Math.max(1, options.sliceSize ?? 64);
    this.#hooks = options.hooks ?? {};
    this.#logger = options.logger;
    const prefix = options.prefix ?? 'kbql';
    const keyvOptions = { useKeyPrefix: false, throwOnErrors: true, serialize, deserialize } as const;

    if (options.redisUrl) {
      this.backend = 'redis';
      const maxDelay = options.maxReconnectDelayMs ?? 1000;
      const client = createClient({
        url: options.redisUrl,
        disableOfflineQueue: true,
        // Bounds what can pile up while Redis hangs (the breaker keeps it small anyway).
        commandsQueueMaxLength: 10_000,
        socket: {
          connectTimeout: Math.max(1000, this.#timeoutMs),
          reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, maxDelay) + Math.floor(Math.random() * 50),
        },
      }) as RedisClientType;
      client.on('error', (error: unknown) => this.#onClientError(error));
      client.on('ready', () => {
        this.#openUntil = 0;
        if (!this.#wasReady) this.#logger?.info('cache connected', { backend: 'redis' });
        this.#wasReady = true;
      });
      // Retries by itself (reconnectStrategy) until it connects or the cache is closed.
      client.connect().catch(() => undefined);
      this.#client = client;
      const store = new KeyvRedis<string>(client as never, {
        namespace: prefix,
        keyPrefixSeparator: '::',
        throwOnErrors: true,
        throwOnConnectError: true,
      });
      this.#keyv = new Keyv<string>({ ...keyvOptions, store, namespace: prefix });
    } else {
      this.backend = 'memory';
      this.#client = null;
      const store = new LruMap(options.memoryMaxBytes ?? 64 * 1024 * 1024);
      this.#keyv = new Keyv<string>({ ...keyvOptions, store: store as never, namespace: undefined });
    }
    // Failures reach us as thrown errors (throwOnErrors); the duplicate event needs a listener all the same.
    this.#keyv.on('error', () => undefined);
  }

  get available(): boolean {
    if (this.#closed) return false;
    if (!this.#client) return true;
    return this.#client.isReady && Date.now() >= this.#openUntil;
  }

  /** Resolves when Redis is ready or after `ms`, whichever comes first (always at once in memory). */
  async waitUntilReady(ms: number): Promise<void> {
    const client = this.#client;
    if (!client || client.isReady) return;
    const ready: RedisClientType = client;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      ready.once('ready', done);
      function done() {
        clearTimeout(timer);
        ready.off('ready', done);
        resolve();
      }
    });
  }

  store(kind: CacheKind): CacheStore {
    const p = `${kind}:`;
    return {
      get: async (key) => (await this.#getMany(kind, [p + key]))[0],
      getMany: (keys) =>
        this.#getMany(
          kind,
          keys.map((key) => p + key),
        ),
      set: (key, value, ttlSeconds) => this.#setMany(kind, [{ key: p + key, value }], ttlSeconds),
      setMany: (entries, ttlSeconds) =>
        this.#setMany(
          kind,
          entries.map((e) => ({ key: p + e.key, value: e.value })),
          ttlSeconds,
        ),
      delete: async (key) => {
        await this.#guard(kind, 1, true, () => this.#keyv.delete(p + key));
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const client = this.#client;
    if (!client) {
      this.#keyv.clear().catch(() => undefined);
      return;
    }
    if (client.isReady) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        client.close().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 1000);
        }),
      ]);
      clearTimeout(timer);
    }
    if (client.isOpen) client.destroy();
  }

  async #getMany(kind: CacheKind, keys: readonly string[]): Promise<(string | undefined)[]> {
    const out: (string | undefined)[] = new Array<string | undefined>(keys.length).fill(undefined);
    if (keys.length === 0) return out;
    await this.#sliced(keys.length, async (start, end) => {
      const slice = keys.slice(start, end);
      const values = await this.#guard(kind, slice.length, false, () =>
        slice.length === 1 ? this.#keyv.get(slice[0]!).then((v) => [v]) : this.#keyv.getMany(slice),
      );
      if (values === FAILED) return;
      for (let i = 0; i < slice.length; i++) {
        const value = values[i];
        if (typeof value === 'string') {
          out[start + i] = value;
          this.#report('hit', kind);
        } else {
          this.#report('miss', kind);
        }
      }
    });
    return out;
  }

  async #setMany(kind: CacheKind, entries: readonly { key: string; value: string }[], ttlSeconds: number): Promise<void> {
    if (entries.length === 0 || !(ttlSeconds > 0)) return;
    const ttlMs = Math.round(ttlSeconds * 1000);
    await this.#sliced(entries.length, async (start, end) => {
      const slice = entries.slice(start, end).map((e) => ({ key: e.key, value: e.value, ttl: ttlMs }));
      await this.#guard(kind, slice.length, true, (): Promise<unknown> =>
        slice.length === 1 ? this.#keyv.set(slice[0]!.key, slice[0]!.value, ttlMs) : this.#keyv.setMany(slice),
      );
    });
  }

  /** Runs `work(start, end)` over slices of `count` items, at most SLICES_IN_FLIGHT at a time. */
  async #sliced(count: number, work: (start: number, end: number) => Promise<void>): Promise<void> {
    const size = this.#client ? this.#sliceSize : count;
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const start = next;
        next = Math.min(count, next + size);
        await work(start, next);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SLICES_IN_FLIGHT, Math.ceil(count / size)) }, worker));
  }

  /**
   * Runs one backend call within the timeout. Returns FAILED (after reporting one bypass per key) when the cache is
   * unavailable, the call fails or it takes too long. A failed call, or a read that timed out, opens the breaker; a
   * write that timed out does not (big writes may be slow without Redis being down).
   */
  async #guard<T>(kind: CacheKind, keys: number, write: boolean, work: () => Promise<T>): Promise<T | typeof FAILED> {
    if (!this.available) {
      this.#bypass(kind, keys, 'unavailable');
      return FAILED;
    }
    if (!this.#client) {
      // In process: nothing to wait for and nothing that can be down.
      try {
        return await work();
      } catch {
        this.#bypass(kind, keys, 'error');
        return FAILED;
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), this.#timeoutMs);
    });
    const attempt = work();
    try {
      const result = await Promise.race([attempt, expired]);
      if (result === TIMED_OUT) {
        attempt.catch(() => undefined);
        if (!write) this.#openBreaker();
        this.#bypass(kind, keys, 'timeout');
        return FAILED;
      }
      return result;
    } catch {
      this.#openBreaker();
      this.#bypass(kind, keys, 'error');
      return FAILED;
    } finally {
      clearTimeout(timer);
    }
  }

  #openBreaker(): void {
    this.#openUntil = Date.now() + this.#breakerMs;
  }

  #bypass(kind: CacheKind, keys: number, reason: CacheBypassReason): void {
    for (let i = 0; i < keys; i++) this.#report('bypass', kind, reason);
  }

  #report(what: 'hit' | 'miss' | 'bypass', kind: CacheKind, reason?: CacheBypassReason): void {
    try {
      if (what === 'bypass') this.#hooks.bypass?.(kind, reason!);
      else this.#hooks[what]?.(kind);
    } catch {
      // A metrics hook must not break caching.
    }
  }

  #onClientError(error: unknown): void {
    // Every failed reconnection attempt emits an error: log the outage once, not each attempt.
    if (this.#wasReady && !this.#closed) {
      this.#wasReady = false;
      this.#logger?.warn('cache unavailable; serving without it until Redis is back', {
        backend: 'redis',
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}

const FAILED = Symbol('cache call failed');
const TIMED_OUT = Symbol('cache call timed out');

// Values are strings: stored as "<expires ms or empty>|<value>", which costs nothing to build or parse (Keyv's default
// JSON-encodes the string a second time).
const serialize: Serialize = (data) => `${typeof data.expires === 'number' ? data.expires : ''}|${String(data.value)}`;
const deserialize: Deserialize = (text) => {
  const bar = text.indexOf('|');
  if (bar < 0) return undefined;
  const expires = bar === 0 ? undefined : Number(text.slice(0, bar));
  return { value: text.slice(bar + 1), expires } as never;
};
