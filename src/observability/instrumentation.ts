import { trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { isAppError } from '../errors';
import type { AnswerSynthesizer, Synthesis, SynthesisRequest } from '../ports/answer-synthesizer.port';
import type { Embedder } from '../ports/embedder.port';
import type {
  ChunkRecord,
  CollectionListFilter,
  CollectionPatch,
  CollectionRecord,
  CollectionStats,
  DeleteCounts,
  DocumentRecord,
  DocumentWrite,
  Filter,
  KnowledgeStore,
  Metadata,
  NewCollection,
  Page,
  PageRequest,
  ReembeddingStore,
  SearchHit,
  SearchRequest,
} from '../ports/knowledge-store.port';
import type { Telemetry, TelemetryFacts, TracedOperation } from '../ports/telemetry.port';
import { SPAN_ATTRIBUTES as A, SPAN_NAMES, TRACER_NAME } from './attributes';
import type { CollectionSize, DomainMetrics } from './metrics';
import { endSpan, insideRecordedSpan } from './spans';

export interface InstrumentationOptions {
  metrics: DomainMetrics;
  /** @default trace.getTracer('kbql') (the global provider, a no-op until the SDK is registered) */
  tracer?: Tracer;
}

/** The code a failure is reported under: the AppError's code, or INTERNAL_SERVER_ERROR. */
export function errorCodeOf(error: unknown): string {
  return isAppError(error) ? error.code : 'INTERNAL_SERVER_ERROR';
}

/** Runs `work` in an active span; ends it with the error code on failure. `after` adds attributes from the result. */
async function inSpan<T>(
  tracer: Tracer,
  name: string,
  attributes: Attributes,
  work: () => Promise<T>,
  after?: (result: T, span: Span) => void,
): Promise<T> {
  if (!insideRecordedSpan()) return work();
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      const result = await work();
      if (after && span.isRecording()) after(result, span);
      endSpan(span, null);
      return result;
    } catch (error) {
      endSpan(span, errorCodeOf(error));
      throw error;
    }
  });
}

const seconds = (started: number) => (performance.now() - started) / 1000;

/**
 * The store behind a `kbql.store.<method>` span and `kbql_store_query_duration_seconds` for every data call
 * (init, close and ping — readiness probes — are passed through untraced). Attributes: adapter, search mode and
 * topK, counts of ids asked for and results returned.
 */
export function instrumentStore(store: KnowledgeStore, options: InstrumentationOptions): KnowledgeStore {
  const tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  const { metrics } = options;
  const adapter = store.kind;
  const call = <T>(
    operation: string,
    attributes: Attributes,
    work: () => Promise<T>,
    count?: (result: T) => number,
    mode = 'none',
  ): Promise<T> => {
    const started = performance.now();
    return inSpan(tracer, `${SPAN_NAMES.storePrefix}${operation}`, { [A.storeAdapter]: adapter, ...attributes }, work, (result, span) => {
      if (count) span.setAttribute(A.storeResults, count(result));
    }).then(
      (result) => {
        metrics.store.call(adapter, operation, mode, seconds(started), false);
        return result;
      },
      (error: unknown) => {
        metrics.store.call(adapter, operation, mode, seconds(started), true);
        throw error;
      },
    );
  };
  const items = (n: number): Attributes => ({ [A.storeItems]: n });
  const pageCount = (page: Page<unknown>) => page.items.length;

  const instrumented: KnowledgeStore = {
    kind: store.kind,
    init: () => store.init(),
    close: () => store.close(),
    ping: () => store.ping(),
    createCollection: (input: NewCollection): Promise<CollectionRecord> =>
      call('createCollection', {}, () => store.createCollection(input)),
    updateCollection: (id: string, patch: CollectionPatch): Promise<CollectionRecord> =>
      call('updateCollection', {}, () => store.updateCollection(id, patch)),
    deleteCollection: (id: string): Promise<DeleteCounts | null> => call('deleteCollection', {}, () => store.deleteCollection(id)),
    getCollection: (id: string): Promise<CollectionRecord | null> => call('getCollection', {}, () => store.getCollection(id)),
    setCollectionShare: (id, tenant, role) => call('setCollectionShare', {}, () => store.setCollectionShare(id, tenant, role)),
    getCollectionByName: (name: string, tenant?: string): Promise<CollectionRecord | null> =>
      call('getCollectionByName', {}, () => store.getCollectionByName(name, tenant)),
    listCollections: (page: PageRequest, filter?: CollectionListFilter): Promise<Page<CollectionRecord>> =>
      call('listCollections', {}, () => store.listCollections(page, filter), pageCount),
    collectionStats: (id: string): Promise<CollectionStats> => call('collectionStats', {}, () => store.collectionStats(id)),
    getContentHashes: (collectionId: string, externalIds: string[]): Promise<Map<string, string>> =>
      call(
        'getContentHashes',
        items(externalIds.length),
        () => store.getContentHashes(collectionId, externalIds),
        (m) => m.size,
      ),
    upsertDocument: (collectionId: string, doc: DocumentWrite): Promise<DocumentRecord> =>
      call('upsertDocument', items(1), () => store.upsertDocument(collectionId, doc)),
    deleteDocuments: (ids: string[]): Promise<DeleteCounts> => call('deleteDocuments', items(ids.length), () => store.deleteDocuments(ids)),
    updateDocumentMetadata: (id: string, metadata: Metadata): Promise<DocumentRecord | null> =>
      call('updateDocumentMetadata', items(1), () => store.updateDocumentMetadata(id, metadata)),
    getDocuments: (ids: string[]): Promise<(DocumentRecord | null)[]> =>
      call(
        'getDocuments',
        items(ids.length),
        () => store.getDocuments(ids),
        (r) => r.filter(Boolean).length,
      ),
    getDocumentByExternalId: (collectionId: string, externalId: string): Promise<DocumentRecord | null> =>
      call('getDocumentByExternalId', {}, () => store.getDocumentByExternalId(collectionId, externalId)),
    listDocuments: (collectionId: string, page: PageRequest, filter?: Filter): Promise<Page<DocumentRecord>> =>
      call('listDocuments', {}, () => store.listDocuments(collectionId, page, filter), pageCount),
    listChunks: (documentId: string, page: PageRequest): Promise<Page<ChunkRecord>> =>
      call('listChunks', {}, () => store.listChunks(documentId, page), pageCount),
    getChunks: (ids: string[]): Promise<(ChunkRecord | null)[]> =>
      call(
        'getChunks',
        items(ids.length),
        () => store.getChunks(ids),
        (r) => r.filter(Boolean).length,
      ),
    search: (request: SearchRequest): Promise<SearchHit[]> =>
      call(
        'search',
        { [A.searchMode]: request.mode, [A.topK]: request.limit },
        () => store.search(request),
        (hits) => hits.length,
        request.mode,
      ),
  };
  if (store.vectorIndexState) instrumented.vectorIndexState = store.vectorIndexState.bind(store);
  if (store.upsertDocuments) {
    const bulk = store.upsertDocuments.bind(store);
    instrumented.upsertDocuments = (collectionId, docs) =>
      call(
        'upsertDocuments',
        items(docs.length),
        () => bulk(collectionId, docs),
        (r) => r.filter((x) => x.ok).length,
      );
  }
  const r = store.reembedding;
  if (r) {
    const reembedding: ReembeddingStore = {
      startSecondary: (id, embedder) => call('reembedding.startSecondary', {}, () => r.startSecondary(id, embedder)),
      pendingChunks: (id, limit) =>
        call(
          'reembedding.pendingChunks',
          {},
          () => r.pendingChunks(id, limit),
          (p) => p.length,
        ),
      writeSecondaryVectors: (id, embedder, vectors) =>
        call('reembedding.writeSecondaryVectors', items(vectors.length), () => r.writeSecondaryVectors(id, embedder, vectors)),
      secondaryProgress: (id) => call('reembedding.secondaryProgress', {}, () => r.secondaryProgress(id)),
      swapEmbedding: (id, until) => call('reembedding.swapEmbedding', {}, () => r.swapEmbedding(id, until)),
      dropSecondary: (id) => call('reembedding.dropSecondary', {}, () => r.dropSecondary(id)),
    };
    return { ...instrumented, reembedding };
  }
  return instrumented;
}

/**
 * The embedder behind a `kbql.embed` span and the provider-call metrics (`kbql_embedding_provider_calls_total`,
 * `kbql_embedding_provider_duration_seconds`). Wrap the provider itself (innermost), so that caches in front of it
 * do not count as provider calls.
 */
export function instrumentEmbedder(embedder: Embedder, options: InstrumentationOptions): Embedder {
  const tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  const { metrics } = options;
  const name = embedder.info.name;
  return {
    get info() {
      return embedder.info;
    },
    get maxBatchSize() {
      return embedder.maxBatchSize;
    },
    async embed(texts, signal) {
      const started = performance.now();
      try {
        const vectors = await inSpan(tracer, SPAN_NAMES.embed, { [A.embedder]: name, [A.batchSize]: texts.length }, () =>
          embedder.embed(texts, signal),
        );
        metrics.embedding.call(name, 'ok', seconds(started));
        return vectors;
      } catch (error) {
        metrics.embedding.call(name, 'error', seconds(started));
        throw error;
      }
    },
  };
}

/** The synthesizer behind a `kbql.synthesize` span and `kbql_synthesis_duration_seconds` (answered, abstained, error). */
export function instrumentSynthesizer(synthesizer: AnswerSynthesizer, options: InstrumentationOptions): AnswerSynthesizer {
  const tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  const { metrics } = options;
  return {
    get name() {
      return synthesizer.name;
    },
    async synthesize(request: SynthesisRequest, signal?: AbortSignal): Promise<Synthesis> {
      const started = performance.now();
      const attributes = { [A.synthesizer]: synthesizer.name, [A.sourceCount]: request.sources.length };
      try {
        const result = await inSpan(
          tracer,
          SPAN_NAMES.synthesize,
          attributes,
          () => synthesizer.synthesize(request, signal),
          (r, span) => {
            span.setAttributes({ [A.abstained]: r.abstained, [A.citationCount]: r.citations.length });
          },
        );
        metrics.synthesis.call(synthesizer.name, result.abstained ? 'abstained' : 'answered', seconds(started));
        return result;
      } catch (error) {
        metrics.synthesis.call(synthesizer.name, 'error', seconds(started));
        throw error;
      }
    },
  };
}

const FACT_KEYS: Record<keyof TelemetryFacts, string> = {
  collection: A.collection,
  mode: A.searchMode,
  topK: A.topK,
  hitCount: A.hitCount,
  documentCount: A.documentCount,
  indexed: A.indexed,
  unchanged: A.unchanged,
  failed: A.failed,
  chunkCount: A.chunkCount,
  embedder: A.reembedEmbedder,
  remaining: A.reembedRemaining,
};

function toAttributes(facts: TelemetryFacts): Attributes {
  const attributes: Attributes = {};
  for (const [key, value] of Object.entries(facts) as [keyof TelemetryFacts, TelemetryFacts[keyof TelemetryFacts]][]) {
    if (value !== undefined && FACT_KEYS[key]) attributes[FACT_KEYS[key]] = value;
  }
  return attributes;
}

/** Operations that begin work of their own (a job), not inside a request: outside a recorded span they start a trace. */
const STARTS_A_TRACE: ReadonlySet<TracedOperation> = new Set(['kbql.reembed']);

/**
 * The domain's {@link Telemetry}: `kbql.retrieve` and `kbql.ingest` spans with the facts services report, and the
 * ingestion metrics (`kbql_ingestion_documents_total`, `kbql_ingestion_chunks_total`) from a finished ingest.
 */
export function createTelemetry(options: InstrumentationOptions): Telemetry {
  const tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  const { metrics } = options;
  return {
    run<T>(operation: TracedOperation, facts: TelemetryFacts, work: (note: (facts: TelemetryFacts) => void) => Promise<T>): Promise<T> {
      const known: TelemetryFacts = { ...facts };
      const finished = (result: T): T => {
        if (operation === 'kbql.ingest') {
          metrics.ingestion.documents('indexed', known.indexed ?? 0);
          metrics.ingestion.documents('unchanged', known.unchanged ?? 0);
          metrics.ingestion.documents('failed', known.failed ?? 0);
          metrics.ingestion.chunks(known.chunkCount ?? 0);
        }
        return result;
      };
      if (!insideRecordedSpan() && !STARTS_A_TRACE.has(operation)) return work((more) => void Object.assign(known, more)).then(finished);
      return tracer.startActiveSpan(operation, { attributes: toAttributes(facts) }, async (span) => {
        const note = (more: TelemetryFacts) => {
          Object.assign(known, more);
          if (span.isRecording()) span.setAttributes(toAttributes(more));
        };
        try {
          const result = finished(await work(note));
          endSpan(span, null);
          return result;
        } catch (error) {
          endSpan(span, errorCodeOf(error));
          throw error;
        }
      });
    },
  };
}

/**
 * Documents and chunks of each collection with its tenant (never its name), for the `kbql_tenant_*` gauges: the
 * first `limit` collections, in pages (pass the unwrapped store, so scrapes do not show up as store traffic).
 */
export async function readCollectionSizes(store: KnowledgeStore, limit = 1000): Promise<CollectionSize[]> {
  const page = 100;
  const sizes: CollectionSize[] = [];
  for (let offset = 0; offset < limit; offset += page) {
    const { items } = await store.listCollections({ offset, limit: Math.min(page, limit - offset) });
    sizes.push(
      ...(await Promise.all(
        items.map(async (c) => {
          const stats = await store.collectionStats(c.id);
          return { tenant: c.tenant, documents: stats.documents, chunks: stats.chunks };
        }),
      )),
    );
    if (items.length < page) break;
  }
  return sizes;
}
