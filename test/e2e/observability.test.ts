import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { createLogger, REDACTED } from '../../src/logger';
import { SPAN_ATTRIBUTES } from '../../src/observability/attributes';
import { OTHER_LABEL } from '../../src/observability/label-guard';
import { METRICS } from '../../src/observability/metrics';
import { startTracing } from '../../src/observability/tracing-sdk';
import { graphqlRequest } from '../helpers/http';
import { metricTypes, parseSamples, sampleValue, type Sample } from '../helpers/prometheus-text';
import { createTestApp, type TestApp, startTestServer } from '../helpers/test-app';

// One tracing SDK for this test process, exporting to memory (node --test runs each file in its own process).
const exporter = new InMemorySpanExporter();
const sdk = startTracing({ serviceName: 'kbql-e2e', exporter, exportEachSpan: true });
after(() => sdk.shutdown());

const DOCS = [
  {
    id: 'vacation',
    title: 'Vacation policy',
    content: 'Employees receive 25 days of paid vacation per year. Unused days can be carried over until March 31.',
  },
  {
    id: 'laptops',
    title: 'Laptop refresh',
    content: 'Every engineer gets a new laptop every three years. Order it through the IT service desk.',
  },
  { id: 'blank', content: '   ' },
];
const QUESTION = 'How many vacation days do employees get?';
const TOKEN = 'Bearer kbql-test-token-0123456789';

type LooseBody = { data?: any; errors?: any[] };
const gql = (url: string, query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}) =>
  graphqlRequest<LooseBody>(url, query, variables, { headers });

async function scrape(url: string): Promise<{ text: string; samples: Sample[] }> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, samples: parseSamples(text) };
}

async function seed(url: string) {
  const created = await gql(url, 'mutation CreateCollection { createCollection(input: { name: "handbook" }) { id } }');
  assert.equal(created.body.errors, undefined);
  const ingest = await gql(
    url,
    'mutation Ingest($docs: [DocumentInput!]!) { ingestDocuments(collection: "handbook", documents: $docs) { indexed failed results { status chunkCount } } }',
    { docs: DOCS },
  );
  assert.equal(ingest.body.errors, undefined);
  assert.deepEqual([ingest.body.data.ingestDocuments.indexed, ingest.body.data.ingestDocuments.failed], [2, 1]);
  return (ingest.body.data.ingestDocuments.results as { chunkCount: number | null }[]).reduce((n, r) => n + (r.chunkCount ?? 0), 0);
}

describe('observability: /metrics after a scripted sequence', () => {
  let t: TestApp, url: string;
  before(async () => {
    ({ t, url } = await startTestServer());
  });
  after(() => t.close());

  it('exports each metric with the expected counts (ingest, re-ingest, search, ask, one failing call)', async () => {
    const chunks = await seed(url);
    assert.ok(chunks >= 2);
    const again = await gql(
      url,
      'mutation Reingest($docs: [DocumentInput!]!) { ingestDocuments(collection: "handbook", documents: $docs) { unchanged } }',
      {
        docs: [DOCS[0]],
      },
    );
    assert.equal(again.body.data.ingestDocuments.unchanged, 1);
    const search = await gql(url, 'query Search { search(collection: "handbook", query: "laptop", topK: 3) { hits { score } } }');
    assert.equal(search.body.errors, undefined);
    const ask = await gql(url, `query Ask { ask(collection: "handbook", question: "${QUESTION}") { answer abstained } }`);
    assert.equal(ask.body.data.ask.abstained, false);
    const failing = await gql(url, 'query AskMissing { ask(collection: "nowhere", question: "anything?") { answer } }');
    assert.equal(failing.body.errors?.[0]?.extensions?.code, 'NOT_FOUND');

    const { text, samples: s } = await scrape(url);
    const types = metricTypes(text);
    for (const name of Object.values(METRICS)) assert.ok(types.has(name), `/metrics declares ${name}`);
    assert.ok(types.has('kbql_process_cpu_seconds_total') && types.has('kbql_nodejs_eventloop_lag_p99_seconds'), 'default process metrics');

    const v = (name: string, labels: Record<string, string> = {}) => sampleValue(s, name, labels);
    // Requests by operation, type and outcome; one duration sample each.
    const expected: [string, string, string][] = [
      ['CreateCollection', 'mutation', 'ok'],
      ['Ingest', 'mutation', 'ok'],
      ['Reingest', 'mutation', 'ok'],
      ['Search', 'query', 'ok'],
      ['Ask', 'query', 'ok'],
      ['AskMissing', 'query', 'error'],
    ];
    for (const [operation, type, outcome] of expected) {
      assert.equal(v(METRICS.graphqlRequests, { operation, type, outcome }), 1, `${operation} ${outcome}`);
      assert.equal(v(`${METRICS.graphqlRequestDuration}_count`, { operation }), 1, `${operation} duration`);
    }
    assert.equal(s.filter((x) => x.name === METRICS.graphqlRequests).length, expected.length, 'no other request series');
    // Errors by extensions.code: exactly the failing call.
    assert.deepEqual(
      s.filter((x) => x.name === METRICS.graphqlErrors).map((x) => [x.labels.operation, x.labels.code, x.value]),
      [['AskMissing', 'NOT_FOUND', 1]],
    );
    assert.equal(v(`${METRICS.graphqlResolverDuration}_count`, { field: 'Query.ask' }), 2);
    assert.equal(v(`${METRICS.graphqlResolverDuration}_count`, { field: 'Query.search' }), 1);
    assert.equal(v(`${METRICS.graphqlResolverDuration}_count`, { field: 'Mutation.ingestDocuments' }), 2);
    assert.equal(v(METRICS.graphqlRequestsActive), 0);

    // Embedding: one provider call for the first ingest (both documents batched), none for the unchanged
    // re-ingest, one for search, one for ask, none for the failing call.
    const embedder = { embedder: 'kbql-hash-v1' };
    assert.equal(v(METRICS.embeddingProviderCalls, { ...embedder, outcome: 'ok' }), 3);
    assert.equal(v(`${METRICS.embeddingProviderDuration}_count`, embedder), 3);
    assert.equal(v(`${METRICS.embeddingBatchSize}_count`, embedder), 3);
    assert.equal(v(`${METRICS.embeddingBatchSize}_sum`, embedder), chunks + 2);

    // Store latency by adapter and mode: search and ask each ran one HYBRID search.
    assert.equal(v(`${METRICS.storeQueryDuration}_count`, { adapter: 'embedded', operation: 'search', mode: 'HYBRID' }), 2);
    assert.ok(v(`${METRICS.storeQueryDuration}_count`, { adapter: 'embedded', operation: 'getCollectionByName', mode: 'none' })! >= 5);
    assert.equal(s.filter((x) => x.name === METRICS.storeErrors).length, 0);

    assert.equal(v(`${METRICS.synthesisDuration}_count`, { synthesizer: 'extractive', outcome: 'answered' }), 1);
    assert.equal(v(METRICS.ingestionDocuments, { status: 'indexed' }), 2);
    assert.equal(v(METRICS.ingestionDocuments, { status: 'failed' }), 1);
    assert.equal(v(METRICS.ingestionDocuments, { status: 'unchanged' }), 1);
    assert.equal(v(METRICS.ingestionChunks), chunks);
    assert.equal(v(METRICS.tenantDocuments, { tenant: 'default' }), 2);
    assert.equal(v(METRICS.tenantChunks, { tenant: 'default' }), chunks);
    assert.ok(!s.some((x) => Object.values(x.labels).includes('handbook')), 'no collection name in any label');
    assert.equal(v(METRICS.dependencyUp, { dependency: 'store', critical: 'true' }), 1);
    // Caches (in process here): search and ask each missed the response cache and the result cache once (the failing
    // call's collection was not found: looked up in neither); nothing hit or was bypassed yet.
    assert.equal(v(METRICS.cacheRequests, { cache: 'result', result: 'miss' }), 2);
    assert.equal(v(METRICS.cacheRequests, { cache: 'response', result: 'miss' }), 2);
    assert.equal(s.filter((x) => x.name === METRICS.cacheRequests && x.labels.result !== 'miss').length, 0);
    // The same search again is served from the response cache, before execution: a hit, no resolver, no provider call.
    const repeat = await gql(url, 'query Search { search(collection: "handbook", query: "laptop", topK: 3) { hits { score } } }');
    assert.equal(repeat.body.errors, undefined);
    const later = (await scrape(url)).samples;
    assert.equal(sampleValue(later, METRICS.cacheRequests, { cache: 'response', result: 'hit' }), 1);
    assert.equal(sampleValue(later, METRICS.cacheRequests, { cache: 'result', result: 'hit' }), undefined);
    assert.equal(sampleValue(later, `${METRICS.graphqlResolverDuration}_count`, { field: 'Query.search' }), 1);
    assert.equal(
      sampleValue(later, METRICS.embeddingProviderCalls, { ...embedder, outcome: 'ok' }),
      3,
      'no provider call for a cached search',
    );
    assert.equal(sampleValue(later, METRICS.graphqlRequests, { operation: 'Search', type: 'query', outcome: 'ok' }), 2);
  });
});

describe('observability: traces and request logs', () => {
  let t: TestApp, url: string;
  const lines: string[] = [];
  before(async () => {
    ({ t, url } = await startTestServer({}, { logger: createLogger('debug', (line) => lines.push(line)) }));
    await seed(url);
  });
  after(() => t.close());
  beforeEach(() => {
    exporter.reset();
    lines.length = 0;
  });

  const traceId = randomBytes(16).toString('hex');
  const parentSpanId = randomBytes(8).toString('hex');

  it('continues an incoming traceparent and records the span tree of an ask, with no forbidden attributes', async () => {
    const res = await gql(
      url,
      `query Ask($q: String!) { ask(collection: "handbook", question: $q) { answer collection { stats { documents } } } }`,
      { q: QUESTION },
      { traceparent: `00-${traceId}-${parentSpanId}-01`, authorization: TOKEN, 'x-request-id': 'req-ask-1' },
    );
    assert.equal(res.body.errors, undefined);
    assert.match(res.body.data.ask.answer, /25 days/);

    const spans = exporter.getFinishedSpans();
    assert.ok(
      spans.every((s) => s.spanContext().traceId === traceId),
      'every span is in the incoming trace',
    );
    const byName = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      assert.equal(found.length, 1, `one ${name} span; got ${spans.map((s) => s.name).join(', ')}`);
      return found[0]!;
    };
    const id = (s: ReadableSpan) => s.spanContext().spanId;
    const parent = (s: ReadableSpan) => s.parentSpanContext?.spanId;

    const server = byName('POST /graphql');
    assert.equal(server.kind, SpanKind.SERVER);
    assert.equal(parent(server), parentSpanId, 'the HTTP span continues the caller’s span');
    assert.equal(server.parentSpanContext?.isRemote, true);
    assert.equal(server.attributes[SPAN_ATTRIBUTES.httpStatusCode], 200);
    assert.equal(server.attributes[SPAN_ATTRIBUTES.requestId], 'req-ask-1');
    const operation = byName('query Ask');
    assert.equal(parent(operation), id(server));
    for (const phase of ['graphql.parse', 'graphql.validate', 'graphql.execute']) assert.equal(parent(byName(phase)), id(operation), phase);
    const execute = byName('graphql.execute');
    const retrieve = byName('kbql.retrieve');
    assert.equal(parent(retrieve), id(execute));
    assert.equal(parent(byName('kbql.synthesize')), id(execute));
    assert.equal(parent(byName('kbql.embed')), id(retrieve));
    assert.equal(parent(byName('kbql.store.search')), id(retrieve));
    assert.equal(parent(byName('kbql.store.collectionStats')), id(execute), 'a nested field resolver’s store call');
    // Every store call of the operation hangs somewhere under graphql.execute (the collection lookup runs inside
    // retrieve, or before it when the result cache needs the collection's version for its key).
    const byId = new Map(spans.map((s) => [id(s), s]));
    const under = (span: ReadableSpan, ancestor: ReadableSpan): boolean => {
      for (let p = parent(span); p; p = byId.has(p) ? parent(byId.get(p)!) : undefined) if (p === id(ancestor)) return true;
      return false;
    };
    const storeSpans = spans.filter((s) => s.name.startsWith('kbql.store.'));
    assert.ok(storeSpans.some((s) => s.name === 'kbql.store.getCollectionByName'));
    for (const span of storeSpans) assert.ok(under(span, execute), `${span.name} is under graphql.execute`);
    assert.deepEqual(
      {
        collection: retrieve.attributes['kbql.collection'],
        mode: retrieve.attributes['kbql.search.mode'],
        topK: retrieve.attributes['kbql.search.top_k'],
      },
      { collection: 'handbook', mode: 'HYBRID', topK: 5 },
    );
    assert.ok((retrieve.attributes['kbql.search.hit_count'] as number) > 0);
    assert.equal(byName('kbql.embed').attributes['kbql.embed.batch_size'], 1);
    assert.equal(byName('kbql.synthesize').attributes['kbql.synthesize.abstained'], false);

    // Forbidden: only listed keys, and no question, document text, variables or token anywhere in a span.
    const allowed = new Set<string>(Object.values(SPAN_ATTRIBUTES));
    const forbidden = [QUESTION, 'vacation per year', 'paid vacation', TOKEN, 'kbql-test-token', '"q"'];
    for (const span of spans) {
      for (const key of Object.keys(span.attributes)) assert.ok(allowed.has(key), `${span.name} has an unlisted attribute ${key}`);
      const dump = JSON.stringify({ name: span.name, attributes: span.attributes, events: span.events, status: span.status });
      for (const text of forbidden) assert.ok(!dump.includes(text), `${span.name} carries ${text}`);
    }

    // The request's log line: request id, the continued trace id, operation, duration, outcome — and no secrets.
    const logs = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const requestLine = logs.find((l) => l.msg === 'request' && l.requestId === 'req-ask-1');
    assert.ok(requestLine, `a request line; got ${lines.join('')}`);
    assert.equal(requestLine.level, 'info');
    assert.equal(requestLine.traceId, traceId);
    assert.equal(requestLine.operation, 'Ask');
    assert.equal(requestLine.outcome, 'ok');
    assert.equal(requestLine.status, 200);
    assert.equal(typeof requestLine.durationMs, 'number');
    for (const text of forbidden) assert.ok(!lines.join('').includes(text), `logs carry ${text}`);
  });

  it('starts a new trace without a traceparent, and logs failures with their codes', async () => {
    const res = await gql(url, 'query AskMissing { ask(collection: "nowhere", question: "x?") { answer } }', undefined, {
      'x-request-id': 'req-missing',
    });
    assert.equal(res.body.errors?.[0]?.extensions?.code, 'NOT_FOUND');
    const server = exporter.getFinishedSpans().find((s) => s.name === 'POST /graphql');
    assert.ok(server);
    assert.equal(server.parentSpanContext, undefined, 'a root span');
    assert.notEqual(server.spanContext().traceId, traceId);
    const operation = exporter.getFinishedSpans().find((s) => s.name === 'query AskMissing');
    assert.equal(operation?.attributes[SPAN_ATTRIBUTES.errorCode], 'NOT_FOUND');
    const line = lines.map((l) => JSON.parse(l) as Record<string, any>).find((l) => l.requestId === 'req-missing');
    assert.deepEqual([line?.traceId, line?.outcome, line?.errorCodes], [server.spanContext().traceId, 'error', ['NOT_FOUND']]);
  });

  it('logs probes at debug level and requests that never reach GraphQL at info, without tracing them', async () => {
    await fetch(`${url}/healthz`, { headers: { 'x-request-id': 'req-health' } });
    const big = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-bad' },
      body: '{not json',
    });
    assert.equal(big.status, 400);
    const logs = lines.map((l) => JSON.parse(l) as Record<string, any>);
    assert.equal(logs.find((l) => l.requestId === 'req-health')?.level, 'debug');
    const bad = logs.find((l) => l.requestId === 'req-bad');
    assert.deepEqual([bad?.level, bad?.status, bad?.outcome, bad?.operation], ['info', 400, 'error', null]);
    assert.equal(exporter.getFinishedSpans().filter((s) => s.name !== 'POST /graphql').length, 0, 'only /graphql is traced');
  });

  it('redacts secrets and document text from any log line', () => {
    const out: string[] = [];
    const logger = createLogger('info', (line) => out.push(line));
    logger.info('provider call', {
      apiKey: 'sk-123',
      headers: { authorization: TOKEN, cookie: 'a=b', accept: 'json' },
      document: { content: 'secret document text', title: 'kept' },
      variables: { q: 'x' },
      question: QUESTION,
    });
    logger.debug('not at info');
    assert.equal(out.length, 1);
    const line = JSON.parse(out[0]!);
    assert.equal(line.msg, 'provider call');
    assert.equal(line.apiKey, REDACTED);
    assert.deepEqual(line.headers, { authorization: REDACTED, cookie: REDACTED, accept: 'json' });
    assert.deepEqual(line.document, { content: REDACTED, title: 'kept' });
    assert.equal(line.variables, REDACTED);
    assert.equal(line.question, REDACTED);
    assert.ok(!out[0]!.includes('sk-123') && !out[0]!.includes('secret document text'));
  });
});

describe('observability: /healthz and /readyz', () => {
  it('reports each dependency; a degraded one keeps readiness, a critical one fails it; both flip back', async () => {
    const state = { redis: true, critical: true };
    const t = await createTestApp(
      {},
      {
        readiness: [
          // Stands in for the Redis check (non-critical: kbql serves without its cache).
          {
            name: 'redis',
            critical: false,
            check: async () => {
              if (!state.redis) throw new Error('connection refused');
            },
          },
          {
            name: 'critical-dep',
            check: async () => {
              if (!state.critical) throw new Error('down');
            },
          },
        ],
      },
    );
    const url = await t.app.listen(0, '127.0.0.1');
    const ready = async () => {
      const res = await fetch(`${url}/readyz`);
      return {
        code: res.status,
        body: (await res.json()) as { status: string; checks: Record<string, { status: string; critical: boolean; error?: string }> },
      };
    };
    const live = async () => (await fetch(`${url}/healthz`)).status;
    const up = async (dependency: string) => sampleValue((await scrape(url)).samples, METRICS.dependencyUp, { dependency });
    try {
      let r = await ready();
      assert.deepEqual([r.code, r.body.status], [200, 'ready']);
      assert.deepEqual(Object.keys(r.body.checks).sort(), ['critical-dep', 'redis', 'store', 'vectorIndex']);
      assert.equal(await up('redis'), 1);

      state.redis = false;
      r = await ready();
      assert.deepEqual(
        [r.code, r.body.status, r.body.checks.redis!.status, r.body.checks.redis!.error],
        [200, 'degraded', 'down', 'connection refused'],
      );
      assert.equal(r.body.checks.store!.status, 'up');
      assert.equal(await live(), 200, 'liveness is not affected');
      assert.equal(await up('redis'), 0);

      state.redis = true;
      r = await ready();
      assert.deepEqual([r.code, r.body.status, r.body.checks.redis!.status], [200, 'ready', 'up']);
      assert.equal(await up('redis'), 1);

      state.critical = false;
      r = await ready();
      assert.deepEqual([r.code, r.body.status, r.body.checks['critical-dep']!.critical], [503, 'not ready', true]);
      assert.equal(await live(), 200);
      state.critical = true;
      assert.equal((await ready()).code, 200);
    } finally {
      await t.close();
    }
  });

  it('bounds a hanging check by its timeout', async () => {
    const t = await createTestApp(
      {},
      { readiness: [{ name: 'hangs', critical: false, timeoutMs: 50, check: () => new Promise(() => undefined) }] },
    );
    const url = await t.app.listen(0, '127.0.0.1');
    try {
      const body = (await (await fetch(`${url}/readyz`)).json()) as {
        status: string;
        checks: Record<string, { status: string; error?: string }>;
      };
      assert.deepEqual([body.status, body.checks.hangs!.status], ['degraded', 'down']);
      assert.match(body.checks.hangs!.error ?? '', /no answer within 50 ms/);
    } finally {
      await t.close();
    }
  });
});

describe('observability: metric cardinality', () => {
  it('1,000 requests with random operation names add a bounded number of series', async () => {
    const t = await createTestApp();
    const url = await t.app.listen(0, '127.0.0.1');
    try {
      await gql(url, '{ collections { totalCount } }');
      const seriesOf = (s: Sample[]) => s.filter((x) => x.name.startsWith('kbql_graphql_')).length;
      const before = seriesOf((await scrape(url)).samples);
      const names = Array.from({ length: 1000 }, () => `Op_${randomBytes(8).toString('hex')}`);
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < names.length) {
            const name = names[next++]!;
            const res = await gql(url, `query ${name} { collections { totalCount } }`);
            assert.equal(res.status, 200);
          }
        }),
      );
      const { samples } = await scrape(url);
      const added = seriesOf(samples) - before;
      // Per operation label value: 1 request counter + 15 histogram series (12 buckets, +Inf, sum, count).
      const maxOperationNames = 50;
      const perOperation = 16;
      assert.ok(added <= maxOperationNames * perOperation, `${added} series added; unbounded would be ~${1000 * perOperation}`);
      const operations = new Set(samples.filter((x) => x.name === METRICS.graphqlRequests).map((x) => x.labels.operation));
      assert.equal(operations.size, maxOperationNames + 1, 'the admitted names plus __other__');
      assert.equal(
        sampleValue(samples, METRICS.graphqlRequests, { operation: OTHER_LABEL, type: 'query', outcome: 'ok' }),
        1 + 1000 - maxOperationNames,
      );
    } finally {
      await t.close();
    }
  });
});

describe('observability: KBQL_METRICS_PORT', () => {
  it('serves /metrics on its own port and not on the main one', async () => {
    const t = await createTestApp({ KBQL_METRICS_PORT: '0' });
    const url = await t.app.listen(0, '127.0.0.1');
    try {
      assert.equal((await fetch(`${url}/metrics`)).status, 404);
      const address = t.app.metricsServer?.address();
      assert.ok(address && typeof address === 'object');
      const res = await fetch(`http://127.0.0.1:${address.port}/metrics`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /# TYPE kbql_graphql_requests_total counter/);
      assert.equal((await fetch(`http://127.0.0.1:${address.port}/graphql`)).status, 404);
    } finally {
      await t.close();
    }
    assert.equal(t.app.metricsServer?.listening, false, 'closed by stop()');
  });
});
