import { Field, InputType, Int } from 'type-graphql';
import { ChunkingStrategyEnum } from '../../graphql/enums';

@InputType()
export class ChunkingInput {
  @Field(() => ChunkingStrategyEnum, { nullable: true, description: 'Default AUTO.' }) strategy?: ChunkingStrategyEnum | null;
  @Field(() => Int, { nullable: true, description: 'Tokens, 32–8192; default from KBQL_DEFAULT_CHUNK_SIZE.' }) chunkSize?: number | null;
  @Field(() => Int, { nullable: true, description: 'Tokens, at most half of chunkSize.' }) chunkOverlap?: number | null;
}

@InputType()
export class CreateCollectionInput {
  @Field({ description: 'Unique; a letter, then up to 62 letters, digits, "_" or "-".' }) name!: string;
  @Field(() => String, { nullable: true }) description?: string | null;
  @Field(() => ChunkingInput, { nullable: true }) chunking?: ChunkingInput | null;
  @Field(() => String, {
    nullable: true,
    description: 'Name of a configured embedder (see the embedders query); default: the one named "default".',
  })
  embedder?: string | null;
}

@InputType()
export class UpdateCollectionInput {
  @Field(() => String, { nullable: true }) name?: string | null;
  @Field(() => String, { nullable: true }) description?: string | null;
}
