import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type ContainerType } from 'type-graphql';
import { CollectionResolver } from '../modules/collections/collection.resolver';
import { ChunkResolver, DocumentResolver } from '../modules/documents/document.resolver';
import { IngestionResolver } from '../modules/ingestion/ingestion.resolver';
import { QueryResolver } from '../modules/query/query.resolver';

export const RESOLVERS = [CollectionResolver, DocumentResolver, ChunkResolver, IngestionResolver, QueryResolver] as const;

/**
 * Builds the executable schema. `container` hands type-graphql the resolver instances (built in `app.ts` with
 * their services); schema printing needs none, since resolvers are only instantiated on execution.
 */
export function buildKbqlSchema(container?: ContainerType): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: RESOLVERS,
    container,
    validate: false,
    emitSchemaFile: false,
  });
}

/** The SDL committed as `schema/schema.graphql` (sorted, so it only changes when the schema does). */
export async function printKbqlSchema(): Promise<string> {
  const schema = await buildKbqlSchema();
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
