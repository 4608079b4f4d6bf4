import { Directive, Field, ID, Int, ObjectType } from 'type-graphql';
import { connectionOf } from '../../graphql/connection';
import { ChunkingStrategyEnum } from '../../graphql/enums';

@ObjectType({ simpleResolvers: true, description: 'How a collection splits its documents.' })
export class ChunkingSettings {
  @Field(() => ChunkingStrategyEnum) strategy!: ChunkingStrategyEnum;
  @Field(() => Int, { description: 'Target chunk size, in tokens.' }) chunkSize!: number;
  @Field(() => Int, { description: 'Overlap between consecutive chunks, in tokens.' }) chunkOverlap!: number;
}

@ObjectType({ simpleResolvers: true, description: 'The embedder a collection’s vectors were built with; queries with another are refused.' })
export class EmbedderInfo {
  @Field() name!: string;
  @Field(() => Int) dimensions!: number;
}

@ObjectType({ simpleResolvers: true, description: 'Live counts of a collection.' })
export class CollectionStats {
  @Field(() => Int) documents!: number;
  @Field(() => Int) chunks!: number;
}

@Directive('@key(fields: "id")')
@ObjectType({ simpleResolvers: true, description: 'A named set of documents searched together.' })
export class Collection {
  @Field(() => ID) id!: string;
  @Field() name!: string;
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
