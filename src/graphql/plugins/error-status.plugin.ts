import type { BaseContext } from '@apollo/server';
import type { SyncPlugin } from './composite.plugin';
import { ERROR_CODES, type ErrorCode } from '../../errors';

/** Codes that decide the HTTP status of a GraphQL response, strongest first. */
export const STATUS_CODES: readonly ErrorCode[] = ['UNAUTHENTICATED', 'FORBIDDEN', 'RATE_LIMITED', 'QUERY_TOO_DEEP', 'QUERY_TOO_COMPLEX'];

/**
 * Gives a GraphQL response carrying an authentication, authorization, rate-limit or query-limit error that error's
 * HTTP status (401, 403, 429, 400) — the first of them in {@link STATUS_CODES} order — plus `WWW-Authenticate` on 401
 * and `Retry-After` on 429. Other resolver errors leave the status at 200 (the code is in the body).
 */
export function createErrorStatusPlugin<TContext extends BaseContext>(): SyncPlugin<TContext> {
  return {
    requestDidStart() {
      return {
        willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const errors = response.body.singleResult.errors;
          if (!errors?.length) return;
          for (const code of STATUS_CODES) {
            const error = errors.find((e) => e.extensions?.['code'] === code);
            if (!error) continue;
            response.http.status = ERROR_CODES[code].status;
            if (code === 'UNAUTHENTICATED') response.http.headers.set('www-authenticate', 'Bearer realm="kbql"');
            const retryAfter = error.extensions?.['retryAfter'];
            if (code === 'RATE_LIMITED' && typeof retryAfter === 'number') response.http.headers.set('retry-after', String(retryAfter));
            return;
          }
        },
      };
    },
  };
}
