import { Registry } from 'prom-client';
import type { Config } from '../config';
import { createKeyvCache } from '../adapters/cache/keyv.cache';
import { EmbeddedKnowledgeStore } from '../adapters/embedded/sqlite.knowledge-store';
import { HashEmbedder } from '../adapters/embedders/hash.embedder';
import { OllamaEmbedder } from '../adapters/embedders/ollama.embedder';
import { OpenAIEmbedder } from '../adapters/embedders/openai.embedder';
import { createJobBackend, type JobBackend } from '../adapters/jobs/job-backend';
import { FileExtractor } from '../adapters/parsing/file.extractor';
import { ExtractiveSynthesizer } from '../adapters/synthesizers/extractive.synthesizer';
import { createOllamaLlm, createOpenAiLlm, LlmSynthesizer } from '../adapters/synthesizers/llm.synthesizer';
import { WeaviateKnowledgeStore } from '../adapters/weaviate/weaviate.knowledge-store';
import { createIngestPool, PooledHashEmbedder } from '../adapters/workers/ingest.pool';
import type { Logger } from '../logger';
import {
  createTelemetry,
  instrumentEmbedder,
  instrumentStore,
  instrumentSynthesizer,
  readCollectionSizes,
} from '../observability/instrumentation';
import { createDomainMetrics, type DomainMetrics } from '../observability/metrics';
import { httpReadinessCheck, Readiness, type ReadinessCheck } from '../observability/readiness';
import type { AnswerSynthesizer } from '../ports/answer-synthesizer.port';
import type { Cache } from '../ports/cache.port';
import type { DocumentProcessor } from '../ports/document-processor.port';
import type { Embedder } from '../ports/embedder.port';
import type { KnowledgeStore } from '../ports/knowledge-store.port';
import type { Telemetry } from '../ports/telemetry.port';
import type { Disposers } from './lifecycle';
import { StoreConflictError, storeConflictMessage, storeIdentity } from './store-identity';
import type { AppOverrides } from './overrides';

/** The ports the services are built on (store, embedder and synthesizer wrapped in spans and metrics), and their observers. */
export interface Adapters {
  store: KnowledgeStore;
  embedder: Embedder;
  synthesizer: AnswerSynthesizer;
  /** The synthesizer unwrapped: askStream records its own synthesis metrics (the instrumented wrapper has no stream). */
  streamSynthesizer: AnswerSynthesizer;
  /** The local hash embedder when it is the embedder: its output fingerprint versions the embedding cache. */
  hashEmbedder: HashEmbedder | null;
  /** Parsing and chunking on the worker threads (see `createIngestPool`); stopped by `startBackgroundWork`. */
  processor: DocumentProcessor;
  readiness: Readiness;
  metrics: DomainMetrics;
  telemetry: Telemetry;
  /** The cache of embeddings, search/ask results and Apollo's persisted queries. */
  cache: Cache;
  /** Job store, queue, events and uploads. */
  jobBackend: JobBackend;
  fileExtractor: FileExtractor;
}

/** Builds the adapters the config selects (or `overrides` supplies), in dependency order; each registers its disposer. */
export async function createAdapters(config: Config, overrides: AppOverrides, logger: Logger, disposers: Disposers): Promise<Adapters> {
  // Ingestion jobs: SQLite + in-process queue in the data dir, or Redis + BullMQ shared by replicas (KBQL_JOB_QUEUE),
  // namespaced by the store's identity. The Redis one comes first: a namespace that serves another store refuses
  // the start before anything else holds resources; the SQLite one after the store (whose errors explain a bad dir).
  const buildJobBackend = async () => {
    const storeId = config.jobs.queue === 'redis' ? storeIdentity(config) : 'local';
    const backend = await createJobBackend({
      kind: config.jobs.queue,
      dataDir: config.dataDir,
      redisUrl: config.cache.redisUrl,
      prefix: config.cache.prefix,
      storeId,
      storeConflict: (holder) => new StoreConflictError(storeConflictMessage(config, storeId, holder)),
      concurrency: config.jobs.concurrency,
      lockMs: config.jobs.lockMs,
      logger,
    });
    disposers.add('job backend', () => backend.close());
    return backend;
  };
  const redisJobBackend = config.jobs.queue === 'redis' ? await buildJobBackend() : null;
  const rawStore = overrides.store ?? createStore(config, logger);
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
  startWarmUp(rawStore, logger);

  // Observability: readiness checks, metrics, and the ports wrapped in spans and metrics (services see only ports).
  const readiness = new Readiness([
    { name: 'store', check: () => rawStore.ping() },
    ...warmUpReadinessChecks(rawStore),
    ...providerReadinessChecks(config),
    // Redis down degrades (requests are served without the cache) but never makes kbql unready.
    ...(config.cache.redisUrl ? [{ name: 'cache', critical: false, check: async () => assertCacheAvailable(cache) }] : []),
    ...(overrides.readiness ?? []),
  ]);
  const metrics = createDomainMetrics({
    registry: overrides.metricsRegistry ?? new Registry(),
    collectionSizes: () => readCollectionSizes(rawStore),
    dependencies: () => readiness.dependencies(),
    vectorIndexes: rawStore.warmUpState ? () => rawStore.warmUpState!() : undefined,
  });
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
    hooks: {
      hit: (kind) => metrics.cache.hit(kind),
      miss: (kind) => metrics.cache.miss(kind),
      bypass: (kind) => metrics.cache.bypass(kind),
    },
    logger,
  });
  disposers.add('cache', () => cache.close());
  const jobBackend = redisJobBackend ?? (await buildJobBackend());

  const fileExtractor = new FileExtractor({
    timeoutMs: config.jobs.parseTimeoutMs,
    workers: config.jobs.concurrency,
    ...config.jobs.extraction,
  });
  disposers.add('file extractor', () => fileExtractor.close());

  return {
    store,
    embedder,
    synthesizer,
    streamSynthesizer: rawSynthesizer,
    hashEmbedder: hashEmbedderOf(rawEmbedder),
    processor: ingestPool.processor,
    readiness,
    metrics,
    telemetry,
    cache,
    jobBackend,
    fileExtractor,
  };
}

/**
 * Loads the store's indexes in the background (the embedded store: every collection's vectors, off the event loop,
 * and its saved ANN graph), so that HTTP is up at once and /readyz turns ready when searches are fast.
 */
function startWarmUp(store: KnowledgeStore, logger: Logger): void {
  if (!store.warmUp) return;
  void store.warmUp().then(() => {
    const state = store.warmUpState?.();
    if (state)
      logger.info('vector indexes loaded', { collections: state.collections, chunks: state.rows, ms: Math.round(state.warmMs ?? 0) });
  });
}

/** `vectorIndex` is not ready until warm-up ends (a replica gets traffic once its searches are fast); then its figures. */
function warmUpReadinessChecks(store: KnowledgeStore): ReadinessCheck[] {
  const state = store.warmUpState?.bind(store);
  if (!state) return [];
  return [
    {
      name: 'vectorIndex',
      async check() {
        const s = state();
        if (s.warming) throw new Error(`loading vector indexes: ${s.loadedCollections} of ${s.collections} collections loaded`);
        return { chunks: s.rows, indexedFraction: s.rows === 0 ? 1 : Math.round((s.indexedRows / s.rows) * 1e4) / 1e4 };
      },
    },
  ];
}

/** The hash embedder whose output fingerprint versions the embedding cache, if the embedder is one. */
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
  for (const [name, p] of [
    ['embedder', config.embedder],
    ['synthesizer', config.synthesizer],
  ] as const) {
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

function createStore(config: Config, logger: Logger): KnowledgeStore {
  const s = config.store;
  if (s.kind === 'embedded') {
    return new EmbeddedKnowledgeStore({
      dataDir: config.dataDir,
      busyTimeoutMs: s.timeoutMs,
      vectorIndex: s.vectorIndex,
      onAnnError: (collection, error) => logger.warn('ANN index', { collection, error: error.message }),
      onAnnOpened: (collection, result) => logger.info('ANN index opened', { collection, ...result }),
    });
  }
  return new WeaviateKnowledgeStore(
    {
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
    },
    { log: (message, fields) => logger.warn(message, fields) },
  );
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
      return new OllamaEmbedder({
        host: e.baseUrl,
        model: e.model,
        dimensions: e.dimensions,
        timeoutMs: e.timeoutMs,
        maxBatchSize: e.batchSize,
      });
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
