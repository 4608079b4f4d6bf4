import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';

/** The instrumentation scope of every kbql span. */
export const TRACER_NAME = 'kbql';

/**
 * Every span attribute key kbql writes, in one place. Values are counts, enums, names and ids — never document
 * text, query text, GraphQL variables or documents, headers or tokens. `test/e2e/observability.test.ts` fails when a
 * span carries a key that is not listed here.
 */
export const SPAN_ATTRIBUTES = {
  // OpenTelemetry semantic conventions (HTTP server, GraphQL).
  httpMethod: ATTR_HTTP_REQUEST_METHOD,
  httpStatusCode: ATTR_HTTP_RESPONSE_STATUS_CODE,
  httpRoute: ATTR_HTTP_ROUTE,
  /** The path only: a GET query string carries the operation and its variables. */
  urlPath: ATTR_URL_PATH,
  operationName: 'graphql.operation.name',
  operationType: 'graphql.operation.type',
  // kbql
  requestId: 'kbql.request.id',
  /** `extensions.code` of the first error (or the AppError code on a domain span). */
  errorCode: 'kbql.error.code',
  collection: 'kbql.collection',
  searchMode: 'kbql.search.mode',
  topK: 'kbql.search.top_k',
  hitCount: 'kbql.search.hit_count',
  embedder: 'kbql.embed.embedder',
  batchSize: 'kbql.embed.batch_size',
  storeAdapter: 'kbql.store.adapter',
  /** Ids asked for, or documents written, by one store call. */
  storeItems: 'kbql.store.items',
  /** Rows or hits a store call returned. */
  storeResults: 'kbql.store.results',
  synthesizer: 'kbql.synthesize.synthesizer',
  sourceCount: 'kbql.synthesize.source_count',
  citationCount: 'kbql.synthesize.citation_count',
  abstained: 'kbql.synthesize.abstained',
  documentCount: 'kbql.ingest.document_count',
  indexed: 'kbql.ingest.indexed',
  unchanged: 'kbql.ingest.unchanged',
  failed: 'kbql.ingest.failed',
  chunkCount: 'kbql.ingest.chunk_count',
  reembedEmbedder: 'kbql.reembed.embedder',
  reembedRemaining: 'kbql.reembed.remaining',
} as const;

export type SpanAttributeKey = (typeof SPAN_ATTRIBUTES)[keyof typeof SPAN_ATTRIBUTES];

/** Span names kbql emits (`kbql.store.<method>` for each store call). */
export const SPAN_NAMES = {
  parse: 'graphql.parse',
  validate: 'graphql.validate',
  execute: 'graphql.execute',
  /** Until the operation is resolved; then `<type> <name>` as the GraphQL semantic conventions say. */
  operation: 'graphql.operation',
  retrieve: 'kbql.retrieve',
  ingest: 'kbql.ingest',
  reembed: 'kbql.reembed',
  embed: 'kbql.embed',
  synthesize: 'kbql.synthesize',
  storePrefix: 'kbql.store.',
} as const;
