import type { BaseContext, GraphQLRequestContextWillSendResponse } from '@apollo/server';
import type { Context } from '@opentelemetry/api';

/** How a GraphQL request ended: no errors, data with errors, or no data. */
export type RequestOutcome = 'ok' | 'partial' | 'error';

/**
 * What the HTTP layer and kbql's plugins share about one request: its trace context, handed to the tracing plugin,
 * and what the HTTP layer logs, filled in by `createRequestRecordPlugin` (`graphql/plugins/request-record.plugin.ts`)
 * as Apollo runs it.
 */
export interface RequestRecord {
  /**
   * The request's HTTP server span under its incoming parent, recorded or not. Only recorded contexts are carried
   * across `await` (see `RecordedContextManager`), so without it the tracing plugin could not tell a request the
   * sampler left out from one that arrived with no trace at all.
   */
  traceParent: Context | null;
  /** The resolved operation's name (null when anonymous or never resolved). */
  operation: string | null;
  operationType: string | null;
  outcome: RequestOutcome | null;
  /** `extensions.code` of each error in the response, in order. */
  errorCodes: string[];
}

// A property, not a WeakMap entry: `executeOperation` hands plugins a shallow clone of the context, which keeps it.
const RECORD = Symbol.for('kbql.requestRecord');

/** Attaches a fresh record to a GraphQL context object and returns it. */
export function attachRequestRecord(contextValue: object, traceParent: Context | null = null): RequestRecord {
  const record: RequestRecord = { traceParent, operation: null, operationType: null, outcome: null, errorCodes: [] };
  (contextValue as Record<symbol, unknown>)[RECORD] = record;
  return record;
}

export function requestRecordOf(contextValue: unknown): RequestRecord | undefined {
  return contextValue && typeof contextValue === 'object'
    ? ((contextValue as Record<symbol, unknown>)[RECORD] as RequestRecord | undefined)
    : undefined;
}

/** The outcome and error codes of a response (formatted errors: their codes are the ones clients see). */
export function responseSummary<TContext extends BaseContext>(
  requestContext: GraphQLRequestContextWillSendResponse<TContext>,
): {
  outcome: RequestOutcome;
  errorCodes: string[];
} {
  const body = requestContext.response.body;
  const result = body.kind === 'single' ? body.singleResult : body.initialResult;
  const errors = result.errors ?? [];
  const errorCodes = errors.map((e) => (typeof e.extensions?.code === 'string' ? e.extensions.code : 'INTERNAL_SERVER_ERROR'));
  const hasData = result.data !== undefined && result.data !== null;
  return { outcome: errors.length === 0 ? 'ok' : hasData ? 'partial' : 'error', errorCodes };
}
