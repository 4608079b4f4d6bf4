import { randomUUID } from 'node:crypto';
import { AppError, badInput, notFound } from '../../errors';
import type { Logger } from '../../logger';
import {
  FINISHED_JOB_STATUSES,
  type JobDocumentState,
  type JobEvent,
  type JobEventBus,
  type JobPayload,
  type JobQueue,
  type JobRecord,
  type JobStage,
  type JobStatus,
  type JobStore,
  type JobTask,
  TenantQueueFull,
} from '../../ports/job-store.port';
import type { CollectionRecord, KnowledgeStore, Metadata } from '../../ports/knowledge-store.port';
import { assertWritable, canSee } from '../auth/principal';
import type { Access } from '../../ports/principal.port';
import type { FileContentExtractor } from '../../ports/file-extractor.port';
import { toConnection, toWindow, type Connection, type PageArgs } from '../../graphql/pagination';
import type { ChunkPreview, DocumentInputArgs, IngestionService } from '../ingestion/ingestion.service';
import { openProgressStream, type ProgressItem } from './ingestion-job.progress';
import { describeJob, finishJobIfDone, publishJobEvent, type JobView } from './ingestion-job.state';
import type { UploadService } from './upload.service';

export interface IngestionJobServiceDeps {
  store: JobStore;
  queue: JobQueue;
  events: JobEventBus;
  knowledge: KnowledgeStore;
  ingestion: IngestionService;
  uploads: UploadService;
  extractor: FileContentExtractor;
  /**
   * `maxDocumentsPerJob`: documents plus uploads in one job. `maxQueuedDocumentsPerTenant`: open (queued or in
   * progress) documents one tenant may have across its jobs; a `startIngestion` that would go over is RATE_LIMITED
   * (@default no limit).
   */
  limits: { maxDocumentsPerJob: number; maxQueuedDocumentsPerTenant?: number };
  /**
   * Retention of finished jobs (see {@link IngestionJobService.sweepFinishedJobs}). `days` 0 keeps them forever.
   * `batchSize`: jobs per store call (@default 100); `maxPerSweep`: jobs one sweep deletes at most (@default 1000).
   */
  retention?: { days: number; batchSize?: number; maxPerSweep?: number };
  /** The time, for retention (tests pass a fake clock). @default () => new Date() */
  clock?: () => Date;
  logger?: Logger;
}

export interface DocumentReplacements {
  documents?: readonly DocumentInputArgs[] | null;
  uploads?: readonly string[] | null;
}

/** What `deleteIngestionJob` removed. */
export interface DeletedJob {
  id: string;
  status: JobStatus;
  /** Per-document records deleted with the job (its `total`). */
  deletedDocuments: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * `retryAfter` of a startIngestion refused for the tenant's queue being full, in seconds: a fixed figure (how fast
 * documents finish depends on the replicas, the embedder and the documents, none of which this replica knows).
 */
export const QUEUE_FULL_RETRY_AFTER_SECONDS = 30;

/**
 * Asynchronous ingestion, the commands: a job is accepted at once (job, document states and payloads persisted
 * together) and its documents go to the queue one task each, which `IngestionJobWorker` runs; cancel, retry,
 * delete, retention and the progress stream act on the same store.
 */
export class IngestionJobService {
  constructor(private readonly deps: IngestionJobServiceDeps) {}

  async startIngestion(
    collectionRef: string,
    documents: readonly DocumentInputArgs[],
    uploadIds: readonly string[],
    access: Access,
  ): Promise<JobView> {
    const total = documents.length + uploadIds.length;
    const max = this.deps.limits.maxDocumentsPerJob;
    if (total === 0) throw badInput('Give at least one document or upload.', { argument: 'documents' });
    if (total > max) throw badInput(`At most ${max} documents and uploads per job.`, { argument: 'documents', max });
    if (new Set(uploadIds).size !== uploadIds.length) throw badInput('An upload id appears more than once.', { argument: 'uploads' });
    const maxQueued = this.deps.limits.maxQueuedDocumentsPerTenant;
    if (maxQueued !== undefined && total > maxQueued) {
      throw badInput(`At most ${maxQueued} documents may be queued per tenant; this job alone has ${total}.`, {
        argument: 'documents',
        max: maxQueued,
      });
    }
    const collection = await this.deps.ingestion.resolveCollection(collectionRef, access);
    // Early refusal before the uploads are read; createJob checks again atomically.
    if (maxQueued !== undefined) {
      const open = await this.deps.store.openDocuments(access.tenant);
      if (open + total > maxQueued) throw queueFull(new TenantQueueFull(open, total, maxQueued));
    }
    const items: { payload: JobPayload; externalId: string | null; filename: string | null }[] = documents.map((doc) => ({
      payload: documentPayload(doc),
      externalId: doc.id ?? null,
      filename: null,
    }));
    for (const id of uploadIds) {
      const { record, data } = await this.deps.uploads.load(id, access);
      items.push({
        payload: { kind: 'upload', uploadId: id, filename: record.filename, mediaType: record.mediaType, data: data.toString('base64') },
        externalId: record.filename,
        filename: record.filename,
      });
    }
    const now = new Date();
    const jobId = randomUUID();
    let job: JobRecord;
    try {
      job = await this.deps.store.createJob(
        {
          id: jobId,
          tenant: access.tenant,
          collectionId: collection.id,
          createdAt: now,
          documents: items.map((item, index) => ({
            state: initialState(index, item.externalId, item.filename, 1, now),
            payload: item.payload,
          })),
        },
        { maxOpenDocumentsPerTenant: maxQueued },
      );
    } catch (error) {
      throw error instanceof TenantQueueFull ? queueFull(error) : error;
    }
    await this.deps.queue.enqueue(items.map((_, index) => ({ jobId, index, attempt: 1 })));
    return this.describe(job);
  }

  /**
   * A re-embedding job of `collection` (already checked writable by the caller): one task that runs the whole
   * rebuild, so it gets the jobs' status, cancel, retry, progress stream and resume after a restart. Its document's
   * external id is `reembed:<embedder>`; its `chunkCount` counts the chunks with a target vector as it goes.
   */
  async startReembedJob(collection: CollectionRecord, embedderName: string, access: Access): Promise<JobView> {
    const now = new Date();
    const jobId = randomUUID();
    const job = await this.deps.store.createJob({
      id: jobId,
      tenant: access.tenant,
      collectionId: collection.id,
      createdAt: now,
      documents: [
        { state: initialState(0, `reembed:${embedderName}`, null, 1, now), payload: { kind: 'reembed', embedder: embedderName } },
      ],
    });
    await this.deps.queue.enqueue([{ jobId, index: 0, attempt: 1 }]);
    return this.describe(job);
  }

  /** A re-embedding cancelled before its run started: the vectors it was to build are dropped here (no run will). */
  private async dropUnstartedReembedding(job: JobRecord, index: number): Promise<void> {
    const payload = await this.deps.store.getPayload(job.id, index);
    if (payload?.kind !== 'reembed') return;
    const collection = await this.deps.knowledge.getCollection(job.collectionId);
    if (collection?.secondary?.role === 'BUILDING') await this.deps.knowledge.reembedding?.dropSecondary(collection.id);
  }

  /** The job when `access` may see it (its collection is visible to the caller, or the caller's tenant started it). */
  async getJob(id: string, access: Access): Promise<JobView> {
    return this.describe(await this.visibleJob(id, access));
  }

  async listJobs(collectionRef: string | null, status: JobStatus | null, page: PageArgs, access: Access): Promise<Connection<JobView>> {
    const window = toWindow(page);
    const collection = collectionRef ? await this.deps.ingestion.resolveReadable(collectionRef, access) : null;
    const found = await this.deps.store.listJobs(
      { tenant: access.tenant, collectionId: collection?.id, status: status ?? undefined },
      window,
    );
    const items = await Promise.all(found.items.map((job) => this.describe(job)));
    return toConnection({ items, total: found.total }, window);
  }

  /** The job's documents in index order, optionally only those in one stage. */
  async documents(jobId: string, stage: JobStage | null, page: PageArgs): Promise<Connection<JobDocumentState>> {
    const window = toWindow(page);
    const all = (await this.deps.store.getDocuments(jobId)).filter((d) => stage == null || d.stage === stage);
    return toConnection({ items: all.slice(window.offset, window.offset + window.limit), total: all.length }, window);
  }

  /**
   * Cancels the documents not started yet (CANCELLED) and stops the running ones before their next stage (a
   * document already STORING completes). Documents already indexed stay as they are. CONFLICT when finished.
   */
  async cancel(jobId: string, access: Access): Promise<JobView> {
    const job = await this.visibleJob(jobId, access);
    await this.assertWritableJob(job, access);
    if (job.finishedAt) throw new AppError('CONFLICT', 'The job has already finished.', { reason: 'JOB_FINISHED', status: job.status });
    await this.deps.store.setCancelRequested(jobId);
    for (const doc of await this.deps.store.getDocuments(jobId)) {
      if (doc.stage !== 'QUEUED') continue;
      const cancelled: JobDocumentState = { ...doc, stage: 'CANCELLED', updatedAt: new Date() };
      if (await this.deps.store.transition(jobId, cancelled, ['QUEUED'])) {
        await this.dropUnstartedReembedding(job, doc.index);
        await this.deps.store.dropPayload(jobId, doc.index);
        await this.publish({ kind: 'STAGE', jobId, document: cancelled });
      }
    }
    await this.maybeFinish(jobId);
    return this.getJob(jobId, access);
  }

  /**
   * Queues the FAILED documents again (and only them). A failed document may be given new content: a document
   * whose `id` is a failed document's id, or an upload whose file name is a failed upload's name.
   */
  async retry(jobId: string, replacements: DocumentReplacements, access: Access): Promise<JobView> {
    const job = await this.visibleJob(jobId, access);
    await this.assertWritableJob(job, access);
    const failed = (await this.deps.store.getDocuments(jobId)).filter((d) => d.stage === 'FAILED');
    if (failed.length === 0) throw new AppError('CONFLICT', 'The job has no failed documents to retry.', { reason: 'NOTHING_TO_RETRY' });
    const newPayloads = new Map<number, JobPayload>();
    for (const doc of replacements.documents ?? []) {
      const target = doc.id ? failed.find((f) => f.externalId === doc.id) : undefined;
      if (!target) throw badInput(`No failed document of this job has the id "${doc.id ?? ''}".`, { argument: 'documents' });
      newPayloads.set(target.index, documentPayload(doc));
    }
    for (const id of replacements.uploads ?? []) {
      const { record, data } = await this.deps.uploads.load(id, access);
      const target = failed.find((f) => f.filename === record.filename || f.externalId === record.filename);
      if (!target) throw badInput(`No failed document of this job is named "${record.filename}".`, { argument: 'uploads', upload: id });
      newPayloads.set(target.index, {
        kind: 'upload',
        uploadId: id,
        filename: record.filename,
        mediaType: record.mediaType,
        data: data.toString('base64'),
      });
    }
    const tasks: JobTask[] = [];
    for (const doc of failed) {
      const payload = newPayloads.get(doc.index);
      if (payload) await this.deps.store.replacePayload(jobId, doc.index, payload);
      const queued = initialState(doc.index, doc.externalId, doc.filename, doc.attempt + 1, new Date(), doc.runs);
      if (await this.deps.store.transition(jobId, queued, ['FAILED'])) {
        tasks.push({ jobId, index: doc.index, attempt: queued.attempt });
        await this.publish({ kind: 'STAGE', jobId, document: queued });
      }
    }
    await this.deps.store.reopen(jobId);
    await this.deps.queue.enqueue(tasks);
    return this.getJob(jobId, access);
  }

  /**
   * `deleteIngestionJob`: removes a finished job now, with its per-document records and any content still kept for
   * a retry. The documents it indexed stay in the collection. CONFLICT while it is QUEUED or RUNNING (cancel it
   * first); NOT_FOUND when the caller may not see it (or it is already gone).
   */
  async deleteJob(jobId: string, access: Access): Promise<DeletedJob> {
    const job = await this.visibleJob(jobId, access);
    await this.assertWritableJob(job, access);
    const active = () =>
      new AppError('CONFLICT', 'The job has not finished; cancel it first, or wait for it to finish.', {
        reason: 'JOB_NOT_FINISHED',
        status: job.status,
      });
    if (!job.finishedAt || !FINISHED_JOB_STATUSES.includes(job.status)) throw active();
    const result = await this.deps.store.deleteJob(jobId);
    if (result === 'active') throw active(); // reopened by a retry meanwhile
    if (result === 'missing') throw notFound('IngestionJob', jobId);
    return { id: job.id, status: job.status, deletedDocuments: job.total };
  }

  /**
   * Retention: deletes jobs finished more than `retention.days` ago (nothing when 0), oldest first, in batches of
   * `batchSize`, at most `maxPerSweep` per call so a large backlog is worked off over several sweeps instead of
   * blocking this process or Redis. QUEUED and RUNNING jobs are never deleted; replicas sweeping the same store at
   * once delete each job once. Returns how many jobs this sweep deleted.
   */
  async sweepFinishedJobs(): Promise<number> {
    const days = this.deps.retention?.days ?? 0;
    if (days <= 0) return 0;
    const batchSize = Math.max(1, this.deps.retention?.batchSize ?? 100);
    const maxPerSweep = Math.max(batchSize, this.deps.retention?.maxPerSweep ?? 1000);
    const cutoff = new Date((this.deps.clock?.() ?? new Date()).getTime() - days * DAY_MS);
    let deleted = 0;
    while (deleted < maxPerSweep) {
      const n = await this.deps.store.deleteFinishedBefore(cutoff, Math.min(batchSize, maxPerSweep - deleted));
      deleted += n;
      if (n < batchSize) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (deleted > 0) this.deps.logger?.info('finished ingestion jobs deleted', { count: deleted, finishedBefore: cutoff.toISOString() });
    return deleted;
  }

  /** `previewChunks`: the ingestion path up to chunking, for a document or an uploaded file. */
  async preview(collectionRef: string, document: DocumentInputArgs | null, uploadId: string | null, access: Access): Promise<ChunkPreview> {
    if ((document == null) === (uploadId == null)) throw badInput('Give exactly one of "document" or "upload".');
    if (document) return this.deps.ingestion.previewChunks(collectionRef, document, access);
    const { record, data } = await this.deps.uploads.load(uploadId!, access);
    return this.deps.ingestion.previewChunks(
      collectionRef,
      () =>
        uploadToDocument(
          this.deps.extractor,
          { kind: 'upload', uploadId: uploadId!, filename: record.filename, mediaType: record.mediaType, data: '' },
          data,
        ),
      access,
    );
  }

  /**
   * `ingestionProgress`: the current stage of every document first (so nothing that happened before subscribing is
   * missed), then the documents that moved, then the summary, after which the stream ends. Coalesced and paced:
   * events are folded into the latest state per document as they arrive (memory bounded by the job's size, however
   * slow the consumer), and a STAGE item carries every document that moved since the previous one — at most one
   * item per `PROGRESS_WINDOW_MS` and `PROGRESS_MAX_DOCUMENTS` documents per item. A document's states
   * never go backwards.
   */
  async progress(jobId: string, access: Access): Promise<AsyncIterableIterator<ProgressItem>> {
    await this.visibleJob(jobId, access);
    return openProgressStream(this.deps, jobId);
  }

  private maybeFinish(jobId: string): Promise<void> {
    return finishJobIfDone(this.deps, jobId);
  }

  private publish(event: JobEvent): Promise<void> {
    return publishJobEvent(this.deps, event);
  }

  private async visibleJob(id: string, access: Access): Promise<JobRecord> {
    const job = await this.deps.store.getJob(id);
    if (!job) throw notFound('IngestionJob', id);
    if (job.tenant === access.tenant) return job;
    const collection = await this.deps.knowledge.getCollection(job.collectionId);
    if (!collection || !canSee(access, collection)) throw notFound('IngestionJob', id);
    return job;
  }

  private async assertWritableJob(job: JobRecord, access: Access): Promise<void> {
    const collection: CollectionRecord | null = await this.deps.knowledge.getCollection(job.collectionId);
    if (collection) assertWritable(access, collection);
  }

  /** The job with its counts. */
  describe(job: JobRecord): Promise<JobView> {
    return describeJob(this.deps.store, job);
  }
}

function queueFull(full: TenantQueueFull): AppError {
  return new AppError(
    'RATE_LIMITED',
    `Your tenant already has ${full.open} documents queued or in progress; ${full.requested} more would exceed the limit of ${full.max}. ` +
      `Retry in ${QUEUE_FULL_RETRY_AFTER_SECONDS} s, or once some have finished.`,
    {
      reason: 'TENANT_QUEUE_FULL',
      retryAfter: QUEUE_FULL_RETRY_AFTER_SECONDS,
      queued: full.open,
      requested: full.requested,
      max: full.max,
    },
  );
}

function initialState(
  index: number,
  externalId: string | null,
  filename: string | null,
  attempt: number,
  at: Date,
  runs = 0,
): JobDocumentState {
  return {
    index,
    externalId,
    filename,
    stage: 'QUEUED',
    code: null,
    reasonCode: null,
    reason: null,
    transient: null,
    documentId: null,
    chunkCount: null,
    runs,
    attempt,
    timings: { parseMs: null, chunkMs: null, embedMs: null, storeMs: null },
    updatedAt: at,
  };
}

function documentPayload(doc: DocumentInputArgs): JobPayload {
  return {
    kind: 'document',
    id: doc.id ?? null,
    title: doc.title ?? null,
    source: doc.source ?? null,
    content: doc.content,
    contentType: doc.contentType ?? null,
    metadata: (doc.metadata as Metadata | null | undefined) ?? null,
  };
}

/** An uploaded file's content as a document (see {@link FileContentExtractor}); named after the file. */
export async function uploadToDocument(
  extractor: FileContentExtractor,
  payload: Extract<JobPayload, { kind: 'upload' }>,
  data: Buffer,
): Promise<DocumentInputArgs> {
  const extracted = await extractor.extract(data, payload.filename, payload.mediaType);
  return {
    id: payload.filename,
    title: extracted.title,
    source: payload.filename,
    content: extracted.content,
    contentType: extracted.contentType,
    metadata: { filename: payload.filename },
  };
}
