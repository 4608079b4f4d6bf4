import { SpanStatusCode, trace, type Span } from '@opentelemetry/api';
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
