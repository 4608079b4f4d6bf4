import type { DocumentStore } from '@apollo/server';
import type { DocumentNode } from 'graphql';
import type { CacheStore } from '../../ports/cache.port';

/** The shape of Apollo Server's `cache` option (`KeyValueCache<string>` of `@apollo/utils.keyvaluecache`). */
export interface ApolloKeyValueCache {
  get(key: string): Promise<string | undefined>;
  /** `ttl` in seconds; null or absent: {@link ApolloCacheOptions.defaultTtlSeconds}. */
  set(key: string, value: string, options?: { ttl?: number | null }): Promise<void>;
  delete(key: string): Promise<boolean | void>;
}

export interface ApolloCacheOptions {
  /**
   * TTL of entries Apollo stores without one, in seconds (APQ registers queries with its own TTL, 300 s by default).
   * @default 86400
   */
  defaultTtlSeconds?: number;
}

/**
 * Apollo Server's own cache (automatic persisted queries and any plugin that caches) on kbql's cache: the same Keyv
 * (in process, or Redis shared by every replica), the same timeout, the same bypass-on-failure behaviour.
 */
export function createApolloCache(store: CacheStore, options: ApolloCacheOptions = {}): ApolloKeyValueCache {
  const defaultTtl = options.defaultTtlSeconds ?? 86_400;
  return {
    get: (key) => store.get(key),
    async set(key, value, setOptions) {
      const ttl = setOptions?.ttl;
      // Apollo's null ttl means "no expiry"; kbql's cache always expires, so it gets the default.
      await store.set(key, value, typeof ttl === 'number' && ttl > 0 ? ttl : defaultTtl);
    },
    delete: (key) => store.delete(key),
  };
}

export interface DocumentStoreOptions {
  /**
   * Most parsed and validated documents kept.
   * @default 1000
   */
  maxEntries?: number;
}

/**
 * Apollo's `documentStore`: parsed and validated operations, keyed by the hash of their text, so a repeated operation
 * skips parsing and validation (validation is most of a small request's CPU). Kept in process as an LRU of
 * DocumentNode objects: they cannot go to Redis without a serialisation that costs more than parsing again.
 * Apollo prefixes keys with the schema hash, so a new schema never reuses a document validated against the old one.
 */
export function createDocumentStore(options: DocumentStoreOptions = {}): DocumentStore {
  const max = options.maxEntries ?? 1000;
  if (!(max >= 1)) throw new RangeError(`maxEntries must be at least 1, got ${max}`);
  const entries = new Map<string, DocumentNode>();
  return {
    async get(key) {
      const document = entries.get(key);
      if (document !== undefined) {
        entries.delete(key);
        entries.set(key, document);
      }
      return document;
    },
    async set(key, document) {
      entries.delete(key);
      entries.set(key, document);
      if (entries.size > max) entries.delete(entries.keys().next().value as string);
    },
    async delete(key) {
      return entries.delete(key);
    },
  };
}
