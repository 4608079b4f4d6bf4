import 'reflect-metadata';
import type http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginInlineTrace } from '@apollo/server/plugin/inlineTrace';
import { Registry } from 'prom-client';
import type { Config } from '../config';
import { createApolloCache, createDocumentStore, createNoStorePlugin } from '../adapters/cache/apollo.cache';
import { createKeyvCache } from '../adapters/cache/keyv.cache';
import { EmbeddedKnowledgeStore } from '../adapters/embedded/sqlite.knowledge-store';
import { WeaviateKnowledgeStore } from '../adapters/weaviate/weaviate.knowledge-store';
import { HashEmbedder } from '../adapters/embedders/hash.embedder';
import { OllamaEmbedder } from '../adapters/embedders/ollama.embedder';
import { OpenAIEmbedder } from '../adapters/embedders/openai.embedder';
import { createIngestPool, PooledHashEmbedder } from '../adapters/workers/ingest.pool';
import { ExtractiveSynthesizer } from '../adapters/synthesizers/extractive.synthesizer';
import { defaultMinSimilarity } from '../modules/query/abstention';
import { createOllamaLlm, createOpenAiLlm, LlmSynthesizer } from '../adapters/synthesizers/llm.synthesizer';
import { createJoseVerifier } from '../adapters/auth/jose.token-verifier';
import { RedisApiKeyStore } from '../adapters/auth/redis.api-key-store';
import { SqliteApiKeyStore } from '../adapters/auth/sqlite.api-key-store';
import { applyResolverTimeout } from '../graphql/directives/resolver-timeout';
import { ApiKeyService } from '../modules/auth/api-key.service';
import type { ApiKeyStore } from '../ports/api-key-store.port';
import { createRedisRateLimitStore, type RedisRateLimitStore } from '../adapters/rate-limit/redis.rate-limiter';
import { createContext } from './context';
import type { KbqlContext, Services } from '../graphql/request-context';
import { callerKey, createRateLimitTransform } from '../graphql/directives/rate-limit.directive';
import { createErrorStatusPlugin } from '../graphql/plugins/error-status.plugin';
import { createLandingPagePlugin } from '../graphql/plugins/landing-page.plugin';
import { createPersistedQueriesPolicyPlugin } from '../graphql/plugins/persisted-queries.plugin';
import { createQueryLimitsPlugin } from '../graphql/plugins/query-limits.plugin';
import { clientAddress } from '../http/client-address';
import { createAuthenticator } from '../modules/auth/authenticator';
import { accessScope, type Principal } from '../modules/auth/principal';
import { createFormatError } from '../graphql/format-error';
import { buildKbqlSchema, createResolverContainer } from './schema';
import { createHttpServer, createMetricsServer, drainHttpServer, listen, type MetricsPage } from '../http/server';
import { attachSubscriptionServer, type SubscriptionServer } from '../http/subscriptions';
import { createLogger, type Logger } from '../logger';
import { Disposers } from './lifecycle';
import {
  createTelemetry,
  instrumentEmbedder,
  instrumentStore,
  instrumentSynthesizer,
  readCollectionSizes,
} from '../observability/instrumentation';
import { createDomainMetrics, type DomainMetrics } from '../observability/metrics';
import { createMetricsPlugin } from '../observability/metrics-plugin';
import { httpReadinessCheck, Readiness, type ReadinessCheck } from '../observability/readiness';
import { createRequestRecordPlugin } from '../observability/request-record';
import { bindResolversToTrace, createTracingPlugin } from '../observability/tracing-plugin';
import { CollectionService } from '../modules/collections/collection.service';
import { DocumentService } from '../modules/documents/document.service';
import { CachedEmbedder, outputFingerprint } from '../modules/ingestion/cached-embedder';
import { EmbeddingBatcher } from '../modules/ingestion/embedding-batcher';
import { IngestionService } from '../modules/ingestion/ingestion.service';
import { IngestionJobService } from '../modules/jobs/ingestion-job.service';
import { UploadService } from '../modules/jobs/upload.service';
import { createJobBackend } from '../adapters/jobs/job-backend';
import { FileExtractor } from '../adapters/parsing/file.extractor';
import type { UploadRecord } from '../ports/job-store.port';
import { QueryResultCache } from '../modules/query/query-cache';
import { QueryService } from '../modules/query/query.service';
import type { AnswerSynthesizer } from '../ports/answer-synthesizer.port';
import type { Cache } from '../ports/cache.port';
import type { Embedder } from '../ports/embedder.port';
import type { Filter, KnowledgeStore } from '../ports/knowledge-store.port';

/** Parts a test (or an embedding program) may supply instead of the ones the config selects. */
export interface AppOverrides {
  store?: KnowledgeStore;
  embedder?: Embedder;
  synthesizer?: AnswerSynthesizer;
  logger?: Logger;
  /** Where metrics are registered (default: a fresh registry per app). */
  metricsRegistry?: Registry;
  /** Where service API keys are kept (default: see `createApiKeyStore`). */
  apiKeyStore?: ApiKeyStore;
  /** Readiness checks reported by /readyz next to the ones the config implies (store, providers). */
  readiness?: ReadinessCheck[];
  /**
   * The documents each access scope may see, as a filter added to its searches (see `KbqlContext.scope`); none by
   * default (access is decided per collection, by tenant).
   */
  accessFilter?: (scope: string) => Filter | undefined;
}

export interface App {
  readonly config: Config;
  readonly store: KnowledgeStore;
  readonly embedder: Embedder;
  readonly services: Services;
  readonly apollo: ApolloServer<KbqlContext>;
  readonly httpServer: http.Server;
  /** GraphQL subscriptions over WebSocket (graphql-ws) on the HTTP server's port, at /graphql. */
  readonly subscriptions: SubscriptionServer;
  /** Domain metrics (cache hooks and the rest) and their registry. */
  readonly metrics: DomainMetrics;
  /** The cache of embeddings, search/ask results and Apollo's persisted queries (Redis or in process). */
  readonly cache: Cache;
  /** The server of KBQL_METRICS_PORT, when set. */
  readonly metricsServer: http.Server | null;
  /** Listens on `port`/`host` (defaults from config; 0 = a free port) and resolves with the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Stops accepting, finishes in-flight requests, closes the store. Idempotent. */
  stop(): Promise<void>;
}

/** The composition root: the one place that builds adapters, services, schema and server. */
export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  // What stop() runs: each part registers its disposer as it is built; they run in reverse.
  const disposers = new Disposers(logger);
  const rawStore = overrides.store ?? createStore(config);
  // CPU work (parsing, chunking, the hash embedder) runs on worker threads; the event loop does I/O and GraphQL.
  const ingestPool = createIngestPool({
    size: config.workers.size,
    maxQueue: config.workers.maxQueue,
    queueTimeoutMs: config.workers.queueTimeoutMs,
    taskTimeoutMs: config.workers.taskTimeoutMs,
    heapMb: config.workers.heapMb,
    hashDimensions: !overrides.embedder && config.embedder.kind === 'hash' ? config.embedder.dimensions : null,
  });
  const rawEmbedder = overrides.embedder ?? ingestPool.embedder ?? createEmbedder(config);
  const rawSynthesizer = overrides.synthesizer ?? createSynthesizer(config);
  await rawStore.init();

  // Observability: readiness checks, metrics, and the ports wrapped in spans and metrics (services see only ports).
  const readiness = new Readiness([
    { name: 'store', check: () => rawStore.ping() },
    ...providerReadinessChecks(config),
    // Redis down degrades (requests are served without the cache) but never makes kbql unready.
    ...(config.cache.redisUrl ? [{ name: 'cache', critical: false, check: async () => assertCacheAvailable(cache) }] : []),
    ...(overrides.readiness ?? []),
  ]);
  const metrics = createDomainMetrics({
    registry: overrides.metricsRegistry ?? new Registry(),
    collectionSizes: () => readCollectionSizes(rawStore),
    dependencies: () => readiness.dependencies(),
  });
  const renderMetrics = async (): Promise<MetricsPage> => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() });
  const telemetry = createTelemetry({ metrics });
  const store = instrumentStore(rawStore, { metrics });
  disposers.add('knowledge store', () => store.close());
  const embedder = instrumentEmbedder(rawEmbedder, { metrics });
  const synthesizer = instrumentSynthesizer(rawSynthesizer, { metrics });

  // One cache for embeddings, search/ask results and Apollo's APQ: Redis (REDIS_URL) or in process; every call is
  // bounded by KBQL_CACHE_TIMEOUT_MS and a failure is a bypass (counted), never a failed request.
  const cache = await createKeyvCache({
    redisUrl: config.cache.redisUrl,
    prefix: config.cache.prefix,
    timeoutMs: config.cache.timeoutMs,
    memoryMaxBytes: config.cache.memoryMaxBytes,
    hooks: { hit: (kind) => metrics.cache.hit(kind), miss: (kind) => metrics.cache.miss(kind), bypass: (kind) => metrics.cache.bypass(kind) },
    logger,
  });
  disposers.add('cache', () => cache.close());
  // Embeddings: cache first, then the shared batching window (one provider call per window, split at the batch limit).
  const batcher = new EmbeddingBatcher(embedder, {
    windowMs: config.batching.windowMs,
    onBatch: (size) => metrics.embedding.batch(embedder.info.name, size),
  });
  const vectors = new CachedEmbedder(batcher, {
    store: cache.store('embedding'),
    embedder: embedder.info,
    ttlSeconds: config.cache.embeddingTtlSeconds,
    // The local embedder's output is versioned by a probe too: a retuned build that kept its name gets fresh entries.
    version: hashEmbedderOf(rawEmbedder) ? await outputFingerprint(hashEmbedderOf(rawEmbedder)!) : undefined,
    // The local embedder: queries are cached, a document's chunks are recomputed on the worker threads instead.
    bypassBatchesOver: hashEmbedderOf(rawEmbedder) ? LOCAL_EMBEDDER_CACHED_BATCH : undefined,
  });
  const collections = new CollectionService({ store, embedder: embedder.info, defaults: config.defaults });
  const documents = new DocumentService({ store, collections });
  const ingestion = new IngestionService({
    store,
    collections,
    processor: ingestPool.processor,
    embedder: vectors,
    limits: config.limits,
    telemetry,
  });
  const query = new QueryService({
    store,
    collections,
    embedQuery: (text) => vectors.embed(text),
    synthesizer,
    defaults: { ...config.defaults, maxTopK: config.limits.maxTopK, maxQueryChars: config.limits.maxQueryChars },
    telemetry,
    resultCache: new QueryResultCache({
      store: cache.store('result'),
      ttlSeconds: config.cache.resultTtlSeconds,
      onLocalHit: () => metrics.cache.hit('result'),
    }),
    accessFilter: overrides.accessFilter,
    // askStream records its own synthesis metrics (the instrumented wrapper has no stream).
    streamSynthesizer: rawSynthesizer,
    answerMetrics: { ...metrics.answers, synthesis: metrics.synthesis.call },
    abstention: { minVectorScore: config.answers.minSimilarity ?? defaultMinSimilarity(config.embedder.kind) },
  });
  // Ingestion jobs: SQLite + in-process queue in the data dir, or Redis + BullMQ shared by replicas (KBQL_JOB_QUEUE).
  const jobBackend = await createJobBackend({
    kind: config.jobs.queue,
    dataDir: config.dataDir,
    redisUrl: config.cache.redisUrl,
    prefix: config.cache.prefix,
    concurrency: config.jobs.concurrency,
    lockMs: config.jobs.lockMs,
    logger,
  });
  disposers.add('job backend', () => jobBackend.close());
  const fileExtractor = new FileExtractor({ timeoutMs: config.jobs.parseTimeoutMs, workers: config.jobs.concurrency, ...config.jobs.extraction });
  disposers.add('file extractor', () => fileExtractor.close());
  const uploads = new UploadService({ store: jobBackend.uploads, limits: config.uploads });
  const jobs = new IngestionJobService({
    store: jobBackend.store,
    queue: jobBackend.queue,
    events: jobBackend.events,
    knowledge: store,
    ingestion,
    uploads,
    extractor: fileExtractor,
    limits: { maxDocumentsPerJob: config.jobs.maxDocumentsPerJob, maxQueuedDocumentsPerTenant: config.jobs.maxQueuedDocumentsPerTenant },
    retention: { days: config.jobs.retentionDays },
    metrics: metrics.ingestion,
    logger,
  });
  const services: Services = { collections, documents, ingestion, query, jobs, uploads };

  // Service API keys: a SQLite file in the data dir; with the Weaviate store and REDIS_URL, in Redis (replicas share it).
  const apiKeyStore = overrides.apiKeyStore ?? createApiKeyStore(config, logger);
  await apiKeyStore.init();
  disposers.add('API key store', () => apiKeyStore.close());
  const apiKeys = new ApiKeyService({ store: apiKeyStore, cacheTtlMs: config.auth.apiKeyCacheSeconds * 1000 });

  // Security: who is calling (JWT or KBQL_AUTH_MODE=none), @rateLimit counters (Redis when REDIS_URL is set, with an
  // in-memory fallback; in memory otherwise), then @auth on every field (in buildKbqlSchema, outermost but tracing).
  const authenticate = createAuthenticator({
    mode: config.auth.mode,
    verifier: config.auth.jwt ? createJoseVerifier({ ...config.auth.jwt, cacheTtlMs: config.auth.tokenCacheSeconds * 1000 }) : undefined,
    apiKeys,
  });
  if (config.auth.mode === 'none') {
    logger.warn('AUTHENTICATION IS OFF (KBQL_AUTH_MODE=none): every caller is an ADMIN of tenant "default". Use it for local development only; set KBQL_AUTH_MODE=jwt with KBQL_JWT_SECRET or KBQL_JWT_JWKS_URL anywhere else.', {
      nodeEnv: config.env,
    });
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
  const schema = bindResolversToTrace(await buildKbqlSchema(createResolverContainer({ services, apiKeys }), {
      // Innermost the resolver timeout, then the rate limit, then @auth: a refused call consumes nothing.
      beforeAuth: (built) => {
        const bounded = applyResolverTimeout<KbqlContext>(built, { timeoutMs: config.graphql.resolverTimeoutMs });
        return rateLimit ? rateLimit(bounded) : bounded;
      },
    }));
  const development = config.graphql.exposeInternalErrors;
  // Depth, alias and cost limits: the same for HTTP (Apollo plugin) and WebSocket (subscriptions).
  const limits = {
    maxDepth: config.graphql.maxDepth,
    maxCost: config.graphql.maxCost,
    maxAliases: config.graphql.maxAliases,
    maxTopK: config.limits.maxTopK,
    // Introspection (where served) has its own depth bound: standard tooling's query nests 15 levels.
    introspection: config.graphql.introspection,
  };
  const introspection = config.graphql.introspection;
  const apollo = new ApolloServer<KbqlContext>({
    schema,
    // main.ts owns SIGTERM/SIGINT: drain HTTP first, then stop Apollo. Apollo's own handler (on whenever NODE_ENV is
    // not test) would stop it at the signal, failing requests still being read with 500 (drill 5 caught this).
    stopOnTerminationSignals: false,
    introspection,
    // Field suggestions ("Did you mean …?") reveal the schema too: only where introspection is on.
    hideSchemaDetailsFromClientErrors: !introspection,
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    parseOptions: { maxTokens: config.graphql.maxTokens },
    includeStacktraceInErrorResponses: development,
    formatError: createFormatError({ exposeInternal: development, logger }),
    // APQ on the shared cache; parsed + validated operations in an in-process LRU (they are objects, not strings).
    cache: createApolloCache(cache.store('apollo')),
    documentStore: config.cache.documentCacheSize > 0 ? createDocumentStore({ maxEntries: config.cache.documentCacheSize }) : null,
    plugins: [
      // Federated trace data (ftv1) for a router that asks for it, with error messages masked.
      ApolloServerPluginInlineTrace({ includeErrors: { masked: true } }),
      createQueryLimitsPlugin(limits),
      // Anonymous callers never add queries to the shared APQ cache (a 401 must not leave anything behind).
      createPersistedQueriesPolicyPlugin<KbqlContext>({ mayRegister: (ctx) => ctx.principal !== null }),
      createErrorStatusPlugin(),
      createRequestRecordPlugin(),
      createMetricsPlugin({ registry: metrics.registry }),
      createTracingPlugin(),
      // Apollo's cache-control plugin hooks every field of every response for hints kbql never sets; all it would
      // send is `no-store`, which this cheaper plugin sends instead.
      ApolloServerPluginCacheControlDisabled(),
      createNoStorePlugin(),
      config.env === 'production'
        ? ApolloServerPluginLandingPageDisabled()
        : // Sandbox from Apollo's CDN, with what to do when it cannot load (offline).
          createLandingPagePlugin({ document: EXAMPLE_OPERATION }),
    ],
  });
  await apollo.start();
  disposers.add('Apollo', () => apollo.stop());

  // Unfinished jobs of a previous run (or of a replica that died) continue; expired uploads go.
  await jobs.start();
  disposers.add('job worker', () => jobs.stop());
  // The worker threads go before the jobs are awaited (registered after the worker, so stopped before it): a job
  // document in a thread stops there and resumes on the next start, instead of holding the drain until it finishes.
  disposers.add('ingest worker threads', () => ingestPool.processor.close());
  const sweepUploads = () =>
    void uploads.sweep().catch((error: unknown) => logger.warn('upload sweep failed', { error: error instanceof Error ? error.message : String(error) }));
  sweepUploads();
  const uploadSweep = setInterval(sweepUploads, 10 * 60_000);
  uploadSweep.unref();
  // Finished jobs older than KBQL_JOB_RETENTION_DAYS go, hourly, a bounded batch per sweep (safe on every replica).
  const sweepJobs = () =>
    void jobs.sweepFinishedJobs().catch((error: unknown) => logger.warn('job retention sweep failed', { error: error instanceof Error ? error.message : String(error) }));
  sweepJobs();
  const jobSweep = setInterval(sweepJobs, 60 * 60_000);
  jobSweep.unref();
  disposers.add('sweeps', () => {
    clearInterval(uploadSweep);
    clearInterval(jobSweep);
  });

  // One context recipe for both transports: the caller, its access scope, its address, fresh loaders, the services.
  const contextFor = (requestId: string, principal: Principal | null, req: http.IncomingMessage): KbqlContext =>
    createContext(store, requestId, {
      principal,
      scope: principal ? accessScope(principal) : 'anonymous',
      clientIp: clientAddress(req, config.auth.trustedProxies),
      services,
    });
  const httpServer = createHttpServer<KbqlContext>({
    apollo,
    context: async (requestId, req) => {
      const header = req.headers.authorization;
      const apiKeyHeader = req.headers['x-api-key'];
      return contextFor(
        requestId,
        await authenticate(Array.isArray(header) ? header[0] : header, Array.isArray(apiKeyHeader) ? apiKeyHeader[0] : apiKeyHeader),
        req,
      );
    },
    maxBodyBytes: config.limits.maxBodyBytes,
    uploads: {
      maxBytes: config.uploads.maxBytes,
      accept: async (ctx, data, filename, mediaType) => uploadResponse(await uploads.accept(ctx.principal, data, filename, mediaType)),
    },
    readiness,
    logger,
    metrics: config.metrics.port === null ? renderMetrics : undefined,
    cors: config.cors,
  });
  const metricsServer = config.metrics.port === null ? null : createMetricsServer({ metrics: renderMetrics, logger });
  const subscriptions = attachSubscriptionServer<KbqlContext>({
    httpServer,
    schema,
    authenticate: (authorization, req) => {
      const apiKeyHeader = req.headers['x-api-key'];
      return authenticate(authorization, Array.isArray(apiKeyHeader) ? apiKeyHeader[0] : apiKeyHeader);
    },
    context: contextFor,
    limits,
    maxTokens: config.graphql.maxTokens,
    introspection,
    formatError: createFormatError({ exposeInternal: development, logger }),
    logger,
    maxPayloadBytes: config.limits.maxBodyBytes,
    maxConnectionsPerCaller: config.maxWsConnectionsPerCaller,
    callerKey: (principal, req) => callerKey({ principal, clientIp: clientAddress(req, config.auth.trustedProxies) }),
  });
  if (metricsServer) disposers.add('metrics server', async () => {
    if (metricsServer.listening) await drainHttpServer(metricsServer);
  });
  disposers.add('HTTP and WebSocket', async () => {
    // Stop accepting first (the drain closes the listener at once), then end the streams — their clients are
    // told the server is going away (1001) and their work stops — then wait for in-flight HTTP requests.
    const drained = drainHttpServer(httpServer);
    await subscriptions.close();
    await drained;
  });

  return {
    config,
    store,
    embedder,
    services,
    apollo,
    httpServer,
    subscriptions,
    metrics,
    metricsServer,
    cache,
    async listen(port = config.port, host = config.host) {
      const address = await listen(httpServer, port, host);
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${shownHost}:${address.port}`;
      logger.info('kbql listening', { url: `${url}/graphql`, store: store.kind, embedder: embedder.info.name });
      if (metricsServer && config.metrics.port !== null && !metricsServer.listening) {
        const m = await listen(metricsServer, config.metrics.port, host);
        logger.info('kbql metrics listening', { url: `http://${m.family === 'IPv6' ? `[${m.address}]` : m.address}:${m.port}/metrics` });
      }
      return url;
    },
    stop: () => disposers.dispose(),
  };
}

/** The body of a 201 from POST /v1/uploads. */
function uploadResponse(record: UploadRecord): Record<string, unknown> {
  return {
    id: record.id,
    filename: record.filename,
    mediaType: record.mediaType,
    bytes: record.bytes,
    expiresAt: record.expiresAt.toISOString(),
  };
}

/** The hash embedder whose output fingerprint versions the embedding cache, if the embedder is one. */
/** Largest batch of the local embedder that goes through the embedding cache (a query is one to a few texts). */
const LOCAL_EMBEDDER_CACHED_BATCH = 8;

function hashEmbedderOf(raw: Embedder): HashEmbedder | null {
  if (raw instanceof HashEmbedder) return raw;
  return raw instanceof PooledHashEmbedder ? raw.local : null;
}

function assertCacheAvailable(cache: Cache): void {
  if (!cache.available) throw new Error('Redis is not reachable; requests are served without the cache');
}

/** /readyz checks of the configured networked providers: degraded (not failing readiness) when down. */
function providerReadinessChecks(config: Config): ReadinessCheck[] {
  const checks: ReadinessCheck[] = [];
  for (const [name, p] of [['embedder', config.embedder], ['synthesizer', config.synthesizer]] as const) {
    if (p.kind !== 'openai' && p.kind !== 'ollama') continue;
    const base = p.baseUrl.replace(/\/+$/, '');
    checks.push(
      httpReadinessCheck({
        name,
        url: p.kind === 'openai' ? `${base}/models` : `${base}/api/tags`,
        headers: p.kind === 'openai' && p.apiKey ? { authorization: `Bearer ${p.apiKey}` } : undefined,
        critical: false,
        cacheMs: 10_000,
      }),
    );
  }
  return checks;
}

/** API keys live next to the knowledge: the data dir's SQLite, except Weaviate + REDIS_URL (no shared disk): Redis. */
function createApiKeyStore(config: Config, logger: Logger): ApiKeyStore {
  if (config.store.kind === 'weaviate' && config.cache.redisUrl) {
    return new RedisApiKeyStore({ url: config.cache.redisUrl, prefix: config.cache.prefix, logger });
  }
  return new SqliteApiKeyStore({ dataDir: config.dataDir });
}

function createStore(config: Config): KnowledgeStore {
  const s = config.store;
  if (s.kind === 'embedded') return new EmbeddedKnowledgeStore({ dataDir: config.dataDir, busyTimeoutMs: s.timeoutMs });
  return new WeaviateKnowledgeStore({
    url: s.url,
    grpcPort: s.grpcPort,
    grpcHost: s.grpcHost ?? undefined,
    apiKey: s.apiKey ?? undefined,
    collectionPrefix: s.prefix,
    multiTenant: s.multiTenant,
    tenant: s.tenant ?? undefined,
    bindTenants: s.bindTenants,
    timeoutMs: s.timeoutMs,
    initTimeoutMs: s.initTimeoutMs,
  });
}

function createEmbedder(config: Config): Embedder {
  const e = config.embedder;
  switch (e.kind) {
    case 'hash':
      return new HashEmbedder({ dimensions: e.dimensions });
    case 'openai':
      return new OpenAIEmbedder({
        baseURL: e.baseUrl,
        apiKey: e.apiKey ?? undefined,
        model: e.model,
        dimensions: e.dimensions,
        timeoutMs: e.timeoutMs,
        maxBatchSize: e.batchSize,
      });
    case 'ollama':
      return new OllamaEmbedder({ host: e.baseUrl, model: e.model, dimensions: e.dimensions, timeoutMs: e.timeoutMs, maxBatchSize: e.batchSize });
  }
}

/** Timeout, retries, breaker and relevance floor of an LLM synthesizer, from the config. */
function llmResilience(config: Config) {
  return {
    timeoutMs: config.synthesizer.kind === 'extractive' ? undefined : config.synthesizer.timeoutMs,
    retries: config.answers.llmRetries,
    breakerThreshold: config.answers.llmBreakerThreshold,
    breakerHalfOpenAfterMs: config.answers.llmBreakerHalfOpenMs,
    minRelevance: config.answers.minRelevance ?? undefined,
  };
}

function createSynthesizer(config: Config): AnswerSynthesizer {
  const s = config.synthesizer;
  switch (s.kind) {
    case 'extractive':
      return new ExtractiveSynthesizer({
        minRelevance: config.answers.minRelevance ?? undefined,
        minKeyCoverage: config.answers.minKeyCoverage ?? undefined,
        minAnswerability: config.answers.minAnswerability ?? undefined,
      });
    case 'openai':
      return new LlmSynthesizer({
        llm: createOpenAiLlm({ baseURL: s.baseUrl, apiKey: s.apiKey ?? undefined, model: s.model, timeoutMs: s.timeoutMs }),
        name: `llm:openai:${s.model}`,
        ...llmResilience(config),
        streamChatOptions: { stream_options: { include_usage: true } },
      });
    case 'ollama':
      return new LlmSynthesizer({
        llm: createOllamaLlm({ host: s.baseUrl, model: s.model, timeoutMs: s.timeoutMs }),
        name: `llm:ollama:${s.model}`,
        ...llmResilience(config),
      });
  }
}

/** Preloaded in Apollo Sandbox (development only). */
export const EXAMPLE_OPERATION = `query Ask {
  ask(collection: "handbook", question: "How many vacation days do employees get?") {
    answer
    abstained
    citations { marker source { document { title } chunk { text } } }
  }
}
`;
