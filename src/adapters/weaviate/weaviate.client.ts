import weaviate, { ApiKey, configure, type FilterValue, type WeaviateClient } from 'weaviate-client';
import { clientErrors } from './weaviate.client-internals';

/**
 * The narrow slice of weaviate-client v3 the store uses, so tests can put an in-memory fake
 * (`test/helpers/fake-weaviate.ts`) in its place. Option objects mirror the client's own (`limit`, `offset`,
 * `filters`, `returnMetadata`, `alpha`, `fusionType` …) so what a test asserts here is what reaches the client.
 * Methods throw the client's errors unchanged; the store classifies them (`weaviate.resilience.ts`).
 */
export interface WeaviateClientLike {
  /** GET /v1/.well-known/ready. */
  isReady(): Promise<boolean>;
  close(): Promise<void>;
  collectionExists(name: string): Promise<boolean>;
  /** Throws (HTTP 422, "already exists") when the collection exists. */
  createCollection(spec: CollectionSpec): Promise<void>;
  /** Succeeds when the collection does not exist. */
  deleteCollection(name: string): Promise<void>;
  /** The collection's description (GET /v1/schema/{name}); null when it does not exist. */
  collectionDescription(name: string): Promise<string | null>;
  /** The collection's properties (names and data types). */
  listProperties(name: string): Promise<PropertySpec[]>;
  /** Throws (HTTP 422, "already exists") when the property exists. */
  addProperty(name: string, property: PropertySpec): Promise<void>;
  /** Creates the tenant on a multi-tenant collection unless it exists. */
  ensureTenant(name: string, tenant: string): Promise<void>;
  /** A handle on one collection (one tenant of it when `tenant` is given); makes no request. */
  collection(name: string, tenant?: string): WeaviateCollectionLike;
}

export type WeaviateDataType = 'text' | 'text[]' | 'int' | 'number' | 'number[]' | 'boolean' | 'boolean[]';

export interface PropertySpec {
  name: string;
  dataType: WeaviateDataType;
  /** For text: `word` (BM25) or `field` (whole value, exact filters). */
  tokenization?: 'word' | 'field';
  indexFilterable: boolean;
  indexSearchable: boolean;
}

export interface CollectionSpec {
  name: string;
  description: string;
  properties: PropertySpec[];
  /** `hnsw-cosine`: one named vector `default`, HNSW, cosine distance, vectors supplied by kbql (no vectorizer). */
  vectors: 'hnsw-cosine' | 'none';
  multiTenant: boolean;
  /** BM25 parameters and the `en` stopword preset; `indexNullState` enables `IsNull` filters. */
  invertedIndex: { bm25K1: number; bm25B: number; indexNullState: boolean };
}

export type WProperties = Record<string, unknown>;

export interface WObject {
  uuid: string;
  properties: WProperties;
  metadata?: { distance?: number; score?: number; explainScore?: string };
  /** Only when `includeVector` was asked for. */
  vector?: number[];
}

export interface WriteObject {
  id: string;
  properties: WProperties;
  /** The `default` named vector. */
  vector?: number[];
}

export interface BatchResult {
  /** Per-object errors by index in the input; insertMany does not throw for them. */
  errors: Record<number, { message: string }>;
}

export interface DeleteManyResult {
  matches: number;
  successful: number;
  failed: number;
}

export interface FetchOptions {
  filters?: FilterValue;
  limit: number;
  offset?: number;
  sort?: { property: string; ascending: boolean }[];
  returnProperties?: string[];
  includeVector?: boolean;
}

export interface SearchOptions {
  filters?: FilterValue;
  limit: number;
  offset: number;
  returnProperties: string[];
  returnMetadata: ('distance' | 'score' | 'explainScore')[];
}

export interface NearVectorOptions extends SearchOptions {
  targetVector: string;
}

export interface Bm25Options extends SearchOptions {
  queryProperties: string[];
}

export interface HybridOptions extends SearchOptions {
  alpha: number;
  fusionType: 'RelativeScore' | 'Ranked';
  vector: number[];
  targetVector: string;
  queryProperties: string[];
}

export interface AggregateOptions {
  filters?: FilterValue;
  /** An int property whose sum to return as `sum`. */
  sumOf?: string;
}

export interface WeaviateCollectionLike {
  /** REST create: throws (HTTP 422, "already exists") when the id exists; never overwrites. */
  insert(object: WriteObject): Promise<void>;
  /** gRPC batch upsert (an existing id is replaced); per-object errors are returned, not thrown. */
  insertMany(objects: WriteObject[]): Promise<BatchResult>;
  /** gRPC batch delete; Weaviate caps the objects deleted per call (QUERY_MAXIMUM_RESULTS): loop until 0 matches. */
  deleteMany(filters: FilterValue): Promise<DeleteManyResult>;
  fetchObjects(options: FetchOptions): Promise<WObject[]>;
  nearVector(vector: number[], options: NearVectorOptions): Promise<WObject[]>;
  bm25(query: string, options: Bm25Options): Promise<WObject[]>;
  hybrid(query: string, options: HybridOptions): Promise<WObject[]>;
  aggregate(options: AggregateOptions): Promise<{ totalCount: number; sum: number | null }>;
}

/** How to reach Weaviate. Times in milliseconds. */
export interface ConnectOptions {
  httpHost: string;
  httpPort: number;
  httpSecure: boolean;
  httpPath: string;
  grpcHost: string;
  grpcPort: number;
  grpcSecure: boolean;
  apiKey?: string;
  /** Passed to the client as its own `timeout: { init, query, insert }` (whole seconds, rounded up). */
  timeouts: { initMs: number; queryMs: number; insertMs: number };
}

export type ConnectFn = (options: ConnectOptions) => Promise<WeaviateClientLike>;

/** Connects with weaviate-client's `connectToCustom` (REST + gRPC) and adapts it to {@link WeaviateClientLike}. */
export const connectWeaviate: ConnectFn = async (options) => {
  const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
  const client = await weaviate.connectToCustom({
    httpHost: options.httpHost,
    httpPort: options.httpPort,
    httpSecure: options.httpSecure,
    httpPath: options.httpPath,
    grpcHost: options.grpcHost,
    grpcPort: options.grpcPort,
    grpcSecure: options.grpcSecure,
    authCredentials: options.apiKey ? new ApiKey(options.apiKey) : undefined,
    timeout: {
      init: seconds(options.timeouts.initMs),
      query: seconds(options.timeouts.queryMs),
      insert: seconds(options.timeouts.insertMs),
    },
  });
  return adaptClient(client);
};

function adaptClient(client: WeaviateClient): WeaviateClientLike {
  return {
    isReady: () => client.isReady(),
    close: () => client.close(),
    collectionExists: (name) => client.collections.exists(name),
    createCollection: async (spec) => {
      const vectorIndexConfig =
        spec.vectors === 'hnsw-cosine'
          ? configure.vectorIndex.hnsw({ distanceMetric: 'cosine' })
          : configure.vectorIndex.flat({ distanceMetric: 'cosine' });
      await client.collections.create({
        name: spec.name,
        description: spec.description,
        // Always explicit: a server whose DEFAULT_VECTORIZER_MODULE is set would otherwise vectorize kbql's records.
        vectorizers: configure.vectors.selfProvided({ name: 'default', vectorIndexConfig }),
        invertedIndex: configure.invertedIndex({
          bm25k1: spec.invertedIndex.bm25K1,
          bm25b: spec.invertedIndex.bm25B,
          indexNullState: spec.invertedIndex.indexNullState,
          stopwordsPreset: 'en',
        }),
        multiTenancy: spec.multiTenant
          ? configure.multiTenancy({ enabled: true, autoTenantCreation: true, autoTenantActivation: true })
          : undefined,
        properties: spec.properties.map(toPropertyConfig),
      });
    },
    deleteCollection: (name) => client.collections.delete(name),
    collectionDescription: async (name) => {
      try {
        return (await client.collections.use(name).config.get()).description ?? '';
      } catch (error) {
        if (error instanceof clientErrors.WeaviateUnexpectedStatusCodeError && error.code === 404) return null;
        throw error;
      }
    },
    listProperties: async (name) => {
      const config = await client.collections.use(name).config.get();
      return config.properties.map((p) => ({
        name: p.name,
        dataType: p.dataType as WeaviateDataType,
        tokenization: p.tokenization === 'word' || p.tokenization === 'field' ? p.tokenization : undefined,
        indexFilterable: p.indexFilterable,
        indexSearchable: p.indexSearchable,
      }));
    },
    addProperty: async (name, property) => {
      await client.collections.use(name).config.addProperty(toPropertyConfig(property));
    },
    ensureTenant: async (name, tenant) => {
      const tenants = client.collections.use(name).tenants;
      if (await tenants.getByName(tenant)) return;
      await tenants.create([{ name: tenant }]);
    },
    collection: (name, tenant) => adaptCollection(client, name, tenant),
  };
}

function toPropertyConfig(p: PropertySpec) {
  return {
    name: p.name,
    dataType: p.dataType,
    tokenization: p.dataType === 'text' || p.dataType === 'text[]' ? (p.tokenization ?? 'field') : undefined,
    indexFilterable: p.indexFilterable,
    indexSearchable: p.indexSearchable,
    indexRangeFilters: false,
  };
}

function adaptCollection(client: WeaviateClient, name: string, tenant?: string): WeaviateCollectionLike {
  const base = client.collections.use(name);
  const col = tenant === undefined ? base : base.withTenant(tenant);
  const toObject = (o: {
    uuid: string;
    properties: Record<string, unknown>;
    metadata?: { distance?: number; score?: number; explainScore?: string } | undefined;
    vectors?: Record<string, unknown>;
  }): WObject => {
    const v = o.vectors?.['default'];
    return {
      uuid: o.uuid,
      properties: o.properties,
      metadata: o.metadata ? { distance: o.metadata.distance, score: o.metadata.score, explainScore: o.metadata.explainScore } : undefined,
      vector: Array.isArray(v) && (v.length === 0 || typeof v[0] === 'number') ? (v as number[]) : undefined,
    };
  };
  return {
    insert: async (object) => {
      await col.data.insert({ id: object.id, properties: object.properties as never });
    },
    insertMany: async (objects) => {
      const result = await col.data.insertMany(
        objects.map((o) => ({
          id: o.id,
          properties: o.properties as never,
          vectors: o.vector ? { default: o.vector } : undefined,
        })),
      );
      const errors: BatchResult['errors'] = {};
      for (const [index, error] of Object.entries(result.errors)) errors[Number(index)] = { message: error.message };
      return { errors };
    },
    deleteMany: async (filters) => {
      const result = await col.data.deleteMany(filters);
      return { matches: result.matches, successful: result.successful, failed: result.failed };
    },
    fetchObjects: async (options) => {
      let sort: ReturnType<typeof col.sort.byId> | undefined;
      // The collection is untyped (no property generic), so the client's key type is `never`: names are checked by
      // Weaviate instead.
      for (const s of options.sort ?? []) {
        const property = s.property as never;
        sort = sort ? sort.byProperty(property, s.ascending) : col.sort.byProperty(property, s.ascending);
      }
      const result = await col.query.fetchObjects({
        filters: options.filters,
        limit: options.limit,
        offset: options.offset,
        sort,
        returnProperties: options.returnProperties,
        includeVector: options.includeVector ? ['default'] : undefined,
      });
      return result.objects.map(toObject);
    },
    nearVector: async (vector, options) => {
      const result = await col.query.nearVector(vector, {
        filters: options.filters,
        limit: options.limit,
        offset: options.offset,
        targetVector: options.targetVector,
        returnProperties: options.returnProperties,
        returnMetadata: options.returnMetadata,
      });
      return result.objects.map(toObject);
    },
    bm25: async (query, options) => {
      const result = await col.query.bm25(query, {
        filters: options.filters,
        limit: options.limit,
        offset: options.offset,
        queryProperties: options.queryProperties,
        returnProperties: options.returnProperties,
        returnMetadata: options.returnMetadata,
      });
      return result.objects.map(toObject);
    },
    hybrid: async (query, options) => {
      const result = await col.query.hybrid(query, {
        filters: options.filters,
        limit: options.limit,
        offset: options.offset,
        alpha: options.alpha,
        fusionType: options.fusionType,
        vector: options.vector,
        targetVector: options.targetVector,
        queryProperties: options.queryProperties,
        returnProperties: options.returnProperties,
        returnMetadata: options.returnMetadata,
      });
      return result.objects.map(toObject);
    },
    aggregate: async (options) => {
      if (options.sumOf === undefined) {
        const result = await col.aggregate.overAll({ filters: options.filters });
        return { totalCount: result.totalCount, sum: null };
      }
      const result = await col.aggregate.overAll({
        filters: options.filters,
        returnMetrics: col.metrics.aggregate(options.sumOf).integer(['sum']),
      });
      const metrics = (result.properties as Record<string, { sum?: number } | undefined> | undefined)?.[options.sumOf];
      return { totalCount: result.totalCount, sum: metrics?.sum ?? null };
    },
  };
}
