import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { closeRedisClient, createJobsRedisClient, RedisJobStore } from '../../src/adapters/jobs/redis.job-store';
import { defineJobStoreContractSuite, finish, newJob } from '../contract/job-store.contract';
import { redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';

if (redisServerAvailable()) {
  let redis: OwnRedis | null = null;
  let n = 0;
  after(() => redis?.stop());
  const leftoversIn = async (client: Redis, prefix: string, jobId: string): Promise<number> => {
    const keys = await client.keys(`${prefix}:job:${jobId}*`);
    let indexed = 0;
    for (const key of [`${prefix}:finished`, ...(await client.keys(`${prefix}:by-*`))])
      if ((await client.zscore(key, jobId)) !== null) indexed += 1;
    return keys.length + indexed + (await client.sismember(`${prefix}:unfinished`, jobId));
  };
  defineJobStoreContractSuite('Redis', async () => {
    redis ??= await startOwnRedis();
    const client = createJobsRedisClient({ url: redis.url, prefix: 'x' });
    const prefix = `contract-${++n}`;
    const store = new RedisJobStore(client, prefix);
    await store.init();
    const clients = [client];
    return {
      store,
      async twin() {
        const other = createJobsRedisClient({ url: redis!.url, prefix: 'x' });
        clients.push(other);
        return new RedisJobStore(other, prefix);
      },
      leftovers: (jobId) => leftoversIn(client, prefix, jobId),
      close: async () => clients.forEach(closeRedisClient),
    };
  });

  describe('RedisJobStore retention of jobs finished before the finished-job index existed', () => {
    it('finds them with a bounded SCAN walk, once, and deletes them', async () => {
      redis ??= await startOwnRedis();
      const client = createJobsRedisClient({ url: redis.url, prefix: 'x' });
      const prefix = `backfill-${++n}`;
      try {
        const store = new RedisJobStore(client, prefix);
        for (let i = 0; i < 30; i++) {
          await store.createJob(newJob(`legacy-${i}`, 'acme', 'c', new Date(1000), 1));
          await finish(store, `legacy-${i}`, 1, 2000, 'COMPLETED');
        }
        await store.createJob(newJob('live', 'acme', 'c', new Date(1000), 1));
        // As an older version left them: finished, but in no finished index.
        await client.del(`${prefix}:finished`);
        const upgraded = new RedisJobStore(client, prefix);
        assert.equal(await upgraded.deleteFinishedBefore(new Date(5000), 100), 30);
        assert.equal(await client.exists(`${prefix}:finished:backfilled`), 1);
        assert.deepEqual(
          (await upgraded.listJobs({ tenant: 'acme' }, { offset: 0, limit: 50 })).items.map((j) => j.id),
          ['live'],
        );
        for (let i = 0; i < 30; i++) assert.equal(await leftoversIn(client, prefix, `legacy-${i}`), 0);
      } finally {
        closeRedisClient(client);
      }
    });
  });
}
