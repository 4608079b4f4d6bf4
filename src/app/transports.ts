import type http from 'node:http';
import type { ApolloServer } from '@apollo/server';
import type { GraphQLSchema } from 'graphql';
import type { Config } from '../config';
import { callerKey } from '../graphql/directives/rate-limit.directive';
import { createFormatError } from '../graphql/format-error';
import type { KbqlContext, Services } from '../modules/shared/request-context';
import { clientAddress } from '../http/client-address';
import { createHttpServer, createMetricsServer, drainHttpServer, listen, type MetricsPage } from '../http/server';
import { attachSubscriptionServer, type SubscriptionServer } from '../http/subscriptions';
import type { Logger } from '../logger';
import type { Authenticate } from '../ports/authenticator.port';
import { accessScope } from '../modules/auth/principal';
import type { Principal } from '../ports/principal.port';
import type { DomainMetrics } from '../observability/metrics';
import type { Readiness } from '../observability/readiness';
import type { Embedder } from '../ports/embedder.port';
import type { UploadRecord } from '../ports/job-store.port';
import type { KnowledgeStore } from '../ports/knowledge-store.port';
import { createContext } from './context';
import { queryLimits } from './graphql-server';
import type { Disposers } from './lifecycle';

export interface Transports {
  /** /graphql (and WebSocket subscriptions on it), /v1/uploads, /healthz, /readyz, and /metrics unless on its own port. */
  httpServer: http.Server;
  /** The server of KBQL_METRICS_PORT, when set. */
  metricsServer: http.Server | null;
  subscriptions: SubscriptionServer;
  /** Listens on `port`/`host` (0 = a free port), and the metrics server on its port; resolves with the base URL. */
  listen(port: number, host: string): Promise<string>;
}

export interface TransportDeps {
  apollo: ApolloServer<KbqlContext>;
  schema: GraphQLSchema;
  store: KnowledgeStore;
  /** Named in the startup log line. */
  embedder: Embedder;
  services: Services;
  authenticate: Authenticate;
  readiness: Readiness;
  metrics: DomainMetrics;
  logger: Logger;
}

/**
 * The HTTP server (Apollo, uploads, health, metrics) and GraphQL over WebSocket on its port, not listening yet. Their
 * disposer is the first stop() runs: it closes the listener at once, then drains.
 */
export function createTransports(config: Config, deps: TransportDeps, disposers: Disposers): Transports {
  const { apollo, schema, store, embedder, services, authenticate, readiness, metrics, logger } = deps;
  const renderMetrics = async (): Promise<MetricsPage> => ({
    contentType: metrics.registry.contentType,
    body: await metrics.registry.metrics(),
  });
  // One context recipe for both transports: the caller, its access scope, its address, fresh loaders, the services.
  const contextFor = (requestId: string, principal: Principal | null, req: http.IncomingMessage): KbqlContext =>
    createContext(store, requestId, {
      principal,
      scope: principal ? accessScope(principal) : 'anonymous',
      clientIp: clientAddress(req, config.auth.trustedProxies),
      services,
    });
  const httpServer = createHttpServer<KbqlContext>({
    apollo,
    context: async (requestId, req) => {
      const header = req.headers.authorization;
      const apiKeyHeader = req.headers['x-api-key'];
      return contextFor(requestId, await authenticate(header, Array.isArray(apiKeyHeader) ? apiKeyHeader[0] : apiKeyHeader), req);
    },
    maxBodyBytes: config.limits.maxBodyBytes,
    uploads: {
      maxBytes: config.uploads.maxBytes,
      accept: async (ctx, data, filename, mediaType) =>
        uploadResponse(await services.uploads.accept(ctx.principal, data, filename, mediaType)),
    },
    readiness,
    logger,
    metrics: config.metrics.port === null ? renderMetrics : undefined,
    cors: config.cors,
  });
  const metricsServer = config.metrics.port === null ? null : createMetricsServer({ metrics: renderMetrics, logger });
  const subscriptions = attachSubscriptionServer<KbqlContext>({
    httpServer,
    schema,
    authenticate: (authorization, req) => {
      const apiKeyHeader = req.headers['x-api-key'];
      return authenticate(authorization, Array.isArray(apiKeyHeader) ? apiKeyHeader[0] : apiKeyHeader);
    },
    context: contextFor,
    limits: queryLimits(config),
    maxTokens: config.graphql.maxTokens,
    introspection: config.graphql.introspection,
    formatError: createFormatError({ exposeInternal: config.graphql.exposeInternalErrors, logger }),
    logger,
    maxPayloadBytes: config.limits.maxBodyBytes,
    maxConnectionsPerCaller: config.maxWsConnectionsPerCaller,
    callerKey: (principal, req) => callerKey({ principal, clientIp: clientAddress(req, config.auth.trustedProxies) }),
  });

  if (metricsServer) {
    disposers.add('metrics server', async () => {
      if (metricsServer.listening) await drainHttpServer(metricsServer);
    });
  }
  disposers.add('HTTP and WebSocket', async () => {
    // Stop accepting first (the drain closes the listener at once), then end the streams — their clients are
    // told the server is going away (1001) and their work stops — then wait for in-flight HTTP requests.
    const drained = drainHttpServer(httpServer);
    await subscriptions.close();
    await drained;
  });

  return {
    httpServer,
    metricsServer,
    subscriptions,
    async listen(port, host) {
      const address = await listen(httpServer, port, host);
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${shownHost}:${address.port}`;
      logger.info('kbql listening', { url: `${url}/graphql`, store: store.kind, embedder: embedder.info.name });
      if (metricsServer && config.metrics.port !== null && !metricsServer.listening) {
        const m = await listen(metricsServer, config.metrics.port, host);
        logger.info('kbql metrics listening', { url: `http://${m.family === 'IPv6' ? `[${m.address}]` : m.address}:${m.port}/metrics` });
      }
      return url;
    },
  };
}

/** The body of a 201 from POST /v1/uploads. */
function uploadResponse(record: UploadRecord): Record<string, unknown> {
  return {
    id: record.id,
    filename: record.filename,
    mediaType: record.mediaType,
    bytes: record.bytes,
    expiresAt: record.expiresAt.toISOString(),
  };
}
