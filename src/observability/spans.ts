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
 * True inside a span that is not recorded (a request the sampler left out): a child would not be recorded either
 * (the parent-based sampler follows the parent; a trace-id ratio gives the whole trace one decision), so callers run
 * their work without starting one — no span object, no context switch — on the path that most requests take.
 */
export function insideUnrecordedSpan(): boolean {
  const active = trace.getActiveSpan();
  return active !== undefined && !active.isRecording();
}
