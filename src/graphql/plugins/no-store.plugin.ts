import type { BaseContext } from '@apollo/server';
import type { SyncPlugin } from './composite.plugin';

/**
 * Marks every GraphQL response `Cache-Control: no-store` (responses hold one caller's data; no shared HTTP cache may
 * keep them). It replaces Apollo's cache-control plugin, which kbql turns off: that plugin hooks every field of every
 * response to compute hints kbql never sets, and ends up sending this same header.
 */
export function createNoStorePlugin<TContext extends BaseContext>(): SyncPlugin<TContext> {
  return {
    requestDidStart() {
      return {
        willSendResponse({ response }) {
          if (!response.http.headers.has('cache-control')) response.http.headers.set('cache-control', 'no-store');
        },
      };
    },
  };
}
