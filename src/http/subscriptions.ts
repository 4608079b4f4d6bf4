import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import {
  getOperationAST,
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  OperationTypeNode,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, isAppError } from '../errors';
import type { Logger } from '../logger';
import type { Principal } from '../ports/principal.port';
import { checkOperationLimits, type QueryLimits } from '../graphql/plugins/query-limits.plugin';
import { checkInputNesting } from '../graphql/input-depth';

/** The WebSocket subprotocol of graphql-ws (the GraphQL over WebSocket protocol); no other is spoken. */
export const GRAPHQL_WS_PROTOCOL = 'graphql-transport-ws';
/** Close code of a connection over its caller's cap (graphql-ws's "too many" code: its client does not retry it). */
export const TOO_MANY_CONNECTIONS = CloseCode.TooManyInitialisationRequests;

export interface SubscriptionServerOptions<TContext extends object> {
  /** The HTTP server whose upgrade requests on `path` become GraphQL WebSocket connections. */
  httpServer: http.Server;
  schema: GraphQLSchema;
  /** @default '/graphql' (the same path as queries and mutations) */
  path?: string;
  /**
   * Who is connecting, from `connectionParams.authorization` (else the upgrade request's Authorization header): the
   * same authenticator as HTTP. Null → anonymous (guarded fields answer UNAUTHENTICATED); a thrown AppError refuses
   * the connection (close code 4403 with the error code as reason).
   */
  authenticate: (authorization: string | undefined, request: http.IncomingMessage) => Promise<Principal | null>;
  /** The context of one subscription (a fresh one per operation: loaders never outlive it). */
  context: (requestId: string, principal: Principal | null, request: http.IncomingMessage) => TContext;
  /** Depth, alias and cost limits: the same as HTTP's. */
  limits: QueryLimits;
  /** Most tokens in an operation document (as HTTP's `parseOptions.maxTokens`). */
  maxTokens: number;
  /** Whether introspection is allowed (off in production, as over HTTP). */
  introspection: boolean;
  /** Formats every error sent to a client (masks internal errors: the same formatter as HTTP). */
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  logger: Logger;
  /** Largest WebSocket message accepted, in bytes (a bigger one closes the connection with 1009). */
  maxPayloadBytes: number;
  /**
   * Most operations one connection may run at once; one more is refused with QUERY_TOO_COMPLEX.
   * @default 20
   */
  maxSubscriptionsPerConnection?: number;
  /**
   * Time a client has to send `connection_init` after connecting.
   * @default 10000
   */
  connectionInitWaitTimeoutMs?: number;
  /**
   * Most open connections of one caller (see `callerKey`) on this server; one more is closed with 4429 and reason
   * RATE_LIMITED right after `connection_init`.
   * @default 10
   */
  maxConnectionsPerCaller?: number;
  /** Who a connection belongs to, for `maxConnectionsPerCaller` (the same key as `@rateLimit`'s). */
  callerKey: (principal: Principal | null, request: http.IncomingMessage) => string;
  /** Called as subscriptions start and end (the active-subscriptions gauge). */
  onActiveChange?: (delta: 1 | -1) => void;
}

export interface SubscriptionServer {
  /** Open WebSocket connections. */
  readonly connections: number;
  /**
   * Closes every connection with 1001 (going away) — the client's iterators end, so their `return()` stops the work
   * behind them — and stops accepting upgrades.
   */
  close(): Promise<void>;
}

interface ConnectionExtra {
  readonly socket: WebSocket;
  readonly request: http.IncomingMessage;
  principal?: Principal | null;
  connectionId?: string;
}

/**
 * GraphQL subscriptions over WebSocket (graphql-ws, the `graphql-transport-ws` protocol) on the HTTP server's own
 * port and path, with the HTTP transport's guarantees: the same authenticator (a bearer token in `connectionParams`),
 * the same `@auth` and `@rateLimit` (they are in the schema), the same depth/alias/cost and token limits, no
 * introspection in production, and the same error masking. Only subscription operations are accepted: queries and
 * mutations go over HTTP, where the Apollo plugins (metrics, tracing, limits) see them.
 *
 * Cross-site WebSocket hijacking needs ambient credentials (cookies); kbql reads none — a token must be sent in
 * `connectionParams` or the Authorization header, which a foreign page cannot make a browser add.
 */
export function attachSubscriptionServer<TContext extends object>(options: SubscriptionServerOptions<TContext>): SubscriptionServer {
  const path = options.path ?? '/graphql';
  const maxPerConnection = options.maxSubscriptionsPerConnection ?? 20;
  const maxConnectionsPerCaller = options.maxConnectionsPerCaller ?? 10;
  const connectionsByCaller = new Map<string, number>();
  // Field suggestions ("Did you mean …?") reveal the schema: hidden where introspection is off, as over HTTP.
  const hideSuggestions = !options.introspection;
  const rules = options.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayloadBytes,
    handleProtocols: (protocols) => (protocols.has(GRAPHQL_WS_PROTOCOL) ? GRAPHQL_WS_PROTOCOL : false),
  });

  const onUpgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (pathOf(request.url) !== path) {
      refuseUpgrade(socket, 404, 'Not Found');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  };
  options.httpServer.on('upgrade', onUpgrade);

  const formatErrors = (errors: readonly GraphQLError[]): GraphQLFormattedError[] =>
    errors.map((error) => options.formatError(error.toJSON(), error));

  const server = useServer<Record<string, unknown> | undefined, Partial<ConnectionExtra>>(
    {
      schema: options.schema,
      connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? 10_000,
      onConnect: async (ctx) => {
        const extra = ctx.extra as ConnectionExtra;
        const fromParams: unknown = ctx.connectionParams?.['authorization'] ?? ctx.connectionParams?.['Authorization'];
        const header = extra.request.headers.authorization;
        const authorization = typeof fromParams === 'string' ? fromParams : header;
        try {
          extra.principal = await options.authenticate(authorization, extra.request);
        } catch (error) {
          if (!isAppError(error)) throw error;
          options.logger.info('websocket connection refused', { code: error.code, reason: error.details['reason'] ?? null });
          extra.socket.close(CloseCode.Forbidden, error.code);
          return false;
        }
        const caller = options.callerKey(extra.principal, extra.request);
        const open = connectionsByCaller.get(caller) ?? 0;
        if (open >= maxConnectionsPerCaller) {
          options.logger.info('websocket connection refused', {
            code: 'RATE_LIMITED',
            reason: 'TOO_MANY_CONNECTIONS',
            maxConnectionsPerCaller,
          });
          extra.socket.close(TOO_MANY_CONNECTIONS, 'RATE_LIMITED');
          return false;
        }
        connectionsByCaller.set(caller, open + 1);
        extra.socket.once('close', () => {
          const left = (connectionsByCaller.get(caller) ?? 1) - 1;
          if (left > 0) connectionsByCaller.set(caller, left);
          else connectionsByCaller.delete(caller);
        });
        extra.connectionId = randomUUID();
        return true;
      },
      onSubscribe: (ctx, id, payload) => {
        const extra = ctx.extra as ConnectionExtra;
        const active = Object.keys(ctx.subscriptions).length;
        if (active >= maxPerConnection) {
          return refuse(
            new AppError('QUERY_TOO_COMPLEX', `At most ${maxPerConnection} operations may run at once on one connection.`, {
              maxSubscriptions: maxPerConnection,
            }),
          );
        }
        const tooDeep = checkInputNesting(payload.query, payload.variables);
        if (tooDeep) return refuse(tooDeep);
        let document: DocumentNode;
        try {
          document = parse(payload.query, { maxTokens: options.maxTokens });
        } catch (error) {
          return [error instanceof GraphQLError ? withCode(error, 'GRAPHQL_PARSE_FAILED') : new GraphQLError(String(error))];
        }
        const invalid = validate(options.schema, document, rules, { hideSuggestions });
        if (invalid.length > 0) return invalid.map((error) => withCode(error, 'GRAPHQL_VALIDATION_FAILED'));
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) return refuse(new AppError('BAD_USER_INPUT', 'Name the operation to run (operationName).'));
        if (operation.operation !== OperationTypeNode.SUBSCRIPTION) {
          return refuse(
            new AppError('BAD_USER_INPUT', 'Only subscriptions are served over WebSocket; send queries and mutations over HTTP.'),
          );
        }
        const variables = payload.variables ?? {};
        const broken = checkOperationLimits(document, operation, variables, options.limits);
        if (broken) return refuse(broken);
        const requestId = `${extra.connectionId ?? randomUUID()}:${id}`;
        const args: ExecutionArgs = {
          schema: options.schema,
          document,
          operationName: payload.operationName,
          variableValues: variables,
          hideSuggestions,
          contextValue: options.context(requestId, extra.principal ?? null, extra.request),
        };
        return args;
      },
      onOperation: (_ctx, _id, _payload, _args, result) => {
        if (isAsyncIterable(result)) {
          options.onActiveChange?.(1);
          return countEnd(result, () => options.onActiveChange?.(-1));
        }
        return undefined;
      },
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors?.length) return undefined;
        return { ...result, errors: formatErrors(result.errors) };
      },
      onError: (_ctx, _id, _payload, errors) => formatErrors(errors),
    },
    wss,
  );

  return {
    get connections() {
      return wss.clients.size;
    },
    async close() {
      options.httpServer.off('upgrade', onUpgrade);
      for (const client of wss.clients) client.close(1001, 'Server shutting down');
      // Clients that do not answer the close handshake are cut.
      const cut = setTimeout(() => {
        for (const client of wss.clients) client.terminate();
      }, 2_000);
      await server.dispose();
      clearTimeout(cut);
    },
  };
}

/** A validation or parse error with the code Apollo gives it over HTTP, so clients see one vocabulary. */
function withCode(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    extensions: { ...error.extensions, code },
  });
}

function refuse(error: AppError): GraphQLError[] {
  return [new GraphQLError(error.message, { originalError: error })];
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> & AsyncIterator<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * The same stream, calling `onEnd` once when it ends for any reason (exhausted, failed, or returned early because
 * the client completed or disconnected) — and passing `return()` on, so the producer's cleanup runs.
 */
function countEnd<T>(source: AsyncIterable<T> & AsyncIterator<T>, onEnd: () => void): AsyncIterableIterator<T> {
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      try {
        const step = await source.next();
        if (step.done) end();
        return step;
      } catch (error) {
        end();
        throw error;
      }
    },
    async return(value?: unknown) {
      end();
      if (source.return) return source.return(value as never);
      return { done: true, value: value as never };
    },
    async throw(error?: unknown) {
      end();
      if (source.throw) return source.throw(error);
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

function pathOf(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://kbql.local').pathname;
  } catch {
    return '/';
  }
}
