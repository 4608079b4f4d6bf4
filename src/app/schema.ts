import type { GraphQLSchema } from 'graphql';
import { buildSchema, type ContainerType, type NonEmptyArray, type PubSub } from 'type-graphql';
import { ApiKeyResolver } from '../modules/auth/api-key.resolver';
import type { ApiKeyService } from '../modules/auth/api-key.service';
import { CollectionResolver } from '../modules/collections/collection.resolver';
import { EmbedderResolver } from '../modules/embeddings/embedder.resolver';
import { resolveCollectionReference } from '../modules/collections/collection.reference';
import { resolveChunkReference } from '../modules/documents/chunk.reference';
import { resolveDocumentReference } from '../modules/documents/document.reference';
import { ChunkResolver, DocumentResolver } from '../modules/documents/document.resolver';
import { IngestionResolver } from '../modules/ingestion/ingestion.resolver';
import { ChunkPreviewPayloadResolver, IngestionJobDocumentResolver, IngestionJobResolver } from '../modules/jobs/ingestion-job.resolver';
import { QueryResolver } from '../modules/query/query.resolver';
import type { KbqlContext, Services } from '../modules/shared/request-context';
import { applyAuthDirective, authDirective } from '../graphql/directives/auth.directive';
import { rateLimitDirective } from '../graphql/directives/rate-limit.directive';
import { printSubgraphSdl, toSubgraphSchema } from './federation';

/** What the resolver instances are built from. */
export interface ResolverDeps {
  services: Services;
  apiKeys: ApiKeyService;
}

interface ResolverRecipe<T extends object = object> {
  type: new (...args: never[]) => T;
  build: (deps: ResolverDeps) => T;
}

const recipe = <T extends object>(type: new (...args: never[]) => T, build: (deps: ResolverDeps) => T): ResolverRecipe<T> => ({
  type,
  build,
});

/** The one resolver list: every resolver class of the schema, with how the composition root builds its instance. */
const RESOLVER_RECIPES: readonly [ResolverRecipe, ...ResolverRecipe[]] = [
  recipe(CollectionResolver, ({ services }) => new CollectionResolver(services.collections, services.documents)),
  recipe(DocumentResolver, ({ services }) => new DocumentResolver(services.documents)),
  recipe(ChunkResolver, () => new ChunkResolver()),
  recipe(IngestionResolver, ({ services }) => new IngestionResolver(services.ingestion)),
  recipe(QueryResolver, ({ services }) => new QueryResolver(services.query)),
  recipe(ApiKeyResolver, ({ apiKeys }) => new ApiKeyResolver(apiKeys)),
  recipe(IngestionJobResolver, ({ services }) => new IngestionJobResolver(services.jobs)),
  recipe(IngestionJobDocumentResolver, () => new IngestionJobDocumentResolver()),
  recipe(ChunkPreviewPayloadResolver, () => new ChunkPreviewPayloadResolver()),
  recipe(EmbedderResolver, ({ services }) => new EmbedderResolver(services.embedders, services.reembed, services.jobs)),
];

const [FIRST_RECIPE, ...OTHER_RECIPES] = RESOLVER_RECIPES;
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- type-graphql's buildSchema takes NonEmptyArray<Function>.
export const RESOLVERS: NonEmptyArray<Function> = [FIRST_RECIPE.type, ...OTHER_RECIPES.map((r) => r.type)];

/** Hands type-graphql the resolver instances, built once from `deps` (resolvers are stateless; per-request state is in the context). */
export function createResolverContainer(deps: ResolverDeps): ContainerType {
  const instances = new Map<unknown, object>(RESOLVER_RECIPES.map((r) => [r.type, r.build(deps)]));
  return {
    get: (someClass) => {
      const instance = instances.get(someClass);
      if (!instance) throw new Error(`No resolver instance registered for ${String((someClass as { name?: string }).name)}`);
      return instance;
    },
  };
}

/**
 * type-graphql wants a PubSub as soon as there is a subscription, though kbql's subscriptions never use topics: each
 * one streams from its service through `@Subscription({ subscribe })` (a topic bus would not work across replicas
 * anyway). One that is used anyway is a bug, reported loudly.
 */
export const NO_TOPICS: PubSub = {
  publish() {
    throw new Error('kbql subscriptions stream from their services (`subscribe`), not from pubsub topics');
  },
  subscribe() {
    throw new Error('kbql subscriptions stream from their services (`subscribe`), not from pubsub topics');
  },
};

/**
 * Builds the executable schema: the type-graphql schema as a Federation 2 subgraph (`_service`, `_entities`;
 * `Collection`, `Document` and `Chunk` are entities keyed by `id`, resolved through the request's loaders), with
 * `@auth` enforced on every field (see `directives/auth.directive.ts`).
 * `container` hands type-graphql the resolver instances (see {@link createResolverContainer}); schema printing needs
 * none, since resolvers are only instantiated on execution.
 */
export async function buildKbqlSchema(container?: ContainerType, options: BuildSchemaOptions = {}): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers: RESOLVERS,
    container,
    validate: false,
    emitSchemaFile: false,
    directives: [authDirective, rateLimitDirective],
    pubSub: NO_TOPICS,
  });
  const subgraph = toSubgraphSchema<KbqlContext>(schema, {
    Collection: resolveCollectionReference,
    Document: resolveDocumentReference,
    Chunk: resolveChunkReference,
  });
  // @auth last, so its check runs before anything `beforeAuth` wrapped around the resolvers.
  return applyAuthDirective<KbqlContext>(options.beforeAuth ? options.beforeAuth(subgraph) : subgraph);
}

export interface BuildSchemaOptions {
  /** Resolver wrappers to run behind the `@auth` check (e.g. the rate-limit transform). */
  beforeAuth?: (schema: GraphQLSchema) => GraphQLSchema;
}

/**
 * The subgraph SDL committed as `schema/schema.graphql`: what `_service { sdl }` serves, without federation's own
 * definitions (types sorted, so it only changes when the schema does).
 */
export async function printKbqlSchema(): Promise<string> {
  return printSubgraphSdl(await buildKbqlSchema());
}
