import { Directive, Field, ID, Int, ObjectType } from 'type-graphql';
import { connectionOf } from '../../graphql/connection';
import { ContentTypeEnum } from '../../graphql/enums';
import { JSONObjectScalar } from '../../graphql/scalars';

@Directive('@key(fields: "id")')
@ObjectType({ simpleResolvers: true, description: 'A document of a collection; its text lives in its chunks.' })
export class Document {
  @Field(() => ID, { description: 'Globally unique id.' }) id!: string;
  @Field({ description: 'The id given at ingestion (or a content hash when none was given); unique in its collection.' })
  externalId!: string;
  @Field(() => ID) collectionId!: string;
  @Field(() => String, { nullable: true }) title!: string | null;
  @Field(() => String, { nullable: true, description: 'Where the document came from (a URI).' }) source!: string | null;
  @Field(() => ContentTypeEnum) contentType!: ContentTypeEnum;
  @Field(() => JSONObjectScalar) metadata!: Record<string, unknown>;
  @Field({ description: 'sha256 of the content and the settings it was indexed with.' }) contentHash!: string;
  @Field(() => Int, { description: 'Characters of extracted text.' }) charCount!: number;
  @Field(() => Int) chunkCount!: number;
  @Field() createdAt!: Date;
  @Field() updatedAt!: Date;
}

@Directive('@key(fields: "id")')
@ObjectType({ simpleResolvers: true, description: 'A passage of a document: the unit that is embedded, searched and cited.' })
export class Chunk {
  @Field(() => ID) id!: string;
  @Field(() => ID) documentId!: string;
  @Field(() => Int, { description: '0-based position in the document.' }) index!: number;
  @Field() text!: string;
  @Field(() => Int, { description: 'Offset of the chunk in the document’s extracted text; -1 when unknown.' }) startOffset!: number;
  @Field(() => Int) endOffset!: number;
}

export const DocumentConnection = connectionOf('Document', Document);
export type DocumentConnection = InstanceType<typeof DocumentConnection>;
export const ChunkConnection = connectionOf('Chunk', Chunk);
export type ChunkConnection = InstanceType<typeof ChunkConnection>;

@ObjectType({ simpleResolvers: true })
export class DeleteDocumentsPayload {
  @Field(() => Int) deletedDocuments!: number;
  @Field(() => Int) deletedChunks!: number;
}
