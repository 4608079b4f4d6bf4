import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RedisApiKeyStore } from '../../src/adapters/auth/redis.api-key-store';
import { isAppError } from '../../src/errors';
import { createLogger } from '../../src/logger';
import { defineApiKeyStoreContractSuite, record } from '../contract/api-key-store.contract';
import { redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';

const noRedis = redisServerAvailable() ? false : 'redis-server is not installed';
let redis: OwnRedis | null = null;
defineApiKeyStoreContractSuite(
  'redis',
  async () => {
    redis = await startOwnRedis();
    const store = new RedisApiKeyStore({ url: redis.url, prefix: 'kbqltest', timeoutMs: 2_000, logger: createLogger('silent') });
    return { store, cleanup: async () => redis?.stop() };
  },
  noRedis,
);

describe('RedisApiKeyStore with Redis down', { skip: noRedis }, () => {
  it('fails fast with UPSTREAM_UNAVAILABLE or UPSTREAM_TIMEOUT, never hangs', async () => {
    const own = await startOwnRedis();
    const store = new RedisApiKeyStore({ url: own.url, prefix: 'kbqltest', timeoutMs: 500, logger: createLogger('silent') });
    await store.init();
    await store.create(record('t-down', 1_000));
    await own.stop();
    try {
      await assert.rejects(
        store.get('0000000000000001'),
        (e: unknown) => isAppError(e) && (e.code === 'UPSTREAM_UNAVAILABLE' || e.code === 'UPSTREAM_TIMEOUT'),
      );
    } finally {
      await store.close();
    }
  });
});
