import { Field, Float, ID, InputType, Int, ObjectType } from 'type-graphql';
import { ContentTypeEnum, IngestStatusEnum } from '../../graphql/enums';
import { JSONObjectScalar } from '../../graphql/scalars';
import { Document } from '../documents/document.type';

@InputType({ description: 'One document to ingest.' })
export class DocumentInput {
  @Field(() => String, { nullable: true, description: 'Your id; re-ingesting it updates the document. Default: a content hash.' })
  id?: string | null;
  @Field(() => String, { nullable: true, description: 'Default: the first heading or <title> of the content.' }) title?: string | null;
  @Field(() => String, { nullable: true }) source?: string | null;
  @Field({ description: 'Plain text, Markdown or HTML.' }) content!: string;
  @Field(() => ContentTypeEnum, { nullable: true, description: 'Default: detected from the content.' })
  contentType?: ContentTypeEnum | null;
  @Field(() => JSONObjectScalar, { nullable: true, description: 'Top-level keys are filterable as metadata.<key>.' })
  metadata?: Record<string, unknown> | null;
}

@ObjectType({ description: 'What happened to one document of an ingestDocuments call.' })
export class DocumentIngestResult {
  @Field(() => Int, { description: 'Position of the document in the request.' }) index!: number;
  @Field(() => String, { nullable: true }) externalId!: string | null;
  @Field(() => IngestStatusEnum) status!: IngestStatusEnum;
  @Field(() => String, { nullable: true, description: 'Error code when FAILED (BAD_USER_INPUT, PAYLOAD_TOO_LARGE, …).' }) code!:
    string | null;
  @Field(() => String, { nullable: true }) reason!: string | null;
  @Field(() => ID, { nullable: true }) documentId!: string | null;
  @Field(() => Int, { nullable: true }) chunkCount!: number | null;
  @Field(() => [String], {
    description:
      'What parsing changed in the sent text (control characters such as NUL removed, unpaired UTF-16 surrogates replaced by U+FFFD); empty when the text was kept as sent.',
  })
  notices!: string[];
  @Field(() => Document, { nullable: true }) document?: Document | null;
}

@ObjectType()
export class IngestDocumentsPayload {
  @Field(() => ID) collectionId!: string;
  @Field(() => [DocumentIngestResult]) results!: DocumentIngestResult[];
  @Field(() => Int) indexed!: number;
  @Field(() => Int) unchanged!: number;
  @Field(() => Int) failed!: number;
  @Field(() => Float) tookMs!: number;
}
