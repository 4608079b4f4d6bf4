import 'reflect-metadata';
import type http from 'node:http';
import type { ApolloServer } from '@apollo/server';
import type { Config } from '../config';
import type { KbqlContext, Services } from '../modules/shared/request-context';
import type { SubscriptionServer } from '../http/subscriptions';
import { createLogger } from '../logger';
import type { DomainMetrics } from '../observability/metrics';
import type { Cache } from '../ports/cache.port';
import type { Embedder } from '../ports/embedder.port';
import type { KnowledgeStore } from '../ports/knowledge-store.port';
import { createAdapters } from './adapters';
import { createGraphqlServer } from './graphql-server';
import { Disposers, startBackgroundWork } from './lifecycle';
import type { AppOverrides } from './overrides';
import { createSecurity } from './security';
import { createServices } from './services';
import { createTransports } from './transports';

export type { AppOverrides } from './overrides';

export interface App {
  readonly config: Config;
  readonly store: KnowledgeStore;
  readonly embedder: Embedder;
  readonly services: Services;
  readonly apollo: ApolloServer<KbqlContext>;
  readonly httpServer: http.Server;
  /** GraphQL subscriptions over WebSocket (graphql-ws) on the HTTP server's port, at /graphql. */
  readonly subscriptions: SubscriptionServer;
  /** Domain metrics (cache hooks and the rest) and their registry. */
  readonly metrics: DomainMetrics;
  /** The cache of embeddings, search/ask results and Apollo's persisted queries (Redis or in process). */
  readonly cache: Cache;
  /** The server of KBQL_METRICS_PORT, when set. */
  readonly metricsServer: http.Server | null;
  /** Listens on `port`/`host` (defaults from config; 0 = a free port) and resolves with the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Stops accepting, finishes in-flight requests, closes the store. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The composition root: the one place that builds adapters, services, schema and server, in this order. Each part
 * registers its disposer as it is built, and stop() runs them in reverse (see `Disposers`).
 */
export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const disposers = new Disposers(logger);
  // Store, worker threads, embedder, synthesizer, cache, job backend; metrics and readiness around them.
  const adapters = await createAdapters(config, overrides, logger, disposers);
  // The domain services on those ports, and the worker of the ingestion job queue.
  const { services, jobWorker } = await createServices(config, adapters, { accessFilter: overrides.accessFilter, logger });
  // API keys, authentication and rate limits.
  const security = await createSecurity(config, overrides.apiKeyStore, logger, disposers);
  // The schema from the one resolver list, and Apollo Server with its plugins.
  const { schema, apollo } = await createGraphqlServer(
    config,
    { services, security, metrics: adapters.metrics, cache: adapters.cache, logger },
    disposers,
  );
  // The job worker and the sweeps.
  await startBackgroundWork(
    { jobWorker, jobs: services.jobs, uploads: services.uploads, reembed: services.reembed, processor: adapters.processor, logger },
    disposers,
  );
  // HTTP and WebSocket, built last so that stop() drains them first.
  const transports = createTransports(
    config,
    {
      apollo,
      schema,
      store: adapters.store,
      embedder: adapters.embedder,
      services,
      authenticate: security.authenticate,
      readiness: adapters.readiness,
      metrics: adapters.metrics,
      logger,
    },
    disposers,
  );

  return {
    config,
    store: adapters.store,
    embedder: adapters.embedder,
    services,
    apollo,
    httpServer: transports.httpServer,
    subscriptions: transports.subscriptions,
    metrics: adapters.metrics,
    metricsServer: transports.metricsServer,
    cache: adapters.cache,
    listen: (port = config.port, host = config.host) => transports.listen(port, host),
    stop: () => disposers.dispose(),
  };
}
