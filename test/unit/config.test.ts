import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/config';

/** docs/configuration.md: its table (written by test/helpers/config-table.ts) is checked against CONFIG_VARIABLES. */
const CONFIG_DOC = readFileSync(path.resolve(__dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');

describe('config', () => {
  it('has working defaults: embedded store, offline embedder and synthesizer', () => {
    const config = loadConfig({});
    assert.equal(config.port, 4000);
    assert.equal(config.store.kind, 'embedded');
    assert.deepEqual({ kind: config.embedder.kind, dims: config.embedder.dimensions }, { kind: 'hash', dims: 1024 });
    assert.equal(config.synthesizer.kind, 'extractive');
    assert.ok(path.isAbsolute(config.dataDir));
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.limits));
  });

  it('reports every problem at once', () => {
    try {
      loadConfig({ PORT: 'abc', KBQL_EMBEDDER: 'openai', KBQL_HYBRID_ALPHA: '2' });
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      const text = error.problems.join('\n');
      for (const name of ['PORT', 'KBQL_HYBRID_ALPHA', 'KBQL_EMBEDDING_MODEL', 'KBQL_EMBEDDING_DIMENSIONS']) {
        assert.match(text, new RegExp(name), `${name} should be reported`);
      }
    }
  });

  it('requires overlap smaller than chunk size and topK defaults within the max', () => {
    assert.throws(() => loadConfig({ KBQL_DEFAULT_CHUNK_SIZE: '64', KBQL_DEFAULT_CHUNK_OVERLAP: '64' }), /OVERLAP/);
    assert.throws(() => loadConfig({ KBQL_MAX_TOP_K: '5', KBQL_DEFAULT_TOP_K: '10' }), /KBQL_DEFAULT_TOP_K/);
  });

  it('builds provider settings from the environment', () => {
    const config = loadConfig({
      KBQL_EMBEDDER: 'openai',
      KBQL_EMBEDDING_MODEL: 'text-embedding-3-small',
      KBQL_EMBEDDING_DIMENSIONS: '1536',
      OPENAI_BASE_URL: 'http://127.0.0.1:8000/v1',
    });
    assert.equal(config.embedder.kind, 'openai');
    assert.equal(config.embedder.dimensions, 1536);
    if (config.embedder.kind === 'openai') {
      assert.equal(config.embedder.baseUrl, 'http://127.0.0.1:8000/v1');
      assert.equal(config.embedder.batchSize, 256);
      assert.equal(config.embedder.apiKey, null);
    }
  });

  it('selects Weaviate with its settings, and requires its URL', () => {
    assert.throws(() => loadConfig({ KBQL_STORE: 'weaviate' }), /WEAVIATE_URL is required/);
    const config = loadConfig({
      KBQL_STORE: 'weaviate',
      WEAVIATE_URL: 'http://127.0.0.1:8080',
      KBQL_WEAVIATE_MULTI_TENANT: 'true',
      KBQL_WEAVIATE_TENANT: 'acme',
    });
    assert.equal(config.store.kind, 'weaviate');
    if (config.store.kind === 'weaviate') {
      assert.equal(config.store.grpcPort, 50051);
      assert.equal(config.store.prefix, 'Kbql');
      assert.equal(config.store.tenant, 'acme');
    }
    assert.throws(
      () => loadConfig({ KBQL_STORE: 'weaviate', WEAVIATE_URL: 'http://x', KBQL_WEAVIATE_MULTI_TENANT: 'true' }),
      /KBQL_WEAVIATE_TENANT/,
    );
  });

  it('takes a Redis password with /, # and ? (openssl rand -base64) in REDIS_PASSWORD and applies it to the one Redis URL', () => {
    const password = 'a/b#c?d+e=f@g%h';
    const config = loadConfig({ REDIS_URL: 'redis://redis:6379/2', REDIS_PASSWORD: password });
    const url = new URL(config.cache.redisUrl!);
    assert.equal(decodeURIComponent(url.password), password);
    assert.equal(url.hostname, 'redis');
    assert.equal(url.port, '6379');
    assert.equal(url.pathname, '/2');
    assert.equal(config.jobs.queue, 'redis');
    assert.throws(() => loadConfig({ REDIS_PASSWORD: password }), /REDIS_PASSWORD is set but REDIS_URL is not/);
    assert.throws(
      () => loadConfig({ REDIS_URL: 'redis://:x@redis:6379', REDIS_PASSWORD: password }),
      /leave the password out of REDIS_URL/,
    );
  });

  it('refuses a REDIS_URL with an unencoded password saying what to do, without repeating the password', () => {
    const password = 'Zm9v/YmFy#cXV4?';
    try {
      loadConfig({ REDIS_URL: `redis://:${password}@redis:6379` });
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /REDIS_URL/);
      assert.match(error.message, /set REDIS_PASSWORD/);
      assert.match(error.message, /percent-encode/);
      assert.ok(!error.message.includes(password), 'the password is not in the error');
    }
  });

  it('serves metrics on their own port 9464 by default in production, on the main port otherwise or when asked', () => {
    const prod = { NODE_ENV: 'production', KBQL_JWT_SECRET: 's'.repeat(48) };
    assert.equal(loadConfig(prod).metrics.port, 9464);
    assert.equal(loadConfig({ ...prod, KBQL_METRICS_PORT: '9100' }).metrics.port, 9100);
    assert.equal(loadConfig({ ...prod, KBQL_METRICS_PORT: 'main' }).metrics.port, null);
    assert.equal(loadConfig({ NODE_ENV: 'development' }).metrics.port, null);
    assert.equal(loadConfig({ NODE_ENV: 'test' }).metrics.port, null);
  });

  it('documents every variable in the docs/configuration.md table with its default', () => {
    for (const [name, spec] of Object.entries(CONFIG_VARIABLES)) {
      const row = CONFIG_DOC.split('\n').find((line) => line.startsWith(`| \`${name}\``));
      assert.ok(row, `docs/configuration.md has no row for ${name}`);
      if (spec.default !== '')
        assert.ok(row.includes(`\`${spec.default}\``), `docs/configuration.md row of ${name} should show default ${spec.default}`);
    }
  });
});
