import { Directive, Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { connectionOf } from '../../graphql/connection';
import { ChunkingStrategyEnum } from '../../graphql/enums';

@ObjectType({ simpleResolvers: true, description: 'How a collection splits its documents.' })
export class ChunkingSettings {
  @Field(() => ChunkingStrategyEnum) strategy!: ChunkingStrategyEnum;
  @Field(() => Int, { description: 'Target chunk size, in tokens.' }) chunkSize!: number;
  @Field(() => Int, { description: 'Overlap between consecutive chunks, in tokens.' }) chunkOverlap!: number;
}

@ObjectType({
  simpleResolvers: true,
  description: 'The embedder a collection’s vectors were built with; queries with another are refused.',
})
export class EmbedderInfo {
  @Field() name!: string;
  @Field(() => Int) dimensions!: number;
}

@ObjectType({ simpleResolvers: true, description: "How a collection's vector searches run right now." })
export class VectorIndexStats {
  @Field({ description: 'True when searches go through an approximate (HNSW) index; false for an exact scan.' })
  approximate!: boolean;

  @Field(() => Float, {
    description: 'Share of the chunks the approximate index covers (the rest are searched exactly); 1 for an exact scan.',
  })
  indexedFraction!: number;
}

@ObjectType({ simpleResolvers: true, description: 'Live counts of a collection.' })
export class CollectionStats {
  @Field(() => Int) documents!: number;
  @Field(() => Int) chunks!: number;

  @Field(() => VectorIndexStats, {
    nullable: true,
    description: "The embedded store's vector index (null on Weaviate, whose index is the server's).",
  })
  vectorIndex!: VectorIndexStats | null;
}

export enum ShareRoleEnum {
  READER = 'READER',
  WRITER = 'WRITER',
}
registerEnumType(ShareRoleEnum, {
  name: 'ShareRole',
  description: 'What a collection share grants the other tenant.',
  valuesConfig: {
    READER: { description: 'Read and search the collection, its documents and chunks.' },
    WRITER: { description: 'Also ingest, delete and edit its documents (never rename, delete or re-share the collection).' },
  },
});

@ObjectType({ simpleResolvers: true, description: 'A grant of a collection to another tenant.' })
export class CollectionShare {
  @Field() tenant!: string;
  @Field(() => ShareRoleEnum) role!: ShareRoleEnum;
}

@Directive('@key(fields: "id")')
@ObjectType({ simpleResolvers: true, description: 'A named set of documents searched together.' })
export class Collection {
  @Field(() => ID) id!: string;
  @Field({ description: 'The tenant that owns the collection (yours, unless it is shared with you).' }) tenant!: string;
  @Field({ description: 'Unique in its tenant. A collection shared with you is named "<tenant>/<name>" in arguments (or by id).' })
  name!: string;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field(() => ChunkingSettings) chunking!: ChunkingSettings;
  @Field(() => EmbedderInfo) embedder!: EmbedderInfo;
  @Field(() => Int, { description: 'Incremented by every write to the collection or its documents.' }) version!: number;
  @Field() createdAt!: Date;
  @Field() updatedAt!: Date;
}

export const CollectionConnection = connectionOf('Collection', Collection);
export type CollectionConnection = InstanceType<typeof CollectionConnection>;

@ObjectType({ simpleResolvers: true })
export class DeleteCollectionPayload {
  @Field(() => ID) id!: string;
  @Field(() => Int) deletedDocuments!: number;
  @Field(() => Int) deletedChunks!: number;
}
