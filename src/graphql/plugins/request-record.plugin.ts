import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { requestRecordOf, responseSummary } from '../../observability/request-record';

/** Fills the request record the HTTP layer attached to the context, for its per-request log line. */
export function createRequestRecordPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse(requestContext) {
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
