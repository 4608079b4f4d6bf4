import type { Config } from '../config';
import type { Services } from '../modules/shared/request-context';
import type { Logger } from '../logger';
import { CollectionService } from '../modules/collections/collection.service';
import { DocumentService } from '../modules/documents/document.service';
import { CachedEmbedder, outputFingerprint } from '../modules/ingestion/cached-embedder';
import { EmbedderCatalog, type CatalogEntry } from '../modules/embeddings/embedder-catalog';
import { ReembedService } from '../modules/embeddings/reembed.service';
import { embedderFingerprint } from '../ports/embedder.port';
import { EmbeddingBatcher } from '../modules/ingestion/embedding-batcher';
import { IngestionService } from '../modules/ingestion/ingestion.service';
import { IngestionJobService } from '../modules/jobs/ingestion-job.service';
import { IngestionJobWorker } from '../modules/jobs/ingestion-job.worker';
import { UploadService } from '../modules/jobs/upload.service';
import { defaultMinSimilarity } from '../retrieval/abstention';
import { QueryResultCache } from '../modules/query/query-cache';
import { QueryService } from '../modules/query/query.service';
import type { Adapters } from './adapters';
import type { AppOverrides } from './overrides';

/** The domain services on the adapters' ports, and the worker that runs the ingestion job queue. */
export async function createServices(
  config: Config,
  adapters: Adapters,
  options: { accessFilter: AppOverrides['accessFilter']; logger: Logger },
): Promise<{ services: Services; jobWorker: IngestionJobWorker }> {
  const { store, cache, metrics, telemetry, jobBackend } = adapters;
  // Embeddings, per configured embedder: cache first, then the shared batching window (one provider call per window,
  // split at the batch limit). The cache keys start with the embedder's fingerprint.
  const catalog = new EmbedderCatalog(
    await Promise.all(
      adapters.namedEmbedders.map(async ({ config: c, embedder: e, hashEmbedder }): Promise<CatalogEntry> => {
        const batcher = new EmbeddingBatcher(e, {
          windowMs: config.batching.windowMs,
          onBatch: (size) => metrics.embedding.batch(e.info.name, size),
        });
        const vectors = new CachedEmbedder(batcher, {
          store: cache.store('embedding'),
          embedder: e.info,
          ttlSeconds: config.cache.embeddingTtlSeconds,
          // The local embedder's output is versioned by a probe too: a retuned build that kept its name gets fresh entries.
          version: hashEmbedder ? await outputFingerprint(hashEmbedder) : undefined,
          // The local embedder: queries are cached, a document's chunks are recomputed on the worker threads instead
          // (cheaper than hashing, encoding and storing their vectors on the event loop).
          bypassBatchesOver: hashEmbedder ? 0 : undefined,
        });
        const model = c.kind === 'hash' ? null : c.model;
        return { name: c.name, provider: c.kind, model, info: e.info, fingerprint: embedderFingerprint(e.info), vectors };
      }),
    ),
  );
  const collections = new CollectionService({ store, embedders: catalog, defaults: config.defaults });
  const documents = new DocumentService({ store, collections });
  const ingestion = new IngestionService({
    store,
    collections,
    processor: adapters.processor,
    embedders: (info) => catalog.forInfo(info)?.vectors ?? null,
    limits: config.limits,
    telemetry,
  });
  const query = new QueryService({
    store,
    collections,
    embedQuery: (text, info) => (catalog.forInfo(info) ?? catalog.default).vectors.embed(text),
    synthesizer: adapters.synthesizer,
    defaults: { ...config.defaults, maxTopK: config.limits.maxTopK, maxQueryChars: config.limits.maxQueryChars },
    telemetry,
    resultCache: new QueryResultCache({
      store: cache.store('result'),
      ttlSeconds: config.cache.resultTtlSeconds,
      onLocalHit: () => metrics.cache.hit('result'),
    }),
    accessFilter: options.accessFilter,
    streamSynthesizer: adapters.streamSynthesizer,
    answerMetrics: { ...metrics.answers, synthesis: metrics.synthesis.call.bind(metrics.synthesis) },
    abstention: { minVectorScore: config.answers.minSimilarity ?? defaultMinSimilarity(config.embedder.kind) },
  });
  const uploads = new UploadService({ store: jobBackend.uploads, limits: config.uploads });
  const jobs = new IngestionJobService({
    store: jobBackend.store,
    queue: jobBackend.queue,
    events: jobBackend.events,
    knowledge: store,
    ingestion,
    uploads,
    extractor: adapters.fileExtractor,
    limits: { maxDocumentsPerJob: config.jobs.maxDocumentsPerJob, maxQueuedDocumentsPerTenant: config.jobs.maxQueuedDocumentsPerTenant },
    retention: { days: config.jobs.retentionDays },
    logger: options.logger,
  });
  const reembed = new ReembedService({
    store,
    collections,
    embedders: catalog,
    startJob: (collection, embedderName, access) => jobs.startReembedJob(collection, embedderName, access),
    graceSeconds: config.reembed.graceSeconds,
    metrics: metrics.reembed,
    telemetry,
    logger: options.logger,
  });
  const jobWorker = new IngestionJobWorker({
    reembed,
    store: jobBackend.store,
    queue: jobBackend.queue,
    events: jobBackend.events,
    knowledge: store,
    ingestion,
    extractor: adapters.fileExtractor,
    metrics: metrics.ingestion,
    logger: options.logger,
  });
  return { services: { collections, documents, ingestion, query, jobs, uploads, embedders: catalog, reembed }, jobWorker };
}
