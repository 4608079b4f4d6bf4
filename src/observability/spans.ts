import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { SPAN_ATTRIBUTES as A } from './attributes';

/** Ends a span; a code marks it as failed (status ERROR, `kbql.error.code`) without recording messages or stacks. */
export function endSpan(span: Span, errorCode: string | null): void {
  if (errorCode) {
    span.setAttribute(A.errorCode, errorCode);
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
  }
  span.end();
}
