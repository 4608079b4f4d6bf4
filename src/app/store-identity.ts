import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';

/** Refused start-up: this process's store differs from the one its Redis namespace already serves. */
export class StoreConflictError extends Error {
  override readonly name = 'StoreConflictError';
}

const ID_FILE = 'store-id';

/**
 * The identity of the knowledge store this process serves, which namespaces the job queue and events in Redis and
 * claims the namespace. Embedded: a random id written once into the data dir (processes sharing the data dir share
 * it; a separate or wiped data dir is another store). Weaviate: derived from its address, prefix and tenant.
 */
export function storeIdentity(config: Config): string {
  const s = config.store;
  if (s.kind === 'weaviate') {
    const where = `${new URL(s.url).host}/${s.prefix}/${s.tenant ?? ''}`;
    return `weaviate-${createHash('sha256').update(where).digest('hex').slice(0, 16)}`;
  }
  const file = path.join(config.dataDir, ID_FILE);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(config.dataDir, { recursive: true });
  try {
    // `wx`: of two processes starting on one new data dir, one writes and both read the same id.
    writeFileSync(file, `embedded-${randomUUID()}\n`, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return readFileSync(file, 'utf8').trim();
}

/** The one-line refusal for a Redis namespace that serves another store. */
export function storeConflictMessage(config: Config, mine: string, theirs: string): string {
  const store = config.store.kind === 'embedded' ? `the embedded store in ${config.dataDir}` : 'this Weaviate store';
  return (
    `refusing to start: REDIS_URL with KBQL_CACHE_PREFIX=${config.cache.prefix} already serves another knowledge store ` +
    `(${theirs}; this one, ${store}, is ${mine}). Replicas that share a Redis must share one store — Weaviate, or one ` +
    `KBQL_DATA_DIR — or use a KBQL_CACHE_PREFIX of their own (a crashed replica's claim lapses after 30 s)`
  );
}
