import { buildSubgraphSchema, printSubgraphSchema } from '@apollo/subgraph';
import { printSchemaWithDirectives } from '@graphql-tools/utils';
import { isObjectType, lexicographicSortSchema, parse, type GraphQLResolveInfo, type GraphQLSchema } from 'graphql';
import { createResolversMap } from 'type-graphql';

/** The Federation 2 spec kbql's subgraph SDL links, and the directives it imports from it. */
export const FEDERATION_LINK = { url: 'https://specs.apollo.dev/federation/v2.3', import: ['@key'] } as const;

type SubgraphResolvers = Extract<Parameters<typeof buildSubgraphSchema>[0], { typeDefs: unknown }>['resolvers'];

/** A `__resolveReference`: the entity for a representation, or null when it does not exist (or may not be seen). */
export type ReferenceResolver<TContext> = (reference: Record<string, unknown>, context: TContext, info: GraphQLResolveInfo) => unknown;

/**
 * Turns the type-graphql schema into a Federation 2 subgraph (type-graphql's federation pattern: print the schema
 * with its `@key` directives, rebuild it with `buildSubgraphSchema`, reattach the resolvers with
 * `createResolversMap`, add `__resolveReference` per entity). Types are sorted first, so `_service { sdl }` and
 * `schema/schema.graphql` only change when the schema does.
 *
 * Throws when an entity (a type with `@key`) has no reference resolver, or a reference resolver has no entity: the
 * router would otherwise get the bare representation back, and every field past the key would fail.
 */
export function toSubgraphSchema<TContext>(
  schema: GraphQLSchema,
  references: Readonly<Record<string, ReferenceResolver<TContext>>>,
): GraphQLSchema {
  const entities = entityTypeNames(schema);
  const referenced = Object.keys(references).sort();
  if (entities.join() !== referenced.join()) {
    throw new Error(
      `Entities (@key) and reference resolvers differ: entities [${entities.join(', ')}], resolvers [${referenced.join(', ')}]`,
    );
  }
  const link = `extend schema @link(url: "${FEDERATION_LINK.url}", import: [${FEDERATION_LINK.import.map((d) => `"${d}"`).join(', ')}])`;
  const typeDefs = parse(`${link}\n\n${printSchemaWithDirectives(lexicographicSortSchema(schema))}`);
  const resolvers = createResolversMap(schema) as Record<string, Record<string, unknown>>;
  for (const [typeName, resolveReference] of Object.entries(references)) {
    resolvers[typeName] = { ...resolvers[typeName], __resolveReference: resolveReference };
  }
  return buildSubgraphSchema({ typeDefs, resolvers: resolvers as SubgraphResolvers });
}

/** The subgraph SDL as the router sees it (`_service { sdl }`): federation directives and `@link`, no `_entities`. */
export function printSubgraphSdl(schema: GraphQLSchema): string {
  return `${printSubgraphSchema(schema).trimEnd()}\n`;
}

/** Names of the object types that carry `@key`, sorted. */
export function entityTypeNames(schema: GraphQLSchema): string[] {
  return Object.values(schema.getTypeMap())
    .filter((type) => isObjectType(type) && type.astNode?.directives?.some((d) => d.name.value === 'key'))
    .map((type) => type.name)
    .sort();
}
