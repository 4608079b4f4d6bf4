import type {
  ApolloServerPlugin,
  BaseContext,
  GraphQLRequestContext,
  GraphQLRequestContextDidResolveOperation,
  GraphQLRequestContextExecutionDidStart,
  GraphQLRequestContextParsingDidStart,
  GraphQLRequestContextResponseForOperation,
  GraphQLRequestContextValidationDidStart,
  GraphQLRequestContextWillSendResponse,
  GraphQLRequestExecutionListener,
  GraphQLRequestListener,
  GraphQLResponse,
} from '@apollo/server';

/**
 * The part of Apollo's request listener kbql's own plugins use, answered synchronously: none of them waits for I/O,
 * and Apollo's async hooks cost a promise per plugin per step of every request.
 */
export interface SyncRequestListener<TContext extends BaseContext> {
  /** Returns what to run when parsing ends. */
  parsingDidStart?(requestContext: GraphQLRequestContextParsingDidStart<TContext>): ((error?: Error) => void) | void;
  /** Returns what to run when validation ends. */
  validationDidStart?(requestContext: GraphQLRequestContextValidationDidStart<TContext>): ((errors?: readonly Error[]) => void) | void;
  /** Throwing a GraphQLError refuses the operation (Apollo answers with it). */
  didResolveOperation?(requestContext: GraphQLRequestContextDidResolveOperation<TContext>): void;
  /**
   * A response that replaces execution (the first listener to give one wins; execution hooks then never run). The one
   * hook that may wait: a cache lookup. Resolve to null to execute as usual; a rejection fails the request.
   */
  responseForOperation?(requestContext: GraphQLRequestContextResponseForOperation<TContext>): Promise<GraphQLResponse | null> | null;
  /** Returns what to run when execution ends. */
  executionDidStart?(requestContext: GraphQLRequestContextExecutionDidStart<TContext>): ((error?: Error) => void) | void;
  willSendResponse?(requestContext: GraphQLRequestContextWillSendResponse<TContext>): void;
}

/** A plugin of kbql's own: Apollo's `requestDidStart`, synchronous. Run it through {@link composePlugins}. */
export interface SyncPlugin<TContext extends BaseContext> {
  requestDidStart(requestContext: GraphQLRequestContext<TContext>): SyncRequestListener<TContext> | void;
}

/** Apollo's hooks promise a result; one already settled costs no new promise per call. */
const DONE: Promise<void> = Promise.resolve();

/** Calls `hook` on each listener: a failure becomes the step's rejected promise, as an async hook's would. */
function each<L>(listeners: readonly L[], hook: (listener: L) => void): Promise<void> {
  try {
    for (const listener of listeners) hook(listener);
    return DONE;
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** The end hooks the `…DidStart` hooks returned, as one that runs them in reverse (innermost first). */
function ends<A extends unknown[]>(started: (((...args: A) => void) | void)[]): ((...args: A) => Promise<void>) | undefined {
  const found = started.filter((end): end is (...args: A) => void => typeof end === 'function').reverse();
  return found.length === 0 ? undefined : (...args: A) => each(found, (end) => end(...args));
}

/** One Apollo listener for this request's listeners, with only the hooks at least one of them has. */
function toApolloListener<TContext extends BaseContext>(listeners: SyncRequestListener<TContext>[]): GraphQLRequestListener<TContext> {
  const having = <K extends keyof SyncRequestListener<TContext>>(hook: K) =>
    listeners.filter((l): l is SyncRequestListener<TContext> & Required<Pick<SyncRequestListener<TContext>, K>> => hook in l);
  const listener: GraphQLRequestListener<TContext> = {};
  const parsing = having('parsingDidStart');
  if (parsing.length > 0) listener.parsingDidStart = (ctx) => Promise.resolve(ends(parsing.map((l) => l.parsingDidStart(ctx))));
  const validation = having('validationDidStart');
  if (validation.length > 0) {
    listener.validationDidStart = (ctx) => Promise.resolve(ends(validation.map((l) => l.validationDidStart(ctx))));
  }
  const resolved = having('didResolveOperation');
  if (resolved.length > 0) listener.didResolveOperation = (ctx) => each(resolved, (l) => l.didResolveOperation(ctx));
  const answering = having('responseForOperation');
  if (answering.length > 0) {
    listener.responseForOperation = async (ctx) => {
      for (const l of answering) {
        const response = await l.responseForOperation(ctx);
        if (response) return response;
      }
      return null;
    };
  }
  const executing = having('executionDidStart');
  if (executing.length > 0) {
    listener.executionDidStart = (ctx) => {
      const executionDidEnd = ends(executing.map((l) => l.executionDidStart(ctx)));
      return Promise.resolve<GraphQLRequestExecutionListener<TContext> | undefined>(executionDidEnd && { executionDidEnd });
    };
  }
  const sending = having('willSendResponse');
  if (sending.length > 0) listener.willSendResponse = (ctx) => each(sending, (l) => l.willSendResponse(ctx));
  return listener;
}

/**
 * kbql's own plugins as one Apollo plugin. Apollo awaits every plugin at every step of every request (`Promise.all`
 * over all of them, each hook an async call): ten small plugins cost a few hundred promises per request, and while a
 * trace is recorded each promise also runs async-context hooks. Composed and synchronous, a step costs one settled
 * promise. Order is Apollo's: hooks in plugin order, end hooks in reverse; a hook that throws fails its step.
 *
 * Plugins Apollo looks for by id (landing page, cache control, inline trace, usage reporting) stay outside.
 */
export function composePlugins<TContext extends BaseContext>(plugins: SyncPlugin<TContext>[]): ApolloServerPlugin<TContext> {
  return {
    requestDidStart(requestContext) {
      const listeners: SyncRequestListener<TContext>[] = [];
      try {
        for (const plugin of plugins) {
          const listener = plugin.requestDidStart(requestContext);
          if (listener) listeners.push(listener);
        }
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      return Promise.resolve(listeners.length === 0 ? undefined : toApolloListener(listeners));
    },
  };
}
