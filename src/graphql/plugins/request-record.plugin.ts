import type { BaseContext } from '@apollo/server';
import type { SyncPlugin } from './composite.plugin';
import { requestRecordOf, responseSummary } from '../../observability/request-record';

/** Fills the request record the HTTP layer attached to the context, for its per-request log line. */
export function createRequestRecordPlugin<TContext extends BaseContext>(): SyncPlugin<TContext> {
  return {
    requestDidStart() {
      return {
        willSendResponse(requestContext) {
          const record = requestRecordOf(requestContext.contextValue);
          if (!record) return;
          record.operation = requestContext.operationName ?? null;
          record.operationType = requestContext.operation?.operation ?? null;
          Object.assign(record, responseSummary(requestContext));
        },
      };
    },
  };
}
