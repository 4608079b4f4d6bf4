import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WeaviateKnowledgeStore } from '../../src/adapters/weaviate/weaviate.knowledge-store';
import { createApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { FakeWeaviate } from '../helpers/fake-weaviate';
import { redisCommand, redisServerAvailable, startOwnRedis, type OwnRedis } from '../helpers/redis';
import { gql, JWT_ENV, tokenFor } from '../helpers/security';

const skip = redisServerAvailable() ? false : 'redis-server is not installed';
const CREATE = 'mutation { createApiKey(name: "shared", role: READER) { secret apiKey { id } } }';
const WHO = '{ collections { totalCount } }';

/**
 * With the Weaviate store (here over the in-memory fake of its client) and REDIS_URL, API keys live in Redis, so
 * replicas that share no disk share the keys: minted on one, accepted on another, revoked everywhere.
 */
describe('security e2e: API keys in Redis shared by two replicas (Weaviate store)', { skip }, () => {
  let redis: OwnRedis;
  let dataDir: string;
  const apps: App[] = [];
  const urls: string[] = [];

  before(async () => {
    redis = await startOwnRedis();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-keys-redis-'));
    const fake = new FakeWeaviate();
    for (const cacheSeconds of ['30', '0']) {
      const config = loadConfig({
        NODE_ENV: 'test',
        KBQL_LOG_LEVEL: 'silent',
        KBQL_DATA_DIR: dataDir,
        PORT: '0',
        ...JWT_ENV,
        KBQL_STORE: 'weaviate',
        WEAVIATE_URL: 'http://weaviate.fake:8080',
        REDIS_URL: redis.url,
        KBQL_CACHE_PREFIX: 'keystest',
        KBQL_API_KEY_CACHE_SECONDS: cacheSeconds,
      });
      const store = new WeaviateKnowledgeStore(
        { url: 'http://weaviate.fake:8080', timeoutMs: 2_000, initTimeoutMs: 2_000, retries: 0 },
        { connect: fake.connect },
      );
      const app = await createApp(config, { store });
      apps.push(app);
      urls.push(await app.listen(0, '127.0.0.1'));
    }
  });
  after(async () => {
    for (const app of apps) await app.stop();
    await redis.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a key minted on replica 1 works on replica 2; revoked on 1, replica 2 refuses it (its cache is off here)', async () => {
    const admin = await tokenFor('ADMIN', 'acme');
    const made = await gql(urls[0]!, { query: CREATE }, admin);
    assert.equal(made.status, 200, JSON.stringify(made.json));
    const { secret, apiKey } = made.json.data!['createApiKey'];
    assert.equal(
      await stat(path.join(dataDir, 'api-keys.sqlite')).then(
        () => true,
        () => false,
      ),
      false,
      'not in the data dir',
    );
    assert.match(await redisCommand(redis.port, `EXISTS keystest:apikey:${apiKey.id}`), /:1/);
    assert.doesNotMatch(
      await redisCommand(redis.port, `HGETALL keystest:apikey:${apiKey.id}`),
      new RegExp(secret.slice(22)),
      'only the hash',
    );

    for (const url of urls) assert.equal((await gql(url, { query: WHO }, secret)).status, 200);
    const listed = await gql(urls[1]!, { query: '{ apiKeys { totalCount } }' }, admin);
    assert.equal(listed.json.data?.['apiKeys'].totalCount, 1, 'one list for every replica');

    const revoked = await gql(urls[0]!, { query: `mutation { revokeApiKey(id: "${apiKey.id}") { revokedAt } }` }, admin);
    assert.ok(revoked.json.data?.['revokeApiKey'].revokedAt);
    for (const url of urls) {
      const res = await gql(url, { query: WHO }, secret);
      assert.equal(res.status, 401, url);
      assert.equal(res.json.errors?.[0]?.extensions?.['reason'], 'API_KEY_REVOKED');
    }
  });

  it('with Redis down: a key not in the cache is 503 at once (never a hang, never accepted), a cached one and JWTs still work', async () => {
    const admin = await tokenFor('ADMIN', 'acme');
    const made = await gql(urls[0]!, { query: CREATE }, admin);
    const { secret } = made.json.data!['createApiKey'];
    assert.equal((await gql(urls[0]!, { query: WHO }, secret)).status, 200, 'now cached on replica 1 (30 s)');
    await redis.stop();
    const uncached = await gql(urls[1]!, { query: WHO }, secret);
    assert.equal(uncached.status, 503, JSON.stringify(uncached.json));
    assert.equal(uncached.json.errors?.[0]?.extensions?.['code'], 'UPSTREAM_UNAVAILABLE');
    assert.equal(uncached.json.data, undefined);
    assert.equal((await gql(urls[0]!, { query: WHO }, secret)).status, 200, 'the cached key keeps working');
    assert.equal((await gql(urls[1]!, { query: WHO }, admin)).status, 200, 'JWTs do not need the key store');
  });
});
