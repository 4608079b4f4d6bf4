import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';
import { ApolloServer } from '@apollo/server';
import { context, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { buildSchema, type GraphQLSchema } from 'graphql';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { Registry } from 'prom-client';
import { loadConfig } from '../../src/config';
import { AppError } from '../../src/errors';
import { SPAN_ATTRIBUTES as A } from '../../src/observability/attributes';
import { createTelemetry, instrumentEmbedder, instrumentStore, instrumentSynthesizer } from '../../src/observability/instrumentation';
import { createDomainMetrics, METRICS } from '../../src/observability/metrics';
import { composePlugins } from '../../src/graphql/plugins/composite.plugin';
import { bindResolversToTrace, createTracingPlugin } from '../../src/graphql/plugins/tracing.plugin';
import { wrapResolvers } from '../../src/app/graphql-server';
import { RecordedContextManager } from '../../src/observability/context-manager';
import { attachRequestRecord } from '../../src/observability/request-record';
import { startTracing } from '../../src/observability/tracing-sdk';
import type { AnswerSynthesizer } from '../../src/ports/answer-synthesizer.port';
import type { Embedder } from '../../src/ports/embedder.port';
import type { KnowledgeStore, SearchHit } from '../../src/ports/knowledge-store.port';
import { parseSamples, sampleValue } from '../helpers/prometheus-text';

// One SDK for this test process (node --test runs each file in its own process).
const exporter = new InMemorySpanExporter();
const sdk = startTracing({ serviceName: 'kbql-test', exporter, exportEachSpan: true });
after(() => sdk.shutdown());
beforeEach(() => exporter.reset());

const tracer = trace.getTracer('test');
const spans = () => exporter.getFinishedSpans();
const named = (name: string): ReadableSpan => {
  const found = spans().filter((s) => s.name === name);
  assert.equal(
    found.length,
    1,
    `one span named ${name}; got ${spans()
      .map((s) => s.name)
      .join(', ')}`,
  );
  return found[0]!;
};
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
/** Runs `work` inside a recorded span, as a sampled request's resolver runs: kbql's own spans are its children. */
const inRequest = <T>(work: () => Promise<T>): Promise<T> =>
  tracer.startActiveSpan('request', async (span) => {
    try {
      return await work();
    } finally {
      span.end();
    }
  });

async function tracedServer() {
  const schema = buildSchema('type Query { work: Item, fail: String, carrying: Boolean } type Item { nested: String }');
  schema.getQueryType()!.getFields().work!.resolve = () =>
    tracer.startActiveSpan('resolver.work', async (span) => {
      await new Promise((resolve) => setImmediate(resolve));
      span.end();
      return {};
    });
  // Whether a context is being carried across await while a resolver runs.
  schema.getQueryType()!.getFields().carrying!.resolve = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    return sdk.contextManager.carrying;
  };
  schema.getQueryType()!.getFields().fail!.resolve = () => {
    throw new AppError('NOT_FOUND', 'nope');
  };
  (schema.getType('Item') as import('graphql').GraphQLObjectType).getFields().nested!.resolve = async () => {
    // Runs in a promise continuation of the root resolver: only bindResolversToTrace puts it under execute.
    tracer.startSpan('resolver.nested').end();
    return 'n';
  };
  const server = new ApolloServer({
    schema: bindResolversToTrace(schema),
    plugins: [composePlugins([createTracingPlugin()])],
    formatError: (formatted, error) => {
      const original = (error as { originalError?: unknown }).originalError;
      return original instanceof AppError ? { ...formatted, extensions: { code: original.code } } : formatted;
    },
  });
  await server.start();
  return server;
}

describe('createTracingPlugin + bindResolversToTrace', () => {
  it('builds operation → parse/validate/execute → resolver spans under the active context', async () => {
    const server = await tracedServer();
    try {
      await tracer.startActiveSpan('outer', async (outer) => {
        await server.executeOperation({ query: 'query Work { work { nested } }', variables: { secret: 's3cr3t' } });
        outer.end();
      });
      const outer = named('outer');
      const operation = named('query Work');
      assert.equal(parentOf(operation), outer.spanContext().spanId);
      assert.equal(operation.attributes[A.operationName], 'Work');
      assert.equal(operation.attributes[A.operationType], 'query');
      for (const phase of ['graphql.parse', 'graphql.validate', 'graphql.execute']) {
        assert.equal(parentOf(named(phase)), operation.spanContext().spanId, `${phase} is a child of the operation`);
      }
      const execute = named('graphql.execute');
      assert.equal(parentOf(named('resolver.work')), execute.spanContext().spanId);
      assert.equal(parentOf(named('resolver.nested')), execute.spanContext().spanId, 'nested resolvers too');
      assert.equal(operation.status.code, SpanStatusCode.UNSET);
      assert.ok(!JSON.stringify(spans().map((s) => s.attributes)).includes('s3cr3t'), 'no variables on spans');
    } finally {
      await server.stop();
    }
  });

  it('hangs the operation off the span the HTTP layer attached, and starts nothing for one the sampler left out', async () => {
    const server = await tracedServer();
    try {
      const http = tracer.startSpan('POST /graphql');
      const contextValue = {};
      attachRequestRecord(contextValue, trace.setSpan(ROOT_CONTEXT, http));
      await server.executeOperation({ query: 'query Work { work { nested } }' }, { contextValue });
      assert.equal(parentOf(named('query Work')), http.spanContext().spanId, 'not the active context: none is');
      assert.equal(parentOf(named('resolver.nested')), named('graphql.execute').spanContext().spanId);

      exporter.reset();
      const skipped = {};
      attachRequestRecord(skipped, trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext({ ...UNSAMPLED })));
      const seen = await server.executeOperation({ query: 'query Probe { carrying }' }, { contextValue: skipped });
      assert.deepEqual(
        seen.body.kind === 'single' && { ...seen.body.singleResult.data },
        { carrying: false },
        'no context carried across await',
      );
      const recorded = {};
      attachRequestRecord(recorded, trace.setSpan(ROOT_CONTEXT, http));
      const traced = await server.executeOperation({ query: 'query Probe { carrying }' }, { contextValue: recorded });
      assert.deepEqual(
        traced.body.kind === 'single' && { ...traced.body.singleResult.data },
        { carrying: true },
        'a recorded request carries it',
      );
      assert.deepEqual(
        spans()
          .map((s) => s.name)
          .filter((name) => name.startsWith('graphql.') || name.startsWith('query')),
        ['graphql.execute', 'query Probe'],
        'only the recorded request has operation and execute spans',
      );
      http.end();
    } finally {
      await server.stop();
    }
  });

  it('carries the context of a recorded request only inside the resolver, not while the rate limit waits', async () => {
    const schema = buildSchema('type Query { carrying: Boolean }');
    schema.getQueryType()!.getFields().carrying!.resolve = async () => {
      await tick();
      return sdk.contextManager.carrying;
    };
    const whileLimiting: boolean[] = [];
    // A rate limit whose store answers after a round trip, as Redis does.
    const rateLimit = (s: GraphQLSchema) =>
      mapSchema(s, {
        [MapperKind.ROOT_OBJECT]: (type) => type,
        [MapperKind.OBJECT_FIELD]: (field) => {
          const inner = field.resolve!;
          return {
            ...field,
            resolve: async (...args: Parameters<typeof inner>) => {
              await tick();
              whileLimiting.push(sdk.contextManager.carrying);
              return inner(...args);
            },
          };
        },
      });
    const server = new ApolloServer({
      schema: wrapResolvers(schema, { registry: new Registry(), timeoutMs: 5_000, rateLimit }),
      plugins: [composePlugins([createTracingPlugin()])],
    });
    await server.start();
    try {
      const http = tracer.startSpan('POST /graphql');
      const contextValue = {};
      attachRequestRecord(contextValue, trace.setSpan(ROOT_CONTEXT, http));
      const result = await server.executeOperation({ query: '{ carrying }' }, { contextValue });
      http.end();
      assert.deepEqual(result.body.kind === 'single' && { ...result.body.singleResult.data }, { carrying: true }, 'inside the resolver');
      assert.deepEqual(whileLimiting, [false], 'not while the rate limit waits for its store');
    } finally {
      await server.stop();
    }
  });

  it('marks a failed operation with its error code, without the message', async () => {
    const server = await tracedServer();
    try {
      await server.executeOperation({ query: 'query Fail { fail }' });
      const operation = named('query Fail');
      assert.equal(operation.status.code, SpanStatusCode.ERROR);
      assert.equal(operation.attributes[A.errorCode], 'NOT_FOUND');
      assert.equal(operation.events.length, 0, 'no exception event (messages may carry input)');
      exporter.reset();
      await server.executeOperation({ query: 'query Bad { nope }' });
      assert.equal(named('graphql.validate').attributes[A.errorCode], 'GRAPHQL_VALIDATION_FAILED');
      assert.equal(
        named('graphql.operation').attributes[A.errorCode],
        'GRAPHQL_VALIDATION_FAILED',
        'never resolved: keeps its generic name',
      );
    } finally {
      await server.stop();
    }
  });
});

function fakeStore(overrides: Partial<KnowledgeStore> = {}): KnowledgeStore {
  const notUsed = () => Promise.reject(new Error('not used in this test'));
  return new Proxy({ kind: 'fake', ...overrides } as KnowledgeStore, {
    get: (target, key) => (key in target ? target[key as keyof KnowledgeStore] : key === 'upsertDocuments' ? undefined : notUsed),
    has: (target, key) => key in target,
  });
}

describe('port wrappers', () => {
  it('instrumentStore: a kbql.store.* span and a latency sample per call, errors counted', async () => {
    const registry = new Registry();
    const metrics = createDomainMetrics({ registry, defaultMetrics: false });
    const hits = [{}, {}, {}] as SearchHit[];
    const store = instrumentStore(
      fakeStore({
        search: async () => hits,
        getCollection: async () => {
          throw new AppError('UPSTREAM_UNAVAILABLE', 'down');
        },
      }),
      { metrics },
    );
    assert.equal(store.kind, 'fake');
    assert.equal(store.upsertDocuments, undefined, 'an optional method the adapter lacks stays absent');
    await inRequest(async () => {
      await store.search({ collectionId: 'c', mode: 'KEYWORD', text: 'secret query text', alpha: 0.5, limit: 7, offset: 0 });
      await assert.rejects(store.getCollection('x'), /down/);
    });

    const search = named('kbql.store.search');
    assert.deepEqual(search.attributes, { [A.storeAdapter]: 'fake', [A.searchMode]: 'KEYWORD', [A.topK]: 7, [A.storeResults]: 3 });
    const failed = named('kbql.store.getCollection');
    assert.equal(failed.status.code, SpanStatusCode.ERROR);
    assert.equal(failed.attributes[A.errorCode], 'UPSTREAM_UNAVAILABLE');

    const s = parseSamples(await registry.metrics());
    assert.equal(sampleValue(s, `${METRICS.storeQueryDuration}_count`, { adapter: 'fake', operation: 'search', mode: 'KEYWORD' }), 1);
    assert.equal(sampleValue(s, `${METRICS.storeQueryDuration}_count`, { adapter: 'fake', operation: 'getCollection', mode: 'none' }), 1);
    assert.equal(sampleValue(s, METRICS.storeErrors, { adapter: 'fake', operation: 'getCollection' }), 1);
    assert.equal(sampleValue(s, METRICS.storeErrors, { adapter: 'fake', operation: 'search' }), undefined);
  });

  it('instrumentStore keeps the bulk write when the adapter has it', async () => {
    const metrics = createDomainMetrics({ registry: new Registry(), defaultMetrics: false });
    const store = instrumentStore(fakeStore({ upsertDocuments: async () => [] }), { metrics });
    assert.equal(typeof store.upsertDocuments, 'function');
    await inRequest(() => store.upsertDocuments!('c', []));
    assert.equal(named('kbql.store.upsertDocuments').attributes[A.storeItems], 0);
  });

  it('instrumentEmbedder: a kbql.embed span with the batch size; provider calls by outcome', async () => {
    const registry = new Registry();
    const metrics = createDomainMetrics({ registry, defaultMetrics: false });
    let fail = false;
    const inner: Embedder = {
      info: { name: 'fake-embedder', dimensions: 2 },
      maxBatchSize: 8,
      embed: async (texts) => {
        if (fail) throw new AppError('UPSTREAM_TIMEOUT', 'slow');
        return texts.map(() => new Float32Array([1, 0]));
      },
    };
    const embedder = instrumentEmbedder(inner, { metrics });
    assert.deepEqual(embedder.info, inner.info);
    assert.equal(embedder.maxBatchSize, 8);
    await inRequest(async () => {
      assert.equal((await embedder.embed(['a', 'b', 'c'])).length, 3);
      fail = true;
      await assert.rejects(embedder.embed(['d']), /slow/);
    });
    const [ok, failed] = spans().filter((s) => s.name === 'kbql.embed');
    assert.deepEqual(ok!.attributes, { [A.embedder]: 'fake-embedder', [A.batchSize]: 3 });
    assert.equal(failed!.attributes[A.errorCode], 'UPSTREAM_TIMEOUT');
    const s = parseSamples(await registry.metrics());
    assert.equal(sampleValue(s, METRICS.embeddingProviderCalls, { embedder: 'fake-embedder', outcome: 'ok' }), 1);
    assert.equal(sampleValue(s, METRICS.embeddingProviderCalls, { embedder: 'fake-embedder', outcome: 'error' }), 1);
  });

  it('instrumentSynthesizer: a kbql.synthesize span with counts, never the question', async () => {
    const registry = new Registry();
    const metrics = createDomainMetrics({ registry, defaultMetrics: false });
    const inner: AnswerSynthesizer = {
      name: 'fake-synth',
      synthesize: async () => ({ answer: null, abstained: true, abstentionReason: 'not found', citations: [], unsupportedMarkers: [] }),
    };
    const synthesizer = instrumentSynthesizer(inner, { metrics });
    assert.equal(synthesizer.name, 'fake-synth');
    await inRequest(() => synthesizer.synthesize({ question: 'what is the secret?', sources: [] }));
    const span = named('kbql.synthesize');
    assert.deepEqual(span.attributes, { [A.synthesizer]: 'fake-synth', [A.sourceCount]: 0, [A.abstained]: true, [A.citationCount]: 0 });
    const s = parseSamples(await registry.metrics());
    assert.equal(sampleValue(s, `${METRICS.synthesisDuration}_count`, { synthesizer: 'fake-synth', outcome: 'abstained' }), 1);
  });

  it('createTelemetry: active domain spans with facts; ingestion counts become metrics', async () => {
    const registry = new Registry();
    const metrics = createDomainMetrics({ registry, defaultMetrics: false });
    const telemetry = createTelemetry({ metrics });
    await inRequest(async () => {
      await telemetry.run('kbql.retrieve', { mode: 'HYBRID', topK: 5 }, async (note) => {
        await new Promise((resolve) => setImmediate(resolve));
        tracer.startSpan('inside').end();
        note({ collection: 'handbook', hitCount: 4 });
      });
      await telemetry.run('kbql.ingest', { documentCount: 3 }, async (note) =>
        note({ indexed: 2, unchanged: 0, failed: 1, chunkCount: 9 }),
      );
      await assert.rejects(
        telemetry.run('kbql.ingest', { documentCount: 1 }, async () => {
          throw new AppError('NOT_FOUND', 'no collection');
        }),
      );
    });
    const retrieve = named('kbql.retrieve');
    assert.deepEqual(retrieve.attributes, { [A.searchMode]: 'HYBRID', [A.topK]: 5, [A.collection]: 'handbook', [A.hitCount]: 4 });
    assert.equal(parentOf(named('inside')), retrieve.spanContext().spanId, 'the span is active inside the work, past an await');

    const failed = spans().filter((s) => s.name === 'kbql.ingest')[1]!;
    assert.equal(failed.attributes[A.errorCode], 'NOT_FOUND');
    const s = parseSamples(await registry.metrics());
    assert.equal(sampleValue(s, METRICS.ingestionDocuments, { status: 'indexed' }), 2);
    assert.equal(sampleValue(s, METRICS.ingestionDocuments, { status: 'failed' }), 1);
    assert.equal(sampleValue(s, METRICS.ingestionChunks), 9);
  });
});

describe('sampled-out requests', () => {
  it('start no span inside a span that is not recorded, and still count their metrics', async () => {
    const registry = new Registry();
    const metrics = createDomainMetrics({ registry, defaultMetrics: false });
    const store = instrumentStore(fakeStore({ search: async () => [] }), { metrics });
    const telemetry = createTelemetry({ metrics });
    let startedInside = 0;
    const counting = {
      ...tracer,
      startSpan: (...args: Parameters<typeof tracer.startSpan>) => (startedInside++, tracer.startSpan(...args)),
      startActiveSpan: ((...args: unknown[]) => {
        startedInside++;
        return (tracer.startActiveSpan as (...a: unknown[]) => unknown)(...args);
      }) as typeof tracer.startActiveSpan,
    };
    const countedStore = instrumentStore(fakeStore({ search: async () => [] }), { metrics, tracer: counting });
    const unrecorded = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 0 });
    await context.with(trace.setSpan(context.active(), unrecorded), async () => {
      await store.search({ collectionId: 'c', mode: 'KEYWORD', text: 'q', alpha: 0.5, limit: 3, offset: 0 });
      await countedStore.search({ collectionId: 'c', mode: 'KEYWORD', text: 'q', alpha: 0.5, limit: 3, offset: 0 });
      await telemetry.run('kbql.ingest', { documentCount: 1 }, async (note) =>
        note({ indexed: 1, unchanged: 0, failed: 0, chunkCount: 2 }),
      );
    });
    assert.equal(startedInside, 0, 'no span object was made');
    assert.deepEqual(spans(), [], 'nothing exported');
    const s = parseSamples(await registry.metrics());
    assert.equal(sampleValue(s, `${METRICS.storeQueryDuration}_count`, { adapter: 'fake', operation: 'search', mode: 'KEYWORD' }), 2);
    assert.equal(sampleValue(s, METRICS.ingestionDocuments, { status: 'indexed' }), 1);
    assert.equal(sampleValue(s, METRICS.ingestionChunks), 2);

    // Outside any span: no orphan trace either; a job's own operation starts one.
    await countedStore.search({ collectionId: 'c', mode: 'KEYWORD', text: 'q', alpha: 0.5, limit: 3, offset: 0 });
    assert.equal(startedInside, 0);
    await telemetry.run('kbql.reembed', { collection: 'c' }, () =>
      countedStore.search({ collectionId: 'c', mode: 'KEYWORD', text: 'q', alpha: 0.5, limit: 3, offset: 0 }),
    );
    assert.equal(startedInside, 1, 'the store call is a child of kbql.reembed');
    assert.equal(parentOf(named('kbql.store.search')), named('kbql.reembed').spanContext().spanId);
  });
});

const UNSAMPLED = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 0 };
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('RecordedContextManager', () => {
  it('carries a recorded context across await, an unrecorded one only synchronously, and then switches off', async () => {
    const manager = new RecordedContextManager();
    const recordedSpan = tracer.startSpan('recorded');
    const recorded = trace.setSpan(ROOT_CONTEXT, recordedSpan);
    const unrecorded = trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext(UNSAMPLED));
    const seen: unknown[] = [];
    await manager.with(unrecorded, async () => {
      seen.push(manager.active());
      await tick();
      seen.push(manager.active());
    });
    assert.deepEqual(seen, [unrecorded, ROOT_CONTEXT]);
    assert.equal(manager.carrying, false, 'never switched on for a context that records nothing');

    seen.length = 0;
    const work = manager.with(recorded, async () => {
      await tick();
      seen.push(manager.active());
      // Inside a recorded scope, another context replaces it for its own work, and is carried.
      await manager.with(unrecorded, async () => {
        await tick();
        seen.push(manager.active());
      });
      await tick();
      seen.push(manager.active());
      return 'done';
    });
    assert.equal(manager.carrying, true);
    assert.equal(await work, 'done');
    assert.deepEqual(seen, [recorded, unrecorded, recorded]);
    assert.equal(manager.openScopes, 0);
    assert.equal(manager.carrying, false, 'off once the last recorded scope settled');

    await assert.rejects(
      manager.with(recorded, async () => {
        await tick();
        throw new Error('failed');
      }),
      /failed/,
    );
    assert.equal(manager.carrying, false, 'a failed scope settles too');
    assert.equal(manager.bind(recorded, () => manager.active())(), recorded);
    recordedSpan.end();
  });
});

describe('observability config', () => {
  it('turns tracing on only when an OTLP endpoint or OTEL_TRACES_EXPORTER asks for it', () => {
    assert.equal(loadConfig({}).tracing.exporter, null);
    assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing.exporter, 'otlp');
    assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }).tracing.exporter, 'otlp');
    assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }).tracing.exporter, null);
    assert.equal(loadConfig({ OTEL_TRACES_EXPORTER: 'console' }).tracing.exporter, 'console');
    assert.equal(loadConfig({}).tracing.serviceName, 'kbql');
    assert.throws(() => loadConfig({ OTEL_TRACES_EXPORTER: 'zipkin' }), /OTEL_TRACES_EXPORTER/);
    assert.throws(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector:4317' }), /OTEL_EXPORTER_OTLP_ENDPOINT/);
  });

  it('serves metrics on the main port unless KBQL_METRICS_PORT is set', () => {
    assert.equal(loadConfig({}).metrics.port, null);
    assert.equal(loadConfig({ KBQL_METRICS_PORT: '9464' }).metrics.port, 9464);
    assert.throws(() => loadConfig({ KBQL_METRICS_PORT: '70000' }), /KBQL_METRICS_PORT/);
  });
});
