import { randomUUID } from 'node:crypto';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { isAppError } from '../errors';
import type { Logger } from '../logger';

/** Apollo's own client-error codes, passed through unchanged. */
const APOLLO_CLIENT_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/** A GraphQLError Apollo raised with a 4xx HTTP status and no `extensions.code` of its own. */
function isCodelessClientError(error: unknown): boolean {
  if (!(error instanceof GraphQLError) || error.originalError || error.extensions['code'] !== undefined) return false;
  const status = (error.extensions['http'] as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}

/**
 * The one place errors become client-visible: AppErrors keep their code, message and details (also when a plugin
 * threw them before execution); Apollo's client errors pass; anything else is masked as INTERNAL_SERVER_ERROR with an
 * `errorId` — the correlation id of the log line that holds the real error and its stack — unless `exposeInternal`.
 */
export function createFormatError(options: { exposeInternal: boolean; logger: Logger }) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const unwrapped = unwrapResolverError(error);
    const original = unwrapped instanceof GraphQLError && isAppError(unwrapped.originalError) ? unwrapped.originalError : unwrapped;
    const base = { message: formatted.message, locations: formatted.locations, path: formatted.path };
    if (isAppError(original)) {
      return { ...base, message: original.message, extensions: { ...original.details, code: original.code } };
    }
    const code = formatted.extensions?.code;
    if (isCodelessClientError(original)) {
      // Apollo's own request errors without a code (an APQ hash that does not match its query, an unknown APQ
      // version): the client's mistake, answered 400 by Apollo, so not logged as ours.
      return { ...base, extensions: { code: 'BAD_REQUEST' } };
    }
    if (typeof code === 'string' && APOLLO_CLIENT_CODES.has(code)) {
      const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
      return { ...base, extensions: options.exposeInternal ? formatted.extensions : extensions };
    }
    const errorId = randomUUID();
    options.logger.error('unexpected error', {
      errorId,
      path: formatted.path?.join('.'),
      error: original instanceof Error ? { message: original.message, stack: original.stack } : String(original),
    });
    if (options.exposeInternal) return { ...formatted, extensions: { ...formatted.extensions, code: 'INTERNAL_SERVER_ERROR', errorId } };
    return { ...base, message: 'Something went wrong on our side.', extensions: { code: 'INTERNAL_SERVER_ERROR', errorId } };
  };
}
