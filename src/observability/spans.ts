import { SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { SPAN_ATTRIBUTES as A } from './attributes';

/** Ends a span; a code marks it as failed (status ERROR, `kbql.error.code`) without recording messages or stacks. */
export function endSpan(span: Span, errorCode: string | null): void {
  if (errorCode) {
    span.setAttribute(A.errorCode, errorCode);
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
  }
  span.end();
}

/**
 * True inside a span that is being recorded. kbql's own spans (`kbql.retrieve`, `kbql.store.*`, `kbql.embed` …) are
 * only ever children of one: a request's sampling decision is made once, at the door, and a request the sampler left
 * out runs its work directly — no span object, no context switch, no async context carried (see
 * `RecordedContextManager`). Outside any recorded span there is nothing to attach a child to.
 */
export function insideRecordedSpan(): boolean {
  return trace.getActiveSpan()?.isRecording() === true;
}

// A property, not a WeakMap entry: Apollo hands plugins and resolvers a shallow clone of the context, which keeps it.
const TRACE_PARENT = Symbol.for('kbql.traceParent');

/**
 * Hands a request's trace context (its HTTP server span, recorded or not) to the GraphQL tracing plugin on the
 * request's context object. Only recorded contexts are carried across `await`, so the plugin could not otherwise tell
 * a request the sampler left out from one that arrived with no trace at all.
 */
export function attachTraceParent(contextValue: object, parent: Context): void {
  (contextValue as Record<symbol, unknown>)[TRACE_PARENT] = parent;
}

/** The trace context {@link attachTraceParent} left on a GraphQL context object, if any. */
export function traceParentOf(contextValue: unknown): Context | undefined {
  return contextValue && typeof contextValue === 'object'
    ? ((contextValue as Record<symbol, Context | undefined>)[TRACE_PARENT] ?? undefined)
    : undefined;
}
