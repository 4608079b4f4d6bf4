import type { Logger } from '../../logger';
import type { JobEventBus, JobQueue, JobStore, UploadStore } from '../../ports/job-store.port';
import { BullJobQueue } from './bullmq.job-queue';
import { FileUploadStore } from './file.upload-store';
import { MemoryJobEventBus } from './memory.job-events';
import { MemoryJobQueue } from './memory.job-queue';
import { closeRedisClient, createJobsRedisClient, RedisJobEventBus, RedisJobStore, RedisUploadStore } from './redis.job-store';
import { SqliteJobStore } from './sqlite.job-store';
import { claimStoreLease, type StoreLease } from './store-lease';

export interface JobBackend {
  store: JobStore;
  queue: JobQueue;
  events: JobEventBus;
  uploads: UploadStore;
  /** Closes what the queue and job service do not (connections, files). */
  close(): Promise<void>;
}

export interface JobBackendOptions {
  kind: 'memory' | 'redis';
  dataDir: string;
  redisUrl: string | null;
  /** Key prefix in Redis (the cache prefix: deployments sharing a Redis differ by it). */
  prefix: string;
  /**
   * The knowledge store's identity (Redis mode): the queue, job state and events live under `<prefix>:<storeId>`,
   * and `<prefix>:store` is claimed for it, so processes on different stores never take each other's work.
   */
  storeId: string;
  /** The error start-up fails with when `<prefix>:store` is claimed by another store. */
  storeConflict: (holder: string) => Error;
  concurrency: number;
  /** BullMQ lock duration in ms (Redis mode). @default 30000 */
  lockMs?: number;
  logger?: Logger;
}

/**
 * The four job ports for a deployment: one replica (SQLite in the data dir, in-process queue and events, uploads
 * as files) or several sharing Redis (job state, BullMQ, pub/sub events and uploads all in Redis).
 */
export async function createJobBackend(options: JobBackendOptions): Promise<JobBackend> {
  const onError = (error: unknown) =>
    options.logger?.warn('ingestion job queue error', { error: error instanceof Error ? error.message : String(error) });
  if (options.kind === 'memory' || !options.redisUrl) {
    const store = new SqliteJobStore({ dataDir: options.dataDir });
    await store.init();
    return {
      store,
      queue: new MemoryJobQueue({ concurrency: options.concurrency, onError }),
      events: new MemoryJobEventBus(),
      uploads: new FileUploadStore(options.dataDir),
      close: () => store.close(),
    };
  }
  const redis = createJobsRedisClient({ url: options.redisUrl, prefix: options.prefix });
  redis.on('error', (error: Error) => onError(error));
  // Redis down at start-up cannot prove a conflict: go on (the jobs degrade as below), unclaimed.
  const lease: StoreLease | null = await claimStoreLease(redis, { key: `${options.prefix}:store`, storeId: options.storeId, onError }).then(
    (claimed) => {
      if ('heldBy' in claimed) {
        closeRedisClient(redis);
        throw options.storeConflict(claimed.heldBy);
      }
      return claimed;
    },
    (error: unknown) => {
      onError(error);
      return null;
    },
  );
  const namespace = `${options.prefix}:${options.storeId}`;
  const prefix = `${namespace}:jobs`;
  const store = new RedisJobStore(redis, prefix);
  // Redis down at start-up is not fatal: job calls answer UPSTREAM_UNAVAILABLE until it is back (the caches degrade
  // the same way), and BullMQ picks the queued work up again when it reconnects.
  await store.init().catch((error: unknown) => onError(error));
  const events = new RedisJobEventBus(redis, prefix);
  return {
    store,
    queue: new BullJobQueue({
      url: options.redisUrl,
      prefix: `${namespace}:bull`,
      concurrency: options.concurrency,
      lockDurationMs: options.lockMs,
      onError,
    }),
    events,
    uploads: new RedisUploadStore(redis, prefix),
    close: async () => {
      await events.close();
      await lease?.release();
      closeRedisClient(redis);
    },
  };
}
