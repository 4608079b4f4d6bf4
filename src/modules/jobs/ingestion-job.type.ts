import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { connectionOf } from '../../graphql/connection';
import { ContentTypeEnum } from '../../graphql/enums';
import { Document } from '../documents/document.type';
import { DocumentInput } from '../ingestion/ingestion.type';

export enum IngestionStageEnum {
  QUEUED = 'QUEUED',
  PARSING = 'PARSING',
  CHUNKING = 'CHUNKING',
  EMBEDDING = 'EMBEDDING',
  STORING = 'STORING',
  INDEXED = 'INDEXED',
  UNCHANGED = 'UNCHANGED',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}
registerEnumType(IngestionStageEnum, {
  name: 'IngestionStage',
  description: 'Where a document of an ingestion job is: QUEUED → PARSING → CHUNKING → EMBEDDING → STORING → a final stage.',
  valuesConfig: {
    QUEUED: { description: 'Waiting for a worker.' },
    PARSING: { description: 'Validating, extracting (files) and parsing; the content hash is compared with the stored one.' },
    CHUNKING: { description: 'Splitting into chunks with the collection’s settings.' },
    EMBEDDING: { description: 'Embedding the chunks.' },
    STORING: { description: 'Replacing the stored document and its chunks in one atomic step.' },
    INDEXED: { description: 'Final: new or changed, stored and searchable.' },
    UNCHANGED: { description: 'Final: same id and content as stored; nothing re-embedded.' },
    FAILED: { description: 'Final: not stored; see code, reasonCode, reason and transient. retryIngestion retries it.' },
    CANCELLED: { description: 'Final: the job was cancelled before this document was stored.' },
  },
});

export enum IngestionJobStatusEnum {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  COMPLETED = 'COMPLETED',
  COMPLETED_WITH_ERRORS = 'COMPLETED_WITH_ERRORS',
  CANCELLED = 'CANCELLED',
}
registerEnumType(IngestionJobStatusEnum, {
  name: 'IngestionJobStatus',
  valuesConfig: {
    QUEUED: { description: 'No document started yet.' },
    RUNNING: { description: 'Documents are being processed.' },
    COMPLETED: { description: 'Every document INDEXED or UNCHANGED.' },
    COMPLETED_WITH_ERRORS: { description: 'Every document final, some FAILED.' },
    CANCELLED: { description: 'Cancelled: documents not stored by then are CANCELLED.' },
  },
});

export enum IngestionProgressKindEnum {
  STAGE = 'STAGE',
  SUMMARY = 'SUMMARY',
}
registerEnumType(IngestionProgressKindEnum, {
  name: 'IngestionProgressKind',
  valuesConfig: {
    STAGE: { description: 'A document entered a stage (`document` is set).' },
    SUMMARY: { description: 'The job finished (`job` is set); the last event of the stream.' },
  },
});

@ObjectType({ description: 'Time spent in each stage, in milliseconds (null: not reached).' })
export class IngestionStageTimings {
  @Field(() => Float, { nullable: true }) parseMs!: number | null;
  @Field(() => Float, { nullable: true }) chunkMs!: number | null;
  @Field(() => Float, { nullable: true }) embedMs!: number | null;
  @Field(() => Float, { nullable: true }) storeMs!: number | null;
}

@ObjectType({ description: 'One document of an ingestion job.' })
export class IngestionJobDocument {
  @Field(() => Int, { description: 'Position in the job: documents first, then uploads, in the order given.' }) index!: number;
  @Field(() => String, { nullable: true, description: 'The document id in the collection (an upload’s is its file name).' })
  externalId!: string | null;
  @Field(() => String, { nullable: true, description: 'The uploaded file’s name, for uploads.' }) filename!: string | null;
  @Field(() => IngestionStageEnum) stage!: IngestionStageEnum;
  @Field(() => String, {
    nullable: true,
    description: 'Error code when FAILED (BAD_USER_INPUT, PAYLOAD_TOO_LARGE, UPSTREAM_UNAVAILABLE, …).',
  })
  code!: string | null;
  @Field(() => String, {
    nullable: true,
    description:
      'Specific reason when FAILED: EMPTY_FILE, CORRUPT_FILE, ENCRYPTED_FILE, UNSUPPORTED_TYPE, NO_TEXT, PARSE_TIMEOUT, ARCHIVE_TOO_LARGE, TOO_MANY_PAGES, TEXT_TOO_LARGE, DUPLICATE_ID, …',
  })
  reasonCode!: string | null;
  @Field(() => String, { nullable: true }) reason!: string | null;
  @Field(() => Boolean, {
    nullable: true,
    description:
      'When FAILED: true if retrying the same content may succeed (a provider was down or slow), false if the content must change.',
  })
  transient!: boolean | null;
  @Field(() => ID, { nullable: true }) documentId!: string | null;
  @Field(() => Int, { nullable: true }) chunkCount!: number | null;
  @Field(() => Int, { description: 'Attempt number: 1, then +1 per retryIngestion of this document.' }) attempt!: number;
  @Field(() => Int, { description: 'Times a worker started this document (more than the attempts only after a crash).' }) runs!: number;
  @Field(() => IngestionStageTimings) timings!: IngestionStageTimings;
  @Field() updatedAt!: Date;
  @Field(() => Document, { nullable: true, description: 'The stored document, once INDEXED or UNCHANGED.' }) document?: Document | null;
}

export const IngestionJobDocumentConnection = connectionOf('IngestionJobDocument', IngestionJobDocument);
export type IngestionJobDocumentConnection = InstanceType<typeof IngestionJobDocumentConnection>;

@ObjectType({ description: 'An asynchronous ingestion: documents and uploads processed in the background, with per-document status.' })
export class IngestionJob {
  @Field(() => ID) id!: string;
  @Field(() => ID) collectionId!: string;
  @Field(() => IngestionJobStatusEnum) status!: IngestionJobStatusEnum;
  @Field(() => Int) total!: number;
  @Field(() => Int) queued!: number;
  @Field(() => Int, { description: 'Documents between PARSING and STORING.' }) inProgress!: number;
  @Field(() => Int) indexed!: number;
  @Field(() => Int) unchanged!: number;
  @Field(() => Int) failed!: number;
  @Field(() => Int) cancelled!: number;
  @Field({ description: 'Whether cancelIngestion was called (running documents stop before their next stage).' }) cancelRequested!: boolean;
  @Field() createdAt!: Date;
  @Field() updatedAt!: Date;
  @Field(() => Date, { nullable: true }) finishedAt!: Date | null;
  @Field(() => Float, { description: 'From creation to the end (to now while it runs), in milliseconds.' }) tookMs!: number;
  @Field(() => IngestionJobDocumentConnection) documents?: IngestionJobDocumentConnection;
}

export const IngestionJobConnection = connectionOf('IngestionJob', IngestionJob);
export type IngestionJobConnection = InstanceType<typeof IngestionJobConnection>;

@ObjectType({ description: 'The result of deleteIngestionJob. The documents the job indexed stay in their collection.' })
export class DeleteIngestionJobPayload {
  @Field(() => ID) id!: string;
  @Field(() => IngestionJobStatusEnum, { description: 'The status the job had when it was deleted.' }) status!: IngestionJobStatusEnum;
  @Field(() => Int, { description: 'Per-document records deleted with the job.' }) deletedDocuments!: number;
}

@ObjectType({ description: 'One event of ingestionProgress.' })
export class IngestionProgress {
  @Field(() => IngestionProgressKindEnum) kind!: IngestionProgressKindEnum;
  @Field(() => ID) jobId!: string;
  @Field(() => IngestionJobDocument, {
    nullable: true,
    description: 'STAGE: the first of `documents`.',
    deprecationReason: 'A STAGE event carries every document that moved since the previous one: read `documents`.',
  })
  document!: IngestionJobDocument | null;
  @Field(() => [IngestionJobDocument], {
    description:
      'STAGE: every document that moved since the previous event (at most one event per 250 ms, 1,000 documents each), in index order, each in its latest state; empty in a SUMMARY.',
  })
  documents!: IngestionJobDocument[];
  @Field(() => IngestionJob, { nullable: true, description: 'SUMMARY: the finished job with its counts.' }) job!: IngestionJob | null;
}

@ObjectType({ description: 'A chunk as ingestion would store it (no vector).' })
export class ChunkPreview {
  @Field(() => Int) index!: number;
  @Field() text!: string;
  @Field(() => Int) startOffset!: number;
  @Field(() => Int) endOffset!: number;
}

@ObjectType({ description: 'The result of previewChunks: what ingestion would store, without storing anything.' })
export class ChunkPreviewPayload {
  @Field(() => ID) collectionId!: string;
  @Field({ description: 'The document id it would be stored under.' }) externalId!: string;
  @Field(() => String, { nullable: true }) title!: string | null;
  @Field(() => ContentTypeEnum) contentType!: ContentTypeEnum;
  @Field({ description: 'Equal to the stored document’s contentHash when ingesting it would be UNCHANGED.' }) contentHash!: string;
  @Field(() => Int) charCount!: number;
  @Field(() => [String], {
    description: 'What parsing changed in the sent text (control characters removed, unpaired surrogates replaced); empty when nothing.',
  })
  notices!: string[];
  @Field(() => Int, { description: 'How many chunks the document becomes.' }) chunkCount!: number;
}

@InputType({ description: 'New content for failed documents of a job, for retryIngestion.' })
export class IngestionRetryInput {
  @Field(() => [DocumentInput], { nullable: true, description: 'Each replaces the failed document with the same id.' })
  documents?: DocumentInput[] | null;
  @Field(() => [ID], { nullable: true, description: 'Each replaces the failed upload with the same file name.' }) uploads?: string[] | null;
}
