import type { BaseContext } from '@apollo/server';
import type { SyncPlugin } from './composite.plugin';
import { context as otelContext, trace, type Context, type Tracer } from '@opentelemetry/api';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { defaultFieldResolver, type GraphQLSchema } from 'graphql';
import { SPAN_ATTRIBUTES as A, SPAN_NAMES, TRACER_NAME } from '../../observability/attributes';
import { requestRecordOf, responseSummary } from '../../observability/request-record';
import { endSpan } from '../../observability/spans';

export interface TracingPluginOptions {
  /**
   * The tracer spans come from. The default resolves through the global API, so the SDK that `main.ts` sets up
   * (or none: then every span is a no-op) is picked up whenever it is registered.
   * @default trace.getTracer('kbql')
   */
  tracer?: Tracer;
}

/** The active context resolvers of a request run in (the `graphql.execute` span), keyed by the request's context object. */
const executeContexts = new WeakMap<object, Context>();

const NAME = /^[_A-Za-z][_0-9A-Za-z]{0,127}$/;

/**
 * OpenTelemetry spans for each GraphQL operation: one operation span, named `<type> <name>` once the operation is
 * resolved, a child of the HTTP server span the HTTP layer attached to the context (else of the active context), with `graphql.parse`, `graphql.validate` and `graphql.execute` children. Parse and validate
 * spans appear only when Apollo had to parse the document (a cached document skips both). Attributes: operation name
 * and type, request outcome and error code — never the document, variables or headers.
 *
 * Pair it with {@link bindResolversToTrace}, so that spans started inside resolvers (`kbql.retrieve`, `kbql.store.*`
 * …) become children of `graphql.execute`.
 */
export function createTracingPlugin<TContext extends BaseContext>(options: TracingPluginOptions = {}): SyncPlugin<TContext> {
  const tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  return {
    requestDidStart(requestContext) {
      // The HTTP layer hands its span over on the context (a request it did not record has no active context).
      const parent = requestRecordOf(requestContext.contextValue)?.traceParent ?? otelContext.active();
      const parentSpan = trace.getSpan(parent);
      if (parentSpan && !parentSpan.isRecording()) return;
      const operationSpan = tracer.startSpan(SPAN_NAMES.operation, {}, parent);
      // Not sampled (or no SDK): nothing to record, so add no work to the request.
      if (!operationSpan.isRecording()) {
        operationSpan.end();
        return;
      }
      const operationContext = trace.setSpan(parent, operationSpan);
      const child = (name: string) => tracer.startSpan(name, {}, operationContext);
      const contextValue = requestContext.contextValue as object;
      let ended = false;
      return {
        parsingDidStart() {
          const span = child(SPAN_NAMES.parse);
          return (error) => endSpan(span, error ? 'GRAPHQL_PARSE_FAILED' : null);
        },
        validationDidStart() {
          const span = child(SPAN_NAMES.validate);
          return (errors) => endSpan(span, errors?.length ? 'GRAPHQL_VALIDATION_FAILED' : null);
        },
        didResolveOperation({ operationName, operation }) {
          const type = operation?.operation ?? 'unknown';
          const name = operationName && NAME.test(operationName) ? operationName : null;
          operationSpan.updateName(name ? `${type} ${name}` : type);
          operationSpan.setAttribute(A.operationType, type);
          if (name) operationSpan.setAttribute(A.operationName, name);
        },
        executionDidStart() {
          const span = child(SPAN_NAMES.execute);
          executeContexts.set(contextValue, trace.setSpan(operationContext, span));
          return (error) => endSpan(span, error ? 'INTERNAL_SERVER_ERROR' : null);
        },
        willSendResponse(responseContext) {
          if (ended) return;
          ended = true;
          executeContexts.delete(contextValue);
          const { outcome, errorCodes } = responseSummary(responseContext);
          endSpan(operationSpan, outcome === 'ok' ? null : (errorCodes[0] ?? 'INTERNAL_SERVER_ERROR'));
        },
      };
    },
  };
}

/**
 * Returns the schema with the resolvers that can start spans run inside their request's `graphql.execute` span
 * context. Apollo's plugin hooks cannot make a span active around execution, so without this, spans started in
 * resolvers would hang off the HTTP span instead of the operation. Only root fields and fields with a resolver of
 * their own are wrapped: a property read (the default resolver) starts no span, and wrapping every field of every
 * hit cost a context switch per field on the hot path.
 */
export function bindResolversToTrace(schema: GraphQLSchema): GraphQLSchema {
  const roots = new Set([schema.getQueryType()?.name, schema.getMutationType()?.name, schema.getSubscriptionType()?.name]);
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, _fieldName, typeName) => {
      if (!roots.has(typeName) && !fieldConfig.resolve) return fieldConfig;
      const resolve = fieldConfig.resolve ?? defaultFieldResolver;
      return {
        ...fieldConfig,
        resolve(source, args, contextValue: unknown, info) {
          const active = contextValue && typeof contextValue === 'object' ? executeContexts.get(contextValue) : undefined;
          return active
            ? otelContext.with(active, resolve, undefined, source, args, contextValue, info)
            : resolve(source, args, contextValue, info);
        },
      };
    },
  });
}
