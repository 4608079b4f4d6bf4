import 'reflect-metadata';
import type http from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import type { ContainerType } from 'type-graphql';
import type { Config } from './config';
import { EmbeddedKnowledgeStore } from './adapters/embedded/sqlite.knowledge-store';
import { WeaviateKnowledgeStore } from './adapters/weaviate/weaviate.knowledge-store';
import { HashEmbedder } from './adapters/embedders/hash.embedder';
import { OllamaEmbedder } from './adapters/embedders/ollama.embedder';
import { OpenAIEmbedder } from './adapters/embedders/openai.embedder';
import { ContentParser } from './adapters/parsing/content.parser';
import { LlamaIndexChunker } from './adapters/parsing/llamaindex.chunker';
import { ExtractiveSynthesizer } from './adapters/synthesizers/extractive.synthesizer';
import { createOllamaLlm, createOpenAiLlm, LlmSynthesizer } from './adapters/synthesizers/llm.synthesizer';
import { createContext, type KbqlContext, type Services } from './graphql/context';
import { createFormatError } from './graphql/format-error';
import { buildKbqlSchema } from './graphql/schema';
import { createHttpServer, listen } from './http/server';
import { createLogger, type Logger } from './logger';
import { CollectionResolver } from './modules/collections/collection.resolver';
import { CollectionService } from './modules/collections/collection.service';
import { ChunkResolver, DocumentResolver } from './modules/documents/document.resolver';
import { DocumentService } from './modules/documents/document.service';
import { EmbeddingBatcher } from './modules/ingestion/embedding-batcher';
import { IngestionResolver } from './modules/ingestion/ingestion.resolver';
import { IngestionService } from './modules/ingestion/ingestion.service';
import { QueryResolver } from './modules/query/query.resolver';
import { QueryService } from './modules/query/query.service';
import type { AnswerSynthesizer } from './ports/answer-synthesizer.port';
import type { Embedder } from './ports/embedder.port';
import type { KnowledgeStore } from './ports/knowledge-store.port';

/** Parts a test (or an embedding program) may supply instead of the ones the config selects. */
export interface AppOverrides {
  store?: KnowledgeStore;
  embedder?: Embedder;
  synthesizer?: AnswerSynthesizer;
  logger?: Logger;
}

export interface App {
  readonly config: Config;
  readonly store: KnowledgeStore;
  readonly embedder: Embedder;
  readonly services: Services;
  readonly apollo: ApolloServer<KbqlContext>;
  readonly httpServer: http.Server;
  /** Listens on `port`/`host` (defaults from config; 0 = a free port) and resolves with the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Stops accepting, finishes in-flight requests, closes the store. Idempotent. */
  stop(): Promise<void>;
}

/** The composition root: the one place that builds adapters, services, schema and server. */
export async function createApp(config: Config, overrides: AppOverrides = {}): Promise<App> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const store = overrides.store ?? createStore(config);
  const embedder = overrides.embedder ?? createEmbedder(config);
  const synthesizer = overrides.synthesizer ?? createSynthesizer(config);
  await store.init();

  const batcher = new EmbeddingBatcher(embedder);
  const collections = new CollectionService({ store, embedder: embedder.info, defaults: config.defaults });
  const documents = new DocumentService({ store, collections });
  const ingestion = new IngestionService({
    store,
    collections,
    parser: new ContentParser(),
    chunker: new LlamaIndexChunker(),
    embedder: batcher,
    limits: config.limits,
  });
  const query = new QueryService({
    store,
    collections,
    embedQuery: (text) => batcher.embed(text),
    synthesizer,
    defaults: { ...config.defaults, maxTopK: config.limits.maxTopK, maxQueryChars: config.limits.maxQueryChars },
  });
  const services: Services = { collections, documents, ingestion, query };

  const resolvers = new Map<unknown, unknown>([
    [CollectionResolver, new CollectionResolver(collections, documents)],
    [DocumentResolver, new DocumentResolver(documents)],
    [ChunkResolver, new ChunkResolver()],
    [IngestionResolver, new IngestionResolver(ingestion)],
    [QueryResolver, new QueryResolver(query)],
  ]);
  const container: ContainerType = {
    get: (someClass) => {
      const instance = resolvers.get(someClass);
      if (!instance) throw new Error(`No resolver instance registered for ${String((someClass as { name?: string }).name)}`);
      return instance;
    },
  };
  const schema = await buildKbqlSchema(container);
  const development = config.env === 'development';
  const apollo = new ApolloServer<KbqlContext>({
    schema,
    introspection: config.env !== 'production',
    includeStacktraceInErrorResponses: development,
    formatError: createFormatError({ exposeInternal: development, logger }),
    plugins: [
      config.env === 'production'
        ? ApolloServerPluginLandingPageDisabled()
        : ApolloServerPluginLandingPageLocalDefault({
            embed: true,
            document: EXAMPLE_OPERATION,
            includeCookies: false,
          }),
    ],
  });
  await apollo.start();

  const httpServer = createHttpServer<KbqlContext>({
    apollo,
    context: (requestId) => createContext(store, requestId),
    maxBodyBytes: config.limits.maxBodyBytes,
    readiness: [{ name: 'store', check: () => store.ping() }],
    logger,
  });

  let stopping: Promise<void> | null = null;
  return {
    config,
    store,
    embedder,
    services,
    apollo,
    httpServer,
    async listen(port = config.port, host = config.host) {
      const address = await listen(httpServer, port, host);
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${shownHost}:${address.port}`;
      logger.info('kbql listening', { url: `${url}/graphql`, store: store.kind, embedder: embedder.info.name });
      return url;
    },
    stop() {
      stopping ??= (async () => {
        if (httpServer.listening) {
          await new Promise<void>((resolve) => {
            httpServer.close(() => resolve());
            httpServer.closeIdleConnections();
          });
        }
        await apollo.stop();
        await store.close();
      })();
      return stopping;
    },
  };
}

function createStore(config: Config): KnowledgeStore {
  const s = config.store;
  if (s.kind === 'embedded') return new EmbeddedKnowledgeStore({ dataDir: config.dataDir, busyTimeoutMs: s.timeoutMs });
  return new WeaviateKnowledgeStore({
    url: s.url,
    grpcPort: s.grpcPort,
    grpcHost: s.grpcHost ?? undefined,
    apiKey: s.apiKey ?? undefined,
    collectionPrefix: s.prefix,
    multiTenant: s.multiTenant,
    tenant: s.tenant ?? undefined,
    timeoutMs: s.timeoutMs,
    initTimeoutMs: s.initTimeoutMs,
  });
}

function createEmbedder(config: Config): Embedder {
  const e = config.embedder;
  switch (e.kind) {
    case 'hash':
      return new HashEmbedder({ dimensions: e.dimensions });
    case 'openai':
      return new OpenAIEmbedder({
        baseURL: e.baseUrl,
        apiKey: e.apiKey ?? undefined,
        model: e.model,
        dimensions: e.dimensions,
        timeoutMs: e.timeoutMs,
        maxBatchSize: e.batchSize,
      });
    case 'ollama':
      return new OllamaEmbedder({ host: e.baseUrl, model: e.model, dimensions: e.dimensions, timeoutMs: e.timeoutMs, maxBatchSize: e.batchSize });
  }
}

function createSynthesizer(config: Config): AnswerSynthesizer {
  const s = config.synthesizer;
  switch (s.kind) {
    case 'extractive':
      return new ExtractiveSynthesizer();
    case 'openai':
      return new LlmSynthesizer({
        llm: createOpenAiLlm({ baseURL: s.baseUrl, apiKey: s.apiKey ?? undefined, model: s.model, timeoutMs: s.timeoutMs }),
        name: `llm:openai:${s.model}`,
        timeoutMs: s.timeoutMs,
      });
    case 'ollama':
      return new LlmSynthesizer({
        llm: createOllamaLlm({ host: s.baseUrl, model: s.model, timeoutMs: s.timeoutMs }),
        name: `llm:ollama:${s.model}`,
        timeoutMs: s.timeoutMs,
      });
  }
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
