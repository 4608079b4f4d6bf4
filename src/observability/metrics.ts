import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LabelGuard, OTHER_LABEL } from './label-guard';

/**
 * Every metric kbql exports, named `kbql_<area>_<what>_<unit>`. The Grafana dashboard and the alert rules may only
 * use these (checked by `test/unit/grafana-dashboard.test.ts`); Node's default process metrics are exported with the
 * `kbql_` prefix too (`kbql_process_*`, `kbql_nodejs_*`).
 */
export const METRICS = {
  // GraphQL layer (registered by createMetricsPlugin)
  graphqlRequests: 'kbql_graphql_requests_total',
  graphqlRequestDuration: 'kbql_graphql_request_duration_seconds',
  graphqlErrors: 'kbql_graphql_errors_total',
  graphqlResolverDuration: 'kbql_graphql_resolver_duration_seconds',
  graphqlRequestsActive: 'kbql_graphql_requests_active',
  // Domain (registered by createDomainMetrics)
  embeddingProviderCalls: 'kbql_embedding_provider_calls_total',
  embeddingProviderDuration: 'kbql_embedding_provider_duration_seconds',
  embeddingBatchSize: 'kbql_embedding_batch_size_texts',
  cacheRequests: 'kbql_cache_requests_total',
  storeQueryDuration: 'kbql_store_query_duration_seconds',
  storeErrors: 'kbql_store_errors_total',
  synthesisDuration: 'kbql_synthesis_duration_seconds',
  answerCitations: 'kbql_answer_citations_total',
  answerAbstentions: 'kbql_answer_abstentions_total',
  ingestionDocuments: 'kbql_ingestion_documents_total',
  ingestionChunks: 'kbql_ingestion_chunks_total',
  tenantCollections: 'kbql_tenant_collections',
  tenantDocuments: 'kbql_tenant_documents',
  tenantChunks: 'kbql_tenant_chunks',
  dependencyUp: 'kbql_dependency_up',
  vectorIndexRows: 'kbql_vector_index_rows',
  vectorIndexWarming: 'kbql_vector_index_warming',
} as const;

/** Prefix of Node's default metrics (`collectDefaultMetrics`). */
export const DEFAULT_METRICS_PREFIX = 'kbql_';

export type CallOutcome = 'ok' | 'error';
export type SynthesisOutcome = 'answered' | 'abstained' | 'error';
export type IngestOutcome = 'indexed' | 'unchanged' | 'failed';
/** Why an answer abstained: no relevant source (`not_found`), or a generated answer no source backed (`unverified`). */
export type AbstentionKind = 'not_found' | 'unverified';

/** The loaded vector indexes of this process (see `StoreWarmUpState` of the knowledge-store port). */
export interface VectorIndexCounts {
  warming: boolean;
  rows: number;
  indexedRows: number;
}

/** One collection's size, by its owner: collection names never reach a metric (they are the tenants' data). */
export interface CollectionSize {
  tenant: string;
  documents: number;
  chunks: number;
}

export interface DependencyStatus {
  name: string;
  critical: boolean;
  ok: boolean;
}

export interface DomainMetricsOptions {
  /** The registry to register in (`GET /metrics` serves it). */
  registry: Registry;
  /**
   * Also export Node's default process metrics (CPU, memory, event loop, GC) with the `kbql_` prefix.
   * @default true
   */
  defaultMetrics?: boolean;
  /** Read at scrape time for the `kbql_tenant_*` size gauges; a failure keeps the last values. */
  collectionSizes?: () => Promise<CollectionSize[]>;
  /** Read at scrape time for `kbql_dependency_up`. */
  dependencies?: () => Promise<DependencyStatus[]>;
  /** Read at scrape time for `kbql_vector_index_*` (the store's in-process indexes; absent on Weaviate). */
  vectorIndexes?: () => VectorIndexCounts | null;
  /**
   * Longest a scrape waits for `collectionSizes` or `dependencies`, in ms.
   * @default 2000
   */
  collectTimeoutMs?: number;
  /**
   * Most distinct cache kinds given their own label value (others count as `__other__`).
   * @default 20
   */
  maxCacheKinds?: number;
  /**
   * Most tenants given their own `tenant` label value on the size gauges (the first by name; the rest are summed
   * into `__other__`).
   * @default 50
   */
  maxTenantLabels?: number;
}

/** Domain metrics, as small functions the composition root wires into hooks and port wrappers. */
export interface DomainMetrics {
  readonly registry: Registry;
  /** Cache lookups: a hit, a miss, or a bypass (cache skipped: disabled, down, or not cacheable). `kind` names the cache. */
  readonly cache: { hit(kind: string): void; miss(kind: string): void; bypass(kind: string): void };
  readonly embedding: {
    /** One provider call of the embedder named `embedder`, its outcome and duration. */
    call(embedder: string, outcome: CallOutcome, seconds: number): void;
    /** Texts the batcher sent in one provider call. */
    batch(embedder: string, size: number): void;
  };
  readonly store: {
    /** One store call: adapter kind, method, search mode (`none` for other calls), duration, and whether it failed. */
    call(adapter: string, operation: string, mode: string, seconds: number, failed: boolean): void;
  };
  readonly synthesis: { call(synthesizer: string, outcome: SynthesisOutcome, seconds: number): void };
  /** Answers served (by ask and askStream): their verified and unsupported citations, and abstentions. */
  readonly answers: {
    citations(synthesizer: string, supported: number, unsupported: number): void;
    abstained(synthesizer: string, kind: AbstentionKind): void;
  };
  readonly ingestion: { documents(outcome: IngestOutcome, count: number): void; chunks(count: number): void };
}

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];

/** Registers kbql's domain metrics in `options.registry` (once per registry). */
export function createDomainMetrics(options: DomainMetricsOptions): DomainMetrics {
  const { registry } = options;
  const timeoutMs = options.collectTimeoutMs ?? 2000;
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: DEFAULT_METRICS_PREFIX });

  const providerCalls = new Counter({
    name: METRICS.embeddingProviderCalls,
    help: 'Embedding provider calls by embedder and outcome (ok, error).',
    labelNames: ['embedder', 'outcome'] as const,
    registers: [registry],
  });
  const providerDuration = new Histogram({
    name: METRICS.embeddingProviderDuration,
    help: 'Duration of embedding provider calls, in seconds.',
    labelNames: ['embedder'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: METRICS.embeddingBatchSize,
    help: 'Texts per embedding provider call sent by the batcher.',
    labelNames: ['embedder'] as const,
    buckets: BATCH_BUCKETS,
    registers: [registry],
  });
  const cacheRequests = new Counter({
    name: METRICS.cacheRequests,
    help: 'Cache lookups by cache kind and result (hit, miss, bypass).',
    labelNames: ['cache', 'result'] as const,
    registers: [registry],
  });
  const storeDuration = new Histogram({
    name: METRICS.storeQueryDuration,
    help: 'Duration of knowledge-store calls by adapter, operation and search mode (none outside search), in seconds.',
    labelNames: ['adapter', 'operation', 'mode'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: METRICS.storeErrors,
    help: 'Knowledge-store calls that failed, by adapter and operation.',
    labelNames: ['adapter', 'operation'] as const,
    registers: [registry],
  });
  const synthesisDuration = new Histogram({
    name: METRICS.synthesisDuration,
    help: 'Duration of answer synthesis by synthesizer and outcome (answered, abstained, error), in seconds.',
    labelNames: ['synthesizer', 'outcome'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const answerCitations = new Counter({
    name: METRICS.answerCitations,
    help: 'Citation markers of served answers by synthesizer and result: supported (kept), unsupported (removed from the answer).',
    labelNames: ['synthesizer', 'result'] as const,
    registers: [registry],
  });
  const answerAbstentions = new Counter({
    name: METRICS.answerAbstentions,
    help: 'Answers that abstained, by synthesizer and reason (not_found, unverified).',
    labelNames: ['synthesizer', 'reason'] as const,
    registers: [registry],
  });
  const ingestedDocuments = new Counter({
    name: METRICS.ingestionDocuments,
    help: 'Documents through ingestion by status (indexed, unchanged, failed).',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const ingestedChunks = new Counter({
    name: METRICS.ingestionChunks,
    help: 'Chunks embedded and written by ingestion.',
    registers: [registry],
  });

  const { collectionSizes, dependencies } = options;
  // Both size gauges read the store at scrape time. A scrape starts every collect in the same tick, so the read is
  // shared until the next microtask: one store read per scrape, and never a stale one.
  let pendingSizes: Promise<CollectionSize[] | null> | null = null;
  const readSizes = (): Promise<CollectionSize[] | null> => {
    if (!collectionSizes) return Promise.resolve(null);
    if (!pendingSizes) {
      const read = withTimeout(collectionSizes(), timeoutMs).catch(() => null);
      pendingSizes = read;
      queueMicrotask(() => {
        if (pendingSizes === read) pendingSizes = null;
      });
    }
    return pendingSizes;
  };
  const maxTenants = options.maxTenantLabels ?? 50;
  const sizeGauge = (name: string, what: string, pick: (size: TenantSize) => number) =>
    new Gauge({
      name,
      help: `${what} per tenant, read from the shared store at scrape time: every replica reports the same totals, so aggregate across replicas with max by (tenant), never sum.`,
      labelNames: ['tenant'] as const,
      registers: [registry],
      async collect() {
        const sizes = await readSizes();
        if (!sizes) return; // a failed or slow read keeps the last values
        this.reset();
        for (const size of byTenant(sizes, maxTenants)) this.set({ tenant: size.tenant }, pick(size));
      },
    });
  sizeGauge(METRICS.tenantCollections, 'Collections', (s) => s.collections);
  sizeGauge(METRICS.tenantDocuments, 'Documents', (s) => s.documents);
  sizeGauge(METRICS.tenantChunks, 'Chunks', (s) => s.chunks);
  new Gauge({
    name: METRICS.dependencyUp,
    help: 'Readiness of each dependency: 1 up, 0 down; critical="true" ones make /readyz fail.',
    labelNames: ['dependency', 'critical'] as const,
    registers: [registry],
    async collect() {
      if (!dependencies) return;
      const statuses = await withTimeout(dependencies(), timeoutMs).catch(() => null);
      if (!statuses) return;
      this.reset();
      for (const d of statuses) this.set({ dependency: d.name, critical: String(d.critical) }, d.ok ? 1 : 0);
    },
  });

  const vectorIndexes = options.vectorIndexes ?? (() => null);
  new Gauge({
    name: METRICS.vectorIndexRows,
    help: 'Chunks in the vector indexes this process has loaded: indexed = served by the ANN graph (or an exact index), pending = searched exactly until the graph builder catches up. Per replica; absent on Weaviate.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const counts = vectorIndexes();
      if (!counts) return;
      this.set({ state: 'indexed' }, counts.indexedRows);
      this.set({ state: 'pending' }, counts.rows - counts.indexedRows);
    },
  });
  new Gauge({
    name: METRICS.vectorIndexWarming,
    help: '1 while the store loads its vector indexes at start-up (/readyz answers 503 meanwhile), then 0.',
    registers: [registry],
    collect() {
      this.set(vectorIndexes()?.warming ? 1 : 0);
    },
  });

  const cacheKinds = new LabelGuard(options.maxCacheKinds ?? 20);
  const cache = (result: 'hit' | 'miss' | 'bypass') => (kind: string) => cacheRequests.inc({ cache: cacheKinds.value(kind), result });
  return {
    registry,
    cache: { hit: cache('hit'), miss: cache('miss'), bypass: cache('bypass') },
    embedding: {
      call(embedder, outcome, seconds) {
        providerCalls.inc({ embedder, outcome });
        providerDuration.observe({ embedder }, seconds);
      },
      batch(embedder, size) {
        batchSize.observe({ embedder }, size);
      },
    },
    store: {
      call(adapter, operation, mode, seconds, failed) {
        storeDuration.observe({ adapter, operation, mode }, seconds);
        if (failed) storeErrors.inc({ adapter, operation });
      },
    },
    synthesis: {
      call(synthesizer, outcome, seconds) {
        synthesisDuration.observe({ synthesizer, outcome }, seconds);
      },
    },
    answers: {
      citations(synthesizer, supported, unsupported) {
        if (supported > 0) answerCitations.inc({ synthesizer, result: 'supported' }, supported);
        if (unsupported > 0) answerCitations.inc({ synthesizer, result: 'unsupported' }, unsupported);
      },
      abstained(synthesizer, kind) {
        answerAbstentions.inc({ synthesizer, reason: kind });
      },
    },
    ingestion: {
      documents(outcome, count) {
        if (count > 0) ingestedDocuments.inc({ status: outcome }, count);
      },
      chunks(count) {
        if (count > 0) ingestedChunks.inc(count);
      },
    },
  };
}

interface TenantSize {
  tenant: string;
  collections: number;
  documents: number;
  chunks: number;
}

/** Sums collection sizes per tenant; past `maxTenants` (by name) the rest are summed into `__other__`. */
function byTenant(sizes: readonly CollectionSize[], maxTenants: number): TenantSize[] {
  const totals = new Map<string, TenantSize>();
  for (const size of sizes) {
    const t = totals.get(size.tenant) ?? { tenant: size.tenant, collections: 0, documents: 0, chunks: 0 };
    t.collections += 1;
    t.documents += size.documents;
    t.chunks += size.chunks;
    totals.set(size.tenant, t);
  }
  const sorted = [...totals.values()].sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0));
  if (sorted.length <= maxTenants) return sorted;
  const other: TenantSize = { tenant: OTHER_LABEL, collections: 0, documents: 0, chunks: 0 };
  for (const t of sorted.slice(maxTenants)) {
    other.collections += t.collections;
    other.documents += t.documents;
    other.chunks += t.chunks;
  }
  return [...sorted.slice(0, maxTenants), other];
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}
