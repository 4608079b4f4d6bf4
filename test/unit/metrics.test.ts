import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApolloServer } from '@apollo/server';
import { GraphQLError, buildSchema } from 'graphql';
import { Registry } from 'prom-client';
import { AppError } from '../../src/errors';
import { LabelGuard, OTHER_LABEL } from '../../src/observability/label-guard';
import { createDomainMetrics, METRICS } from '../../src/observability/metrics';
import { composePlugins } from '../../src/graphql/plugins/composite.plugin';
import { createMetricsPlugin, timeResolvers } from '../../src/graphql/plugins/metrics.plugin';
import { parseSamples, sampleValue } from '../helpers/prometheus-text';

const typeDefs = /* GraphQL */ `
  type Query {
    ok: String
    slow: String
    missing: String!
    partial: Partial
  }
  type Partial {
    fine: String
    broken: String
  }
`;

/** A small schema served by Apollo with only the metrics plugin, so counts come from the plugin alone. */
async function serverWith(registry: Registry, options: Partial<Parameters<typeof createMetricsPlugin>[0]> = {}) {
  const schema = buildSchema(typeDefs);
  const resolvers: Record<string, () => unknown> = {
    ok: () => 'ok',
    slow: () => new Promise((resolve) => setTimeout(() => resolve('slow'), 5)),
    missing: () => {
      throw new AppError('NOT_FOUND', 'nothing here');
    },
    partial: () => ({
      fine: 'yes',
      broken: () => {
        throw new Error('boom');
      },
    }),
  };
  for (const [name, resolve] of Object.entries(resolvers)) schema.getQueryType()!.getFields()[name]!.resolve = resolve;
  const server = new ApolloServer({
    schema: timeResolvers(schema, { registry, fields: ['Query.slow'] }),
    // What kbql's formatError does for AppErrors; unknown errors get a code outside the known list.
    formatError: (formatted, error) => {
      const original = (error as GraphQLError).originalError;
      if (original instanceof AppError) return { ...formatted, extensions: { code: original.code } };
      if (formatted.extensions?.code === 'INTERNAL_SERVER_ERROR') return { ...formatted, extensions: { code: 'SOMETHING_ODD' } };
      return formatted;
    },
    plugins: [composePlugins([createMetricsPlugin({ registry, ...options })])],
  });
  await server.start();
  return server;
}

async function samplesOf(registry: Registry) {
  return parseSamples(await registry.metrics());
}

describe('LabelGuard', () => {
  it('admits names up to its cap, always admits the allow-list, and folds the rest into one value', () => {
    const guard = new LabelGuard(2, new Set(['Known']));
    assert.equal(guard.value('A'), 'A');
    assert.equal(guard.value('B'), 'B');
    assert.equal(guard.value('C'), OTHER_LABEL, 'past the cap');
    assert.equal(guard.value('A'), 'A', 'admitted names stay admitted');
    assert.equal(guard.value('Known'), 'Known', 'allow-list is outside the cap');
    assert.equal(guard.value(null), OTHER_LABEL, 'anonymous');
    assert.equal(guard.value(''), OTHER_LABEL);
    const fresh = new LabelGuard(10);
    assert.equal(fresh.value('not a name'), OTHER_LABEL, 'malformed');
    assert.equal(fresh.value(`A${'x'.repeat(64)}`), OTHER_LABEL, 'too long');
  });
});

describe('createMetricsPlugin', () => {
  it('counts requests by operation, type and outcome, errors by code, and times only the listed fields', async () => {
    const registry = new Registry();
    const server = await serverWith(registry);
    try {
      await server.executeOperation({ query: 'query Good { ok }' });
      await server.executeOperation({ query: 'query Good { ok }' });
      await server.executeOperation({ query: 'query Slow { slow ok }' });
      await server.executeOperation({ query: 'query Missing { missing }' });
      await server.executeOperation({ query: 'query Partial { partial { fine broken } }' });
      await server.executeOperation({ query: '{ ok }' });
      await server.executeOperation({ query: 'query Invalid { nope }' });
      await server.executeOperation({ query: 'query Broken {' });

      const s = await samplesOf(registry);
      const requests = (labels: Record<string, string>) => sampleValue(s, METRICS.graphqlRequests, labels);
      assert.equal(requests({ operation: 'Good', type: 'query', outcome: 'ok' }), 2);
      assert.equal(requests({ operation: 'Slow', type: 'query', outcome: 'ok' }), 1);
      assert.equal(requests({ operation: 'Missing', type: 'query', outcome: 'error' }), 1);
      assert.equal(requests({ operation: 'Partial', type: 'query', outcome: 'partial' }), 1);
      // Anonymous, never-resolved (validation failure) and unparsable operations are folded together.
      assert.equal(requests({ operation: OTHER_LABEL, type: 'query', outcome: 'ok' }), 1);
      assert.equal(requests({ operation: OTHER_LABEL, type: 'unknown', outcome: 'error' }), 2);

      const errors = (labels: Record<string, string>) => sampleValue(s, METRICS.graphqlErrors, labels);
      assert.equal(errors({ operation: 'Missing', code: 'NOT_FOUND' }), 1);
      assert.equal(errors({ operation: 'Partial', code: OTHER_LABEL }), 1, 'a code outside the known list is folded');
      assert.equal(errors({ operation: OTHER_LABEL, code: 'GRAPHQL_VALIDATION_FAILED' }), 1);
      assert.equal(errors({ operation: OTHER_LABEL, code: 'GRAPHQL_PARSE_FAILED' }), 1);

      assert.equal(sampleValue(s, `${METRICS.graphqlRequestDuration}_count`, { operation: 'Good' }), 2);
      assert.equal(sampleValue(s, `${METRICS.graphqlResolverDuration}_count`, { field: 'Query.slow' }), 1);
      assert.ok(sampleValue(s, `${METRICS.graphqlResolverDuration}_sum`, { field: 'Query.slow' })! > 0);
      assert.equal(
        s.filter((x) => x.name.startsWith(METRICS.graphqlResolverDuration) && x.labels.field !== 'Query.slow').length,
        0,
        'unlisted fields are not timed',
      );
      assert.equal(sampleValue(s, METRICS.graphqlRequestsActive), 0);
    } finally {
      await server.stop();
    }
  });

  it('counts a request as active while it runs', async () => {
    const registry = new Registry();
    const schema = buildSchema('type Query { wait: String }');
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    schema.getQueryType()!.getFields().wait!.resolve = async () => {
      started();
      await released;
      return 'done';
    };
    const server = new ApolloServer({ schema, plugins: [composePlugins([createMetricsPlugin({ registry })])] });
    await server.start();
    try {
      const pending = server.executeOperation({ query: '{ wait }' });
      await running;
      assert.equal(sampleValue(await samplesOf(registry), METRICS.graphqlRequestsActive), 1);
      release();
      await pending;
      assert.equal(sampleValue(await samplesOf(registry), METRICS.graphqlRequestsActive), 0);
    } finally {
      await server.stop();
    }
  });

  it('keeps operation label values bounded by the cap, with the allow-list on top', async () => {
    const registry = new Registry();
    const server = await serverWith(registry, { maxOperationNames: 3, operationNames: ['Pinned'] });
    try {
      for (let i = 0; i < 20; i++) await server.executeOperation({ query: `query Op${i} { ok }` });
      await server.executeOperation({ query: 'query Pinned { ok }' });
      const s = await samplesOf(registry);
      const operations = new Set(s.filter((x) => x.name === METRICS.graphqlRequests).map((x) => x.labels.operation));
      assert.deepEqual([...operations].sort(), ['Op0', 'Op1', 'Op2', 'Pinned', OTHER_LABEL].sort());
      assert.equal(sampleValue(s, METRICS.graphqlRequests, { operation: OTHER_LABEL }), 17);
    } finally {
      await server.stop();
    }
  });

  it('shares one set of metrics between plugins on the same registry', async () => {
    const registry = new Registry();
    createMetricsPlugin({ registry });
    const server = await serverWith(registry);
    try {
      await server.executeOperation({ query: 'query Good { ok }' });
      assert.equal(sampleValue(await samplesOf(registry), METRICS.graphqlRequests, { operation: 'Good' }), 1);
    } finally {
      await server.stop();
    }
  });
});

describe('createDomainMetrics', () => {
  it('exports every domain metric under kbql_<area>_<what>_<unit>, and Node metrics with the kbql_ prefix', async () => {
    const registry = new Registry();
    createDomainMetrics({ registry });
    createMetricsPlugin({ registry });
    const names = registry.getMetricsAsArray().map((m) => m.name);
    for (const name of Object.values(METRICS)) assert.ok(names.includes(name), `${name} is registered`);
    for (const name of names) assert.match(name, /^kbql_[a-z]+_[a-z0-9_]+$/, name);
    const types = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
    for (const [name, type] of types) {
      if (type === 'counter') assert.match(name, /_total$/, `counter ${name}`);
      if (type === 'histogram' && name.startsWith('kbql_') && !name.startsWith('kbql_nodejs_'))
        assert.match(name, /_(seconds|texts)$/, `histogram ${name}`);
    }
    assert.ok(names.includes('kbql_process_cpu_seconds_total'));
    assert.ok(names.includes('kbql_nodejs_eventloop_lag_p99_seconds'));
  });

  it('counts cache hits, misses and bypasses by kind, with the kinds bounded', async () => {
    const registry = new Registry();
    const metrics = createDomainMetrics({ registry, defaultMetrics: false, maxCacheKinds: 2 });
    metrics.cache.hit('embedding');
    metrics.cache.hit('embedding');
    metrics.cache.miss('embedding');
    metrics.cache.bypass('search');
    metrics.cache.hit('third');
    const s = await samplesOf(registry);
    assert.equal(sampleValue(s, METRICS.cacheRequests, { cache: 'embedding', result: 'hit' }), 2);
    assert.equal(sampleValue(s, METRICS.cacheRequests, { cache: 'embedding', result: 'miss' }), 1);
    assert.equal(sampleValue(s, METRICS.cacheRequests, { cache: 'search', result: 'bypass' }), 1);
    assert.equal(sampleValue(s, METRICS.cacheRequests, { cache: OTHER_LABEL, result: 'hit' }), 1);
  });

  it('reads index sizes per tenant (never per collection name) and dependency states at scrape time, keeping the last values when a read fails', async () => {
    const registry = new Registry();
    let sizes: () => Promise<{ tenant: string; documents: number; chunks: number }[]> = async () => [
      { tenant: 'acme', documents: 2, chunks: 7 },
      { tenant: 'acme', documents: 1, chunks: 3 },
      { tenant: 'globex', documents: 0, chunks: 0 },
    ];
    let reads = 0;
    createDomainMetrics({
      registry,
      defaultMetrics: false,
      collectionSizes: () => {
        reads++;
        return sizes();
      },
      dependencies: async () => [
        { name: 'store', critical: true, ok: true },
        { name: 'redis', critical: false, ok: false },
      ],
    });
    let s = await samplesOf(registry);
    assert.equal(sampleValue(s, METRICS.tenantCollections, { tenant: 'acme' }), 2);
    assert.equal(
      sampleValue(s, METRICS.tenantDocuments, { tenant: 'acme' }),
      3,
      'two collections of one tenant are summed, not merged by name',
    );
    assert.equal(sampleValue(s, METRICS.tenantChunks, { tenant: 'acme' }), 10);
    assert.equal(sampleValue(s, METRICS.tenantChunks, { tenant: 'globex' }), 0);
    assert.ok(
      s.every((x) => !('collection' in x.labels)),
      'no collection label',
    );
    assert.equal(reads, 1, 'one store read per scrape for every size gauge');
    assert.equal(sampleValue(s, METRICS.dependencyUp, { dependency: 'store', critical: 'true' }), 1);
    assert.equal(sampleValue(s, METRICS.dependencyUp, { dependency: 'redis', critical: 'false' }), 0);

    sizes = async () => {
      throw new Error('store down');
    };
    s = await samplesOf(registry);
    assert.equal(sampleValue(s, METRICS.tenantChunks, { tenant: 'acme' }), 10, 'last values kept');

    sizes = async () => [{ tenant: 'acme', documents: 3, chunks: 9 }];
    s = await samplesOf(registry);
    assert.equal(sampleValue(s, METRICS.tenantDocuments, { tenant: 'acme' }), 3);
    assert.equal(sampleValue(s, METRICS.tenantDocuments, { tenant: 'globex' }), undefined, 'a tenant without collections disappears');
  });

  it('bounds the tenant label: past maxTenantLabels the rest are summed into __other__', async () => {
    const registry = new Registry();
    const sizes = Array.from({ length: 5 }, (_, i) => ({ tenant: `t${i}`, documents: 1, chunks: 2 }));
    createDomainMetrics({ registry, defaultMetrics: false, maxTenantLabels: 3, collectionSizes: async () => sizes });
    const s = await samplesOf(registry);
    assert.deepEqual(
      s.filter((x) => x.name === METRICS.tenantDocuments).map((x) => [x.labels.tenant, x.value]),
      [
        ['t0', 1],
        ['t1', 1],
        ['t2', 1],
        [OTHER_LABEL, 2],
      ],
    );
  });

  it('records provider calls, batch sizes, store calls, synthesis and ingestion', async () => {
    const registry = new Registry();
    const metrics = createDomainMetrics({ registry, defaultMetrics: false });
    metrics.embedding.call('openai:m', 'ok', 0.2);
    metrics.embedding.call('openai:m', 'error', 1);
    metrics.embedding.batch('openai:m', 100);
    metrics.embedding.batch('openai:m', 3);
    metrics.store.call('embedded', 'search', 'VECTOR', 0.01, false);
    metrics.store.call('embedded', 'search', 'VECTOR', 0.01, true);
    metrics.synthesis.call('extractive', 'abstained', 0.001);
    metrics.ingestion.documents('indexed', 5);
    metrics.ingestion.documents('failed', 0);
    metrics.ingestion.chunks(12);
    const s = await samplesOf(registry);
    assert.equal(sampleValue(s, METRICS.embeddingProviderCalls, { embedder: 'openai:m', outcome: 'error' }), 1);
    assert.equal(sampleValue(s, `${METRICS.embeddingProviderDuration}_count`, { embedder: 'openai:m' }), 2);
    assert.equal(sampleValue(s, `${METRICS.embeddingBatchSize}_sum`, { embedder: 'openai:m' }), 103);
    assert.equal(sampleValue(s, `${METRICS.embeddingBatchSize}_bucket`, { embedder: 'openai:m', le: '4' }), 1);
    assert.equal(sampleValue(s, `${METRICS.storeQueryDuration}_count`, { adapter: 'embedded', operation: 'search', mode: 'VECTOR' }), 2);
    assert.equal(sampleValue(s, METRICS.storeErrors, { adapter: 'embedded', operation: 'search' }), 1);
    assert.equal(sampleValue(s, `${METRICS.synthesisDuration}_count`, { synthesizer: 'extractive', outcome: 'abstained' }), 1);
    assert.equal(sampleValue(s, METRICS.ingestionDocuments, { status: 'indexed' }), 5);
    assert.equal(sampleValue(s, METRICS.ingestionDocuments, { status: 'failed' }), undefined);
    assert.equal(sampleValue(s, METRICS.ingestionChunks), 12);
  });
});
