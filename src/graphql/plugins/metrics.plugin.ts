import type { BaseContext } from '@apollo/server';
import type { SyncPlugin } from './composite.plugin';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, type GraphQLSchema } from 'graphql';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ERROR_CODES } from '../../errors';
import { LabelGuard, OTHER_LABEL } from '../../observability/label-guard';
import { METRICS } from '../../observability/metrics';
import { responseSummary } from '../../observability/request-record';

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Apollo's own error codes, counted under their names. */
export const APOLLO_ERROR_CODES = [
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
] as const;

export interface MetricsPluginOptions {
  /** The registry the GraphQL metrics are registered in; metrics already registered there under the same names are reused. */
  registry: Registry;
  /**
   * Operation names that always get their own `operation` label value (e.g. the operations of your clients).
   * @default []
   */
  operationNames?: readonly string[];
  /**
   * How many other distinct operation names get their own label value, first come first served; anonymous
   * operations, malformed names and names past the cap are counted as `__other__`, so the series stay bounded.
   * @default 50
   */
  maxOperationNames?: number;
  /**
   * Error codes counted under their own name; any other code counts as `__other__`.
   * @default kbql's error registry plus Apollo's codes
   */
  errorCodes?: readonly string[];
  /**
   * Buckets of the request and resolver duration histograms, in seconds.
   * @default [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
   */
  durationBuckets?: number[];
}

/**
 * Prometheus metrics for every GraphQL request: count by operation, type and outcome; duration by operation;
 * errors by `extensions.code`; requests in progress (resolver durations: {@link timeResolvers}). Label values are
 * bounded (see {@link MetricsPluginOptions.maxOperationNames}).
 */
export function createMetricsPlugin<TContext extends BaseContext>(options: MetricsPluginOptions): SyncPlugin<TContext> {
  const { registry } = options;
  const buckets = options.durationBuckets ?? DEFAULT_BUCKETS;
  const operations = new LabelGuard(options.maxOperationNames ?? 50, new Set(options.operationNames ?? []));
  const codes = new Set<string>(options.errorCodes ?? [...Object.keys(ERROR_CODES), ...APOLLO_ERROR_CODES]);

  const requests = reuse(
    registry,
    METRICS.graphqlRequests,
    () =>
      new Counter({
        name: METRICS.graphqlRequests,
        help: 'GraphQL requests by operation name (bounded; others are __other__), operation type and outcome (ok, partial, error).',
        labelNames: ['operation', 'type', 'outcome'] as const,
        registers: [registry],
      }),
  );
  const duration = reuse(
    registry,
    METRICS.graphqlRequestDuration,
    () =>
      new Histogram({
        name: METRICS.graphqlRequestDuration,
        help: 'GraphQL request duration by operation name, in seconds.',
        labelNames: ['operation'] as const,
        buckets,
        registers: [registry],
      }),
  );
  const errors = reuse(
    registry,
    METRICS.graphqlErrors,
    () =>
      new Counter({
        name: METRICS.graphqlErrors,
        help: 'GraphQL errors in responses by operation name and extensions.code.',
        labelNames: ['operation', 'code'] as const,
        registers: [registry],
      }),
  );
  resolverDurationHistogram(registry, buckets);
  const active = reuse(
    registry,
    METRICS.graphqlRequestsActive,
    () =>
      new Gauge({
        name: METRICS.graphqlRequestsActive,
        help: 'GraphQL requests in progress.',
        registers: [registry],
      }),
  );

  return {
    requestDidStart() {
      const started = performance.now();
      active.inc();
      let finished = false;
      return {
        willSendResponse(requestContext) {
          if (finished) return;
          finished = true;
          active.dec();
          const operation = operations.value(requestContext.operationName);
          const type = requestContext.operation?.operation ?? 'unknown';
          const { outcome, errorCodes } = responseSummary(requestContext);
          requests.inc({ operation, type, outcome });
          duration.observe({ operation }, (performance.now() - started) / 1000);
          for (const code of errorCodes) errors.inc({ operation, code: codes.has(code) ? code : OTHER_LABEL });
        },
      };
    },
  };
}

export interface ResolverDurationOptions {
  /** The registry `kbql_graphql_resolver_duration_seconds` is in (the metrics plugin's). */
  registry: Registry;
  /**
   * The fields (`Type.field`) whose resolver duration is measured — the expensive ones; other fields cost nothing.
   * @default ['Query.search', 'Query.ask', 'Mutation.ingestDocuments', 'Collection.stats']
   */
  fields?: readonly string[];
  /** As the metrics plugin's. @default [0.005, 0.01, … 30] */
  durationBuckets?: number[];
}

/**
 * Returns the schema with the resolvers of the expensive fields timed into `kbql_graphql_resolver_duration_seconds`
 * (errors included). A schema transform rather than a plugin's `willResolveField`: that hook makes Apollo call into
 * the plugin for every field of every response, and only a handful of fields are timed.
 */
export function timeResolvers(schema: GraphQLSchema, options: ResolverDurationOptions): GraphQLSchema {
  const histogram = resolverDurationHistogram(options.registry, options.durationBuckets ?? DEFAULT_BUCKETS);
  const fields = new Set(options.fields ?? ['Query.search', 'Query.ask', 'Mutation.ingestDocuments', 'Collection.stats']);
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      const field = `${typeName}.${fieldName}`;
      if (!fields.has(field)) return fieldConfig;
      const resolve = fieldConfig.resolve ?? defaultFieldResolver;
      const observe = (started: number) => histogram.observe({ field }, (performance.now() - started) / 1000);
      return {
        ...fieldConfig,
        resolve(source, args, context, info) {
          const started = performance.now();
          let result: unknown;
          try {
            result = resolve(source, args, context, info);
          } catch (error) {
            observe(started);
            throw error;
          }
          if (result instanceof Promise) return result.finally(() => observe(started));
          observe(started);
          return result;
        },
      };
    },
  });
}

function resolverDurationHistogram(registry: Registry, buckets: number[]): Histogram<'field'> {
  return reuse(
    registry,
    METRICS.graphqlResolverDuration,
    () =>
      new Histogram({
        name: METRICS.graphqlResolverDuration,
        help: 'Resolver duration of the expensive fields (Type.field), in seconds.',
        labelNames: ['field'] as const,
        buckets,
        registers: [registry],
      }),
  );
}

/** The metric already registered under `name` (another plugin instance on the same registry), or a new one. */
function reuse<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}
