import type { BaseContext } from '@apollo/server';
import type { SyncPlugin } from './composite.plugin';

export interface PersistedQueriesPolicyOptions<TContext extends BaseContext> {
  /** Whether this request's caller may add a query to the shared APQ cache (kbql: identified callers only). */
  mayRegister: (context: TContext) => boolean;
}

/**
 * Automatic persisted queries register a query in the shared cache (Redis, 24 h) once it has parsed, validated and
 * passed the limits — before any field's `@auth` runs, so an anonymous caller refused with 401 could still fill the
 * cache with large queries. This plugin keeps such requests from registering: they run as plain queries, and the
 * next hash-only request gets PERSISTED_QUERY_NOT_FOUND. It clears Apollo's documented
 * `metrics.persistedQueryRegister` flag, which Apollo reads after `didResolveOperation` to decide the write.
 */
export function createPersistedQueriesPolicyPlugin<TContext extends BaseContext>(
  options: PersistedQueriesPolicyOptions<TContext>,
): SyncPlugin<TContext> {
  return {
    requestDidStart() {
      return {
        didResolveOperation(requestContext) {
          if (requestContext.metrics.persistedQueryRegister && !options.mayRegister(requestContext.contextValue)) {
            requestContext.metrics.persistedQueryRegister = false;
          }
        },
      };
    },
  };
}
