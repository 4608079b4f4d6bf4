import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginInlineTrace } from '@apollo/server/plugin/inlineTrace';
import type { GraphQLSchema } from 'graphql';
import type { Registry } from 'prom-client';
import type { Config } from '../config';
import { createApolloCache, createDocumentStore } from '../adapters/cache/apollo.cache';
import { composePlugins } from '../graphql/plugins/composite.plugin';
import { createNoStorePlugin } from '../graphql/plugins/no-store.plugin';
import { applyResolverTimeout } from '../graphql/directives/resolver-timeout';
import { createFormatError } from '../graphql/format-error';
import { createErrorStatusPlugin } from '../graphql/plugins/error-status.plugin';
import { createLandingPagePlugin } from '../graphql/plugins/landing-page.plugin';
import { createPersistedQueriesPolicyPlugin } from '../graphql/plugins/persisted-queries-policy.plugin';
import { createQueryLimitsPlugin, type QueryLimits } from '../graphql/plugins/query-limits.plugin';
import type { KbqlContext, Services } from '../modules/shared/request-context';
import type { Logger } from '../logger';
import type { DomainMetrics } from '../observability/metrics';
import { createMetricsPlugin, timeResolvers } from '../graphql/plugins/metrics.plugin';
import { createRequestRecordPlugin } from '../graphql/plugins/request-record.plugin';
import { createResponseCachePlugin } from '../graphql/plugins/response-cache.plugin';
import { QUERY_RESPONSE_FIELDS, queryResponseRoots } from '../modules/query/query.response-cache';
import { bindResolversToTrace, createTracingPlugin } from '../graphql/plugins/tracing.plugin';
import type { Cache } from '../ports/cache.port';
import type { Disposers } from './lifecycle';
import { buildKbqlSchema, createResolverContainer } from './schema';
import type { Security } from './security';

export interface GraphqlServer {
  /** The executable schema, as Apollo and the WebSocket server run it. */
  schema: GraphQLSchema;
  /** Started; registered to stop after the HTTP drain. */
  apollo: ApolloServer<KbqlContext>;
}

export interface GraphqlServerDeps {
  services: Services;
  security: Security;
  metrics: DomainMetrics;
  cache: Cache;
  logger: Logger;
}

/** Builds the schema from the one resolver list and starts Apollo Server with kbql's plugins. */
export async function createGraphqlServer(config: Config, deps: GraphqlServerDeps, disposers: Disposers): Promise<GraphqlServer> {
  const { services, security, metrics, cache, logger } = deps;
  const schema = await buildKbqlSchema(createResolverContainer({ services, apiKeys: security.apiKeys }), {
    // The wrappers, then @auth outermost: a refused call consumes nothing.
    beforeAuth: (built) =>
      wrapResolvers(built, { registry: metrics.registry, timeoutMs: config.graphql.resolverTimeoutMs, rateLimit: security.rateLimit }),
  });
  const development = config.graphql.exposeInternalErrors;
  const introspection = config.graphql.introspection;
  const apollo = new ApolloServer<KbqlContext>({
    schema,
    // main.ts owns SIGTERM/SIGINT: drain HTTP first, then stop Apollo. Apollo's own handler (on whenever NODE_ENV is
    // not test) would stop it at the signal, failing requests still being read with 500 (drill 5 caught this).
    stopOnTerminationSignals: false,
    introspection,
    // Field suggestions ("Did you mean …?") reveal the schema too: only where introspection is on.
    hideSchemaDetailsFromClientErrors: !introspection,
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    parseOptions: { maxTokens: config.graphql.maxTokens },
    includeStacktraceInErrorResponses: development,
    formatError: createFormatError({ exposeInternal: development, logger }),
    // APQ on the shared cache; parsed + validated operations in an in-process LRU (they are objects, not strings).
    cache: createApolloCache(cache.store('apollo')),
    documentStore: config.cache.documentCacheSize > 0 ? createDocumentStore({ maxEntries: config.cache.documentCacheSize }) : null,
    plugins: [
      // Federated trace data (ftv1) for a router that asks for it, with error messages masked.
      ApolloServerPluginInlineTrace({ includeErrors: { masked: true } }),
      // kbql's own plugins as one: Apollo awaits each plugin at each step of each request.
      composePlugins<KbqlContext>([
        createQueryLimitsPlugin(queryLimits(config)),
        // Anonymous callers never add queries to the shared APQ cache (a 401 must not leave anything behind).
        createPersistedQueriesPolicyPlugin<KbqlContext>({ mayRegister: (ctx) => ctx.principal !== null }),
        createErrorStatusPlugin(),
        createRequestRecordPlugin(),
        createMetricsPlugin({ registry: metrics.registry }),
        createTracingPlugin(),
        // Apollo's cache-control plugin hooks every field of every response for hints kbql never sets; all it would
        // send is `no-store`, which this cheaper plugin sends instead.
        createNoStorePlugin(),
        // Last: a hit skips execution, never the hooks above.
        createResponseCachePlugin<KbqlContext>({
          schema,
          roots: queryResponseRoots(services.collections),
          fields: QUERY_RESPONSE_FIELDS,
          scope: (ctx) => (ctx.principal ? ctx.scope : null),
          ttlSeconds: config.cache.resultTtlSeconds,
          onLookup: (result) => (result === 'hit' ? metrics.cache.hit('response') : metrics.cache.miss('response')),
        }),
      ]),
      ApolloServerPluginCacheControlDisabled(),
      config.env === 'production'
        ? ApolloServerPluginLandingPageDisabled()
        : // Sandbox from Apollo's CDN, with what to do when it cannot load (offline).
          createLandingPagePlugin({ document: EXAMPLE_OPERATION }),
    ],
  });
  await apollo.start();
  disposers.add('Apollo', () => apollo.stop());
  return { schema, apollo };
}

export interface ResolverWrappers {
  /** The registry of the resolver-duration histogram. */
  registry: Registry;
  /** The resolver timeout, in ms. */
  timeoutMs: number;
  /** The rate-limit directive's transform, when rate limiting is on. */
  rateLimit?: ((schema: GraphQLSchema) => GraphQLSchema) | null;
}

/**
 * The wrappers around kbql's resolvers, innermost first: the trace context (so a recorded request carries it across
 * `await` only while a resolver does its own work, not while the rate limit waits for Redis), the duration metric,
 * the resolver timeout, the rate limit.
 */
export function wrapResolvers(schema: GraphQLSchema, options: ResolverWrappers): GraphQLSchema {
  const timed = timeResolvers(bindResolversToTrace(schema), { registry: options.registry });
  const bounded = applyResolverTimeout<KbqlContext>(timed, { timeoutMs: options.timeoutMs });
  return options.rateLimit ? options.rateLimit(bounded) : bounded;
}

/** Depth, alias and cost limits: the same for HTTP (Apollo plugin) and WebSocket (subscriptions). */
export function queryLimits(config: Config): QueryLimits {
  return {
    maxDepth: config.graphql.maxDepth,
    maxCost: config.graphql.maxCost,
    maxAliases: config.graphql.maxAliases,
    maxTopK: config.limits.maxTopK,
    // Introspection (where served) has its own depth bound: standard tooling's query nests 15 levels.
    introspection: config.graphql.introspection,
  };
}

/** Preloaded in Apollo Sandbox (development only). */
export const EXAMPLE_OPERATION = `query Ask {
  ask(collection: "handbook", question: "How many vacation days do employees get?") {
    answer
    abstained
    citations { marker source { document { title } chunk { text } } }
  }
}
`;
