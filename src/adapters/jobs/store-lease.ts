import type { Redis } from 'ioredis';

/**
 * Claims `key` for `storeId` for `ttlMs`, or renews the claim when it is already ours. Resolves null when the claim
 * is held, or the store id that holds it (then this process must not share the Redis namespace).
 */
const CLAIM = `local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return v`;

export interface StoreLease {
  /** Stops renewing (the claim lapses after its TTL) and releases it when it is still ours. */
  release(): Promise<void>;
}

export interface StoreLeaseOptions {
  /** The Redis key of the claim, e.g. `kbql:store`. */
  key: string;
  storeId: string;
  /** How long a claim lives without renewal, in ms (renewed every third of it). @default 30000 */
  ttlMs?: number;
  onError?: (error: unknown) => void;
}

/**
 * One Redis namespace (KBQL_CACHE_PREFIX) serves one knowledge store: the caches, job queue and events in it refer
 * to that store's collections. A process whose store differs from the one that holds the claim is refused.
 */
export async function claimStoreLease(redis: Redis, options: StoreLeaseOptions): Promise<{ heldBy: string } | StoreLease> {
  const ttlMs = options.ttlMs ?? 30_000;
  const claim = async (): Promise<string> => String(await redis.eval(CLAIM, 1, options.key, options.storeId, String(ttlMs)));
  const holder = await claim();
  if (holder !== '') return { heldBy: holder };
  const timer = setInterval(
    () => {
      claim().then(
        (other) => {
          if (other !== '') options.onError?.(new Error(`the Redis namespace ${options.key} is claimed by store ${other}`));
        },
        (error: unknown) => options.onError?.(error),
      );
    },
    Math.max(100, Math.floor(ttlMs / 3)),
  );
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await redis
        .eval(
          `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
          1,
          options.key,
          options.storeId,
        )
        .catch(() => undefined);
    },
  };
}
