import type { GraphQLSchema } from 'graphql';
import type { Config } from '../config';
import { createJoseVerifier } from '../adapters/auth/jose.token-verifier';
import { RedisApiKeyStore } from '../adapters/auth/redis.api-key-store';
import { SqliteApiKeyStore } from '../adapters/auth/sqlite.api-key-store';
import { createRedisRateLimitStore, type RedisRateLimitStore } from '../adapters/rate-limit/redis.rate-limiter';
import { createRateLimitTransform } from '../graphql/directives/rate-limit.directive';
import type { KbqlContext } from '../modules/shared/request-context';
import type { Logger } from '../logger';
import { ApiKeyService } from '../modules/auth/api-key.service';
import { createAuthenticator } from '../modules/auth/authenticator';
import type { Authenticate } from '../ports/authenticator.port';
import type { ApiKeyStore } from '../ports/api-key-store.port';
import type { Disposers } from './lifecycle';

export interface Security {
  apiKeys: ApiKeyService;
  /** Who is calling, from the Authorization and X-API-Key headers (see `createAuthenticator`). */
  authenticate: Authenticate;
  /** The @rateLimit transform of the schema; undefined when rate limits are off. */
  rateLimit: ((schema: GraphQLSchema) => GraphQLSchema) | undefined;
}

/**
 * Who is calling (JWT, API key or KBQL_AUTH_MODE=none) and @rateLimit counters (Redis when REDIS_URL is set, with an
 * in-memory fallback; in memory otherwise); @auth itself is applied to every field by `buildKbqlSchema`.
 */
export async function createSecurity(
  config: Config,
  apiKeyStoreOverride: ApiKeyStore | undefined,
  logger: Logger,
  disposers: Disposers,
): Promise<Security> {
  // Service API keys: a SQLite file in the data dir; with the Weaviate store and REDIS_URL, in Redis (replicas share it).
  const apiKeyStore = apiKeyStoreOverride ?? createApiKeyStore(config, logger);
  await apiKeyStore.init();
  disposers.add('API key store', () => apiKeyStore.close());
  const apiKeys = new ApiKeyService({ store: apiKeyStore, cacheTtlMs: config.auth.apiKeyCacheSeconds * 1000 });

  const authenticate = createAuthenticator({
    mode: config.auth.mode,
    verifier: config.auth.jwt ? createJoseVerifier({ ...config.auth.jwt, cacheTtlMs: config.auth.tokenCacheSeconds * 1000 }) : undefined,
    apiKeys,
  });
  if (config.auth.mode === 'none') {
    logger.warn(
      'AUTHENTICATION IS OFF (KBQL_AUTH_MODE=none): every caller is an ADMIN of tenant "default". Use it for local ' +
        'development only; set KBQL_AUTH_MODE=jwt with KBQL_JWT_SECRET or KBQL_JWT_JWKS_URL anywhere else.',
      { nodeEnv: config.env },
    );
  }
  if (!config.rateLimit.enabled) logger.warn(`Rate limits (@rateLimit) are off: ${config.rateLimit.reason}.`, { nodeEnv: config.env });
  const rateLimitStore: RedisRateLimitStore | null =
    config.rateLimit.enabled && config.cache.redisUrl
      ? createRedisRateLimitStore({ url: config.cache.redisUrl, timeoutMs: config.rateLimit.timeoutMs, logger })
      : null;
  if (rateLimitStore) disposers.add('rate-limit store', () => rateLimitStore.close());
  const rateLimit = config.rateLimit.enabled
    ? createRateLimitTransform<KbqlContext>({
        keyPrefix: `${config.cache.prefix}:rl`,
        limiterClass: rateLimitStore?.limiterClass,
        limiterOptions: rateLimitStore?.limiterOptions,
        maxOverride: config.rateLimit.maxOverride,
        windowSecondsOverride: config.rateLimit.windowSecondsOverride,
      })
    : undefined;
  return { apiKeys, authenticate, rateLimit };
}

/** API keys live next to the knowledge: the data dir's SQLite, except Weaviate + REDIS_URL (no shared disk): Redis. */
function createApiKeyStore(config: Config, logger: Logger): ApiKeyStore {
  if (config.store.kind === 'weaviate' && config.cache.redisUrl) {
    return new RedisApiKeyStore({ url: config.cache.redisUrl, prefix: config.cache.prefix, logger });
  }
  return new SqliteApiKeyStore({ dataDir: config.dataDir });
}
