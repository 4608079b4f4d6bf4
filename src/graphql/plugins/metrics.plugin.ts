import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ERROR_CODES } from '../../errors';
import { LabelGuard, OTHER_LABEL } from '../../observability/label-guard';
import { METRICS } from '../../observability/metrics';
import { responseSummary } from '../../observability/request-record';

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
   * The fields (`Type.field`) whose resolver duration is measured — the expensive ones; other fields cost nothing.
   * @default ['Query.search', 'Query.ask', 'Mutation.ingestDocuments', 'Collection.stats']
   */
  resolverFields?: readonly string[];
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
 * errors by `extensions.code`; resolver duration of the expensive fields; requests in progress. Label values are
 * bounded (see {@link MetricsPluginOptions.maxOperationNames}).
 */
export function createMetricsPlugin<TContext extends BaseContext>(options: MetricsPluginOptions): ApolloServerPlugin<TContext> {
  const { registry } = options;
  const buckets = options.durationBuckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  const operations = new LabelGuard(options.maxOperationNames ?? 50, new Set(options.operationNames ?? []));
  const codes = new Set<string>(options.errorCodes ?? [...Object.keys(ERROR_CODES), ...APOLLO_ERROR_CODES]);
  const timedFields = new Set(options.resolverFields ?? ['Query.search', 'Query.ask', 'Mutation.ingestDocuments', 'Collection.stats']);

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
  const resolverDuration = reuse(
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
    async requestDidStart() {
      const started = performance.now();
      active.inc();
      let finished = false;
      return {
        async executionDidStart() {
          return {
            willResolveField({ info }) {
              const field = `${info.parentType.name}.${info.fieldName}`;
              if (!timedFields.has(field)) return;
              const fieldStarted = performance.now();
              return () => resolverDuration.observe({ field }, (performance.now() - fieldStarted) / 1000);
            },
          };
        },
        async willSendResponse(requestContext) {
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

/** The metric already registered under `name` (another plugin instance on the same registry), or a new one. */
function reuse<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}
