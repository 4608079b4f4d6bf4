import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { describeStartupFailure } from '../../src/startup-failure';
import { redisCommand, redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';

/**
 * Replicas with separate embedded data dirs sharing one Redis job queue failed each other's documents. Supported:
 * one shared store (Weaviate, or one data dir); the other combination is refused at start-up in one line.
 */
describe(
  'one Redis namespace serves one knowledge store',
  { skip: redisServerAvailable() ? false : 'redis-server is not installed', timeout: 60_000 },
  () => {
    let redis: OwnRedis;
    const dirs: string[] = [];
    const configFor = (dataDir: string) =>
      loadConfig({
        NODE_ENV: 'test',
        KBQL_LOG_LEVEL: 'silent',
        KBQL_DATA_DIR: dataDir,
        REDIS_URL: redis.url,
        KBQL_JOB_QUEUE: 'redis',
        KBQL_CACHE_PREFIX: 'identity-test',
      });
    const newDir = async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-identity-'));
      dirs.push(dir);
      return dir;
    };

    before(async () => {
      redis = await startOwnRedis();
    });
    after(async () => {
      await redis?.stop();
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    });

    it('replicas on one data dir share its identity and one namespaced queue; a replica on another data dir is refused', async () => {
      const shared = await newDir();
      const a = await createApp(configFor(shared));
      const b = await createApp(configFor(shared));
      try {
        const id = (await readFile(path.join(shared, 'store-id'), 'utf8')).trim();
        assert.match(id, /^embedded-[0-9a-f-]{36}$/);
        assert.equal(await redisCommand(redis.port, 'GET identity-test:store'), `$${id.length}\r\n${id}`);
        const keys = await redisCommand(redis.port, 'KEYS identity-test:*');
        assert.ok(keys.includes(`identity-test:${id}:bull`), 'the BullMQ queue is namespaced by the store');

        const other = await newDir();
        await assert.rejects(createApp(configFor(other)), (error: Error) => {
          assert.equal(error.name, 'StoreConflictError');
          const { line, stack } = describeStartupFailure(error, null);
          assert.equal(stack, null);
          assert.doesNotMatch(line, /\n/, 'one line');
          assert.match(line, /already serves another knowledge store/);
          assert.match(line, /must share one store — Weaviate, or one KBQL_DATA_DIR/);
          return true;
        });
      } finally {
        await a.stop();
        await b.stop();
      }
    });

    it('a graceful stop releases the claim: another store may then use the namespace', async () => {
      const first = await createApp(configFor(await newDir()));
      await first.stop();
      const second = await createApp(configFor(await newDir()));
      await second.stop();
    });
  },
);
