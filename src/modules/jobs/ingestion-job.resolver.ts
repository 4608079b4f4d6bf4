import { badInput } from '../../errors';
import { Arg, Ctx, Directive, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { principalOf, servicesOf, type KbqlContext } from '../shared/request-context';
import type { JobDocumentState } from '../../ports/job-store.port';
import type { DocumentRecord } from '../../ports/knowledge-store.port';
import { Document } from '../documents/document.type';
import { DocumentInput } from '../ingestion/ingestion.type';
import type { ChunkPreview as ChunkPreviewData } from '../ingestion/ingestion.service';
import type { ProgressItem } from './ingestion-job.progress';
import { IngestionJobService, type DeletedJob } from './ingestion-job.service';
import type { JobView } from './ingestion-job.state';
import {
  ChunkPreview,
  ChunkPreviewPayload,
  DeleteIngestionJobPayload,
  IngestionJob,
  IngestionJobConnection,
  IngestionJobDocument,
  IngestionJobDocumentConnection,
  IngestionJobStatusEnum,
  IngestionProgress,
  IngestionRetryInput,
  IngestionStageEnum,
} from './ingestion-job.type';

@Resolver(() => IngestionJob)
export class IngestionJobResolver {
  constructor(private readonly jobs: IngestionJobService) {}

  @Directive('@auth(requires: WRITER)')
  @Directive('@rateLimit(window: "1m", max: 60)')
  @Mutation(() => IngestionJob, {
    description:
      'Starts an asynchronous ingestion of documents and/or uploaded files (ids from POST /v1/uploads) and returns the job at once. ' +
      'Follow it with ingestionProgress or ingestionJob.',
  })
  startIngestion(
    @Arg('collection', () => String, { description: 'Collection name or id.' }) collection: string,
    @Arg('documents', () => [DocumentInput], { nullable: true }) documents: DocumentInput[] | null,
    @Arg('uploads', () => [ID], { nullable: true, description: 'Upload ids from POST /v1/uploads.' }) uploads: string[] | null,
    @Ctx() ctx: KbqlContext,
  ): Promise<JobView> {
    return this.jobs.startIngestion(collection, documents ?? [], uploads ?? [], principalOf(ctx));
  }

  @Directive('@auth(requires: READER)')
  @Query(() => IngestionJob, { description: 'An ingestion job by id (NOT_FOUND when you may not see its collection).' })
  ingestionJob(@Arg('id', () => ID) id: string, @Ctx() ctx: KbqlContext): Promise<JobView> {
    return this.jobs.getJob(id, principalOf(ctx));
  }

  @Directive('@auth(requires: READER)')
  @Query(() => IngestionJobConnection, { description: 'Ingestion jobs, newest first: of a collection, or all your tenant started.' })
  ingestionJobs(
    @Arg('collection', () => String, { nullable: true, description: 'Collection name or id.' }) collection: string | null,
    @Arg('status', () => IngestionJobStatusEnum, { nullable: true }) status: IngestionJobStatusEnum | null,
    @Arg('first', () => Int, { nullable: true }) first: number | null,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: KbqlContext,
  ) {
    return this.jobs.listJobs(collection, status, { first, after }, principalOf(ctx));
  }

  @Directive('@auth(requires: WRITER)')
  @Directive('@rateLimit(window: "1m", max: 60)')
  @Mutation(() => IngestionJob, {
    description: 'Queues the FAILED documents of a job again (only those), optionally with new content for some of them.',
  })
  retryIngestion(
    @Arg('jobId', () => ID) jobId: string,
    @Arg('replace', () => IngestionRetryInput, { nullable: true }) replace: IngestionRetryInput | null,
    @Ctx() ctx: KbqlContext,
  ): Promise<JobView> {
    return this.jobs.retry(jobId, { documents: replace?.documents, uploads: replace?.uploads }, principalOf(ctx));
  }

  @Directive('@auth(requires: WRITER)')
  @Mutation(() => IngestionJob, {
    description: 'Cancels a job: documents not stored yet end CANCELLED; documents already indexed stay. CONFLICT when finished.',
  })
  cancelIngestion(@Arg('jobId', () => ID) jobId: string, @Ctx() ctx: KbqlContext): Promise<JobView> {
    return this.jobs.cancel(jobId, principalOf(ctx));
  }

  @Directive('@auth(requires: WRITER)')
  @Directive('@rateLimit(window: "1m", max: 60)')
  @Mutation(() => DeleteIngestionJobPayload, {
    description:
      'Deletes a finished job now, with its per-document records (finished jobs are also deleted KBQL_JOB_RETENTION_DAYS after they end). ' +
      'The documents it indexed stay. CONFLICT while the job is QUEUED or RUNNING.',
  })
  deleteIngestionJob(@Arg('jobId', () => ID) jobId: string, @Ctx() ctx: KbqlContext): Promise<DeletedJob> {
    return this.jobs.deleteJob(jobId, principalOf(ctx));
  }

  @Directive('@auth(requires: READER)')
  @Directive('@rateLimit(window: "1m", max: 120)')
  @Query(() => ChunkPreviewPayload, {
    description:
      'The chunks a document (or uploaded file) would become in this collection: the ingestion path up to chunking, nothing stored.',
  })
  previewChunks(
    @Arg('collection', () => String) collection: string,
    @Arg('document', () => DocumentInput, { nullable: true }) document: DocumentInput | null,
    @Arg('upload', () => ID, { nullable: true }) upload: string | null,
    @Ctx() ctx: KbqlContext,
  ) {
    return this.jobs.preview(collection, document, upload, principalOf(ctx));
  }

  @Directive('@auth(requires: READER)')
  @Subscription(() => IngestionProgress, {
    description:
      'Progress of an ingestion job: first the current stage of every document, then the documents that moved (coalesced: at most one STAGE event per 250 ms, each document in its latest state), then a SUMMARY, after which the stream ends.',
    subscribe: ({ args, context }) =>
      servicesOf(context as KbqlContext).jobs.progress(
        String((args as Record<string, unknown>)['jobId']),
        principalOf(context as KbqlContext),
      ),
  })
  ingestionProgress(@Root() item: ProgressItem, @Arg('jobId', () => ID) _jobId: string): ProgressItem {
    return item;
  }

  @FieldResolver(() => IngestionJobDocumentConnection, { description: 'The job’s documents in order, optionally only one stage.' })
  documents(
    @Root() job: JobView,
    @Arg('stage', () => IngestionStageEnum, { nullable: true }) stage: IngestionStageEnum | null,
    @Arg('first', () => Int, { nullable: true }) first: number | null,
    @Arg('after', () => String, { nullable: true }) after: string | null,
  ) {
    return this.jobs.documents(job.id, stage, { first, after });
  }
}

@Resolver(() => IngestionJobDocument)
export class IngestionJobDocumentResolver {
  @FieldResolver(() => Document, { nullable: true })
  document(@Root() doc: JobDocumentState, @Ctx() ctx: KbqlContext): Promise<DocumentRecord | null> | null {
    return doc.documentId ? ctx.loaders.document.load(doc.documentId) : null;
  }

  @FieldResolver(() => [String], {
    description:
      'What parsing changed in the text (control characters such as NUL removed, unpaired UTF-16 surrogates replaced by U+FFFD); empty when it was kept as sent.',
  })
  notices(@Root() doc: JobDocumentState): string[] {
    return doc.notices ?? [];
  }
}

const MAX_PREVIEW_PAGE_DEFAULT = 1000;
const MAX_PREVIEW_PAGE = 10_000;

/** Pages of a preview's chunks: a 2 MiB document is thousands of them, more than one response should carry. */
@Resolver(() => ChunkPreviewPayload)
export class ChunkPreviewPayloadResolver {
  @FieldResolver(() => [ChunkPreview], { description: 'The chunks from `offset` on, at most `first` (default 1000, at most 10,000).' })
  chunks(
    @Root() preview: ChunkPreviewData,
    @Arg('first', () => Int, { nullable: true, defaultValue: MAX_PREVIEW_PAGE_DEFAULT }) first: number,
    @Arg('offset', () => Int, { nullable: true, defaultValue: 0 }) offset: number,
  ): ChunkPreview[] {
    if (!Number.isInteger(first) || first < 0 || first > MAX_PREVIEW_PAGE)
      throw badInput(`first must be between 0 and ${MAX_PREVIEW_PAGE}.`, { argument: 'first' });
    if (!Number.isInteger(offset) || offset < 0) throw badInput('offset must be a non-negative integer.', { argument: 'offset' });
    return preview.chunks.slice(offset, offset + first);
  }
}
