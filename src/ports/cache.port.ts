/**
 * The cache port: a string key–value store with per-entry TTLs, shared by the embedding cache, the search/ask result
 * cache and Apollo's own cache (APQ). Adapters live in `src/adapters/cache/`: Keyv in process (the default) and Keyv on
 * Redis (`REDIS_URL`).
 *
 * Every operation is total: it never throws and never waits longer than the adapter's timeout. A backend that is
 * down, hanging or failing turns reads into misses and writes into no-ops — a "bypass", reported through
 * {@link CacheHooks} — so a request served without the cache is slower, never failed.
 */
export interface CacheStore {
  /** The value, or undefined on a miss or a bypass. */
  get(key: string): Promise<string | undefined>;
  /** One value (or undefined) per key, in order; one round trip per slice of keys. */
  getMany(keys: readonly string[]): Promise<(string | undefined)[]>;
  /**
   * Stores `value` for `ttlSeconds` (> 0). Resolves once written or given up on (timeout, backend down); callers on a
   * hot path need not await it.
   */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Stores every entry for `ttlSeconds` (> 0), in one round trip per slice of entries; resolves like {@link set}. */
  setMany(entries: readonly { key: string; value: string }[], ttlSeconds: number): Promise<void>;
  /** Removes the entry (nothing when absent); resolves once done or given up on, like {@link set}. */
  delete(key: string): Promise<void>;
}

/** The caches kbql keeps; each is a label value of the cache metrics. */
export type CacheKind = 'embedding' | 'result' | 'apollo';

/** Why a cache call was skipped. */
export type CacheBypassReason =
  /** The backend did not answer within the timeout. */
  | 'timeout'
  /** The backend answered with an error (e.g. "client is offline"). */
  | 'error'
  /** The backend is known to be down (not connected, or a recent failure opened the breaker): not even tried. */
  | 'unavailable';

/** Metrics hooks, one call per key. An exception thrown by a hook is ignored. */
export interface CacheHooks {
  /** A key was found. */
  hit?(kind: CacheKind): void;
  /** A key was looked up and not found. */
  miss?(kind: CacheKind): void;
  /** A call was skipped (read as a miss, write dropped) for `reason`. */
  bypass?(kind: CacheKind, reason: CacheBypassReason): void;
}

/** A cache backend: one connection, a view per kind (keys of different kinds never collide). */
export interface Cache {
  /** `memory` (this process only) or `redis` (shared by every replica). */
  readonly backend: 'memory' | 'redis';
  /** The store for one kind of entry; its hits, misses and bypasses are reported under `kind`. */
  store(kind: CacheKind): CacheStore;
  /** True while the backend can be used (always for memory; for Redis: connected and the breaker closed). */
  readonly available: boolean;
  /** Closes the connection; later calls are bypasses. Idempotent. */
  close(): Promise<void>;
}
