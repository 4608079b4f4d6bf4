import { createClient, type RedisClientType } from '@redis/client';
import { RateLimiterMemory, RateLimiterRedis, type IRateLimiterOptions, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '../../logger';

export interface RedisRateLimitStoreOptions {
  /** Redis shared by the replicas, e.g. redis://redis:6379. */
  url: string;
  /**
   * Longest one Redis call may take, in ms; past it (or with Redis down) the call falls back to the in-memory limiter.
   * @default 50
   */
  timeoutMs?: number;
  logger: Logger;
}

/** A Redis client for the rate limiters and the limiter class that uses it. */
export interface RedisRateLimitStore {
  /** A rate-limiter-flexible class for `@rateLimit`: Redis counters with an in-memory insurance limiter. */
  limiterClass: typeof RateLimiterAbstract;
  /** Options every limiter of that class needs (the Redis client). */
  limiterOptions: { storeClient: RedisClientType; useRedisPackage: true };
  close(): Promise<void>;
}

/**
 * Rate-limit counters in Redis (atomic: one Lua INCR+PEXPIRE per call, so replicas never race), through its own
 * node-redis client set up as STACK.md measured: no offline queue (a call while Redis is down fails at once instead of
 * hanging), reconnect with backoff, and every call bounded by `timeoutMs`. Whenever Redis fails or is slow, each limiter
 * counts in memory instead (its insurance limiter, same points and window, per replica) — a degraded limit, never a
 * hang or a failed request.
 */
export function createRedisRateLimitStore(options: RedisRateLimitStoreOptions): RedisRateLimitStore {
  const timeoutMs = options.timeoutMs ?? 50;
  let lastError = 0;
  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    commandsQueueMaxLength: 10_000,
    socket: {
      connectTimeout: 2_000,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2_000) + Math.floor(Math.random() * 50),
    },
  }) as RedisClientType;
  client.on('error', (error: unknown) => {
    // One line per 10 s at most: a Redis outage must not flood the logs.
    if (Date.now() - lastError < 10_000) return;
    lastError = Date.now();
    options.logger.warn('rate-limit Redis unavailable; limiting in memory per replica', {
      error: error instanceof Error ? error.message : String(error),
    });
  });
  client.connect().catch(() => undefined);

  class RedisWithMemoryInsurance extends RateLimiterRedis {
    constructor(opts: IRateLimiterOptions & { storeClient: unknown }) {
      super({
        ...opts,
        useRedisPackage: true,
        insuranceLimiter: new RateLimiterMemory({ points: opts.points, duration: opts.duration, keyPrefix: opts.keyPrefix }),
      });
    }

    /** rate-limiter-flexible's one Redis call: bounded, and a synchronous throw becomes a rejection (→ insurance). */
    async _upsert(...args: unknown[]): Promise<unknown> {
      const upsert = (RateLimiterRedis.prototype as unknown as { _upsert: (...a: unknown[]) => Promise<unknown> })._upsert;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`rate-limit Redis call took over ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        return await Promise.race([upsert.apply(this, args), late]);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  return {
    limiterClass: RedisWithMemoryInsurance as unknown as typeof RateLimiterAbstract,
    limiterOptions: { storeClient: client, useRedisPackage: true },
    async close() {
      await client.close().catch(() => client.destroy());
    },
  };
}
