import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';

@ObjectType({ simpleResolvers: true, description: 'A configured embedder (KBQL_EMBEDDER as "default", plus KBQL_EMBEDDERS).' })
export class Embedder {
  @Field({ description: 'The configured name: createCollection(input: {embedder}) and reembedCollection take it.' }) name!: string;
  @Field({ description: 'hash, openai or ollama.' }) provider!: string;
  @Field(() => String, { nullable: true, description: "The provider's model (null for the offline hash embedder)." })
  model!: string | null;
  @Field(() => Int) dimensions!: number;
  @Field({ description: 'Identity of its vectors: provider, model, dimensions and normalisation.' }) fingerprint!: string;
  @Field({ description: 'Whether new collections use it when they name none.' }) isDefault!: boolean;
}

export enum EmbeddingStateEnum {
  STABLE = 'STABLE',
  REEMBEDDING = 'REEMBEDDING',
  ROLLBACK_AVAILABLE = 'ROLLBACK_AVAILABLE',
}
registerEnumType(EmbeddingStateEnum, {
  name: 'EmbeddingState',
  description: "Where a collection's embedding is.",
  valuesConfig: {
    STABLE: { description: 'One set of vectors.' },
    REEMBEDDING: { description: 'A re-embedding builds a second set; searches use the active one until the switch.' },
    ROLLBACK_AVAILABLE: { description: 'Switched; the previous vectors are kept for rollbackEmbedding until rollbackUntil.' },
  },
});

@ObjectType({ simpleResolvers: true, description: 'An embedder identity as a collection records it.' })
export class EmbeddingIdentity {
  @Field() name!: string;
  @Field(() => Int) dimensions!: number;
  @Field() fingerprint!: string;
}

@ObjectType({ simpleResolvers: true, description: 'How far a re-embedding is, in chunks.' })
export class ReembedProgress {
  @Field(() => Int) total!: number;
  @Field(() => Int, { description: 'Chunks with a vector of the target embedder.' }) embedded!: number;
}

@ObjectType({ simpleResolvers: true, description: "A collection's embedder, and its re-embedding if any (docs/reembedding.md)." })
export class CollectionEmbedding {
  @Field(() => EmbeddingIdentity, { description: 'The embedder searches use now.' }) active!: EmbeddingIdentity;
  @Field(() => EmbeddingStateEnum) state!: EmbeddingStateEnum;
  @Field(() => EmbeddingIdentity, { nullable: true, description: 'The embedder being built (REEMBEDDING).' })
  target!: EmbeddingIdentity | null;
  @Field(() => EmbeddingIdentity, { nullable: true, description: 'The embedder rollbackEmbedding returns to.' })
  previous!: EmbeddingIdentity | null;
  @Field(() => Date, { nullable: true, description: 'When the previous vectors are dropped.' }) rollbackUntil!: Date | null;
  @Field(() => ReembedProgress, { nullable: true }) progress!: ReembedProgress | null;
}
