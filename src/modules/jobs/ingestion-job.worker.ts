import { AppError, isAppError, type ErrorCode } from '../../errors';
import type { Logger } from '../../logger';
import type { IngestOutcome } from '../../observability/metrics';
import {
  CLAIMABLE_STAGES,
  isTerminal,
  type JobDocumentState,
  type JobEvent,
  type JobEventBus,
  type JobPayload,
  type JobQueue,
  type JobStage,
  type JobStore,
  type JobTask,
} from '../../ports/job-store.port';
import type { KnowledgeStore } from '../../ports/knowledge-store.port';
import type { DocumentInputArgs, DocumentOutcome, IngestionService, PipelineStage } from '../ingestion/ingestion.service';
import type { FileContentExtractor } from '../../ports/file-extractor.port';
import type { ReembedService } from '../embeddings/reembed.service';
import { uploadToDocument } from './ingestion-job.service';
import { finishJobIfDone, publishJobEvent } from './ingestion-job.state';

/** Codes a retry of the same document may get past: the failure was ours or a provider's, not the content's. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'UPSTREAM_UNAVAILABLE',
  'UPSTREAM_TIMEOUT',
  'RATE_LIMITED',
  'STORAGE_UNAVAILABLE',
  'INTERNAL_SERVER_ERROR',
]);

export const isTransientCode = (code: string | null): boolean => code !== null && TRANSIENT_CODES.has(code);

export interface IngestionJobWorkerDeps {
  store: JobStore;
  queue: JobQueue;
  events: JobEventBus;
  knowledge: KnowledgeStore;
  ingestion: IngestionService;
  extractor: FileContentExtractor;
  /** Runs the jobs of `reembedCollection` (payload kind `reembed`); none: such a job fails. */
  reembed?: Pick<ReembedService, 'rebuild'>;
  /** The ingestion metrics (documents by outcome, chunks). */
  metrics?: { documents(outcome: IngestOutcome, count: number): void; chunks(count: number): void };
  logger?: Logger;
}

/** Thrown by a stage hook when the job was cancelled: stops the document, which ends CANCELLED. */
class Cancelled extends Error {}

/**
 * Runs the queue's tasks, one document of one job each (bounded concurrency; one worker per task, also across
 * replicas with BullMQ), through {@link IngestionService.ingestOne} — the same pipeline as `ingestDocuments` — with
 * every stage change persisted and published. Re-running a document is harmless: its write is a content-hash upsert
 * that replaces chunks atomically, so a crash mid-document leaves the old version or the new one and the re-run
 * either writes it once or finds it UNCHANGED (reported INDEXED when this job's earlier run got as far as STORING).
 */
export class IngestionJobWorker {
  private started = false;

  constructor(private readonly deps: IngestionJobWorkerDeps) {}

  /** Starts the workers and resumes every unfinished job (documents left mid-way are redone). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.deps.queue.start((task) => this.process(task));
    try {
      for (const job of await this.deps.store.unfinishedJobs()) {
        const open = (await this.deps.store.getDocuments(job.id)).filter((d) => !isTerminal(d.stage));
        if (open.length === 0) await finishJobIfDone(this.deps, job.id);
        else await this.deps.queue.enqueue(open.map((d) => ({ jobId: job.id, index: d.index, attempt: d.attempt })));
      }
    } catch (error) {
      // Only the networked store fails here (Redis down); its queue still holds the work and resumes it by itself.
      this.deps.logger?.warn('could not resume unfinished ingestion jobs', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** Stops taking documents and waits a while for the running ones. */
  async stop(timeoutMs = 5_000): Promise<void> {
    await this.deps.queue.close(timeoutMs);
  }

  /** The queue's handler: one document of one job. */
  async process(task: JobTask): Promise<void> {
    const { store } = this.deps;
    const job = await store.getJob(task.jobId);
    const doc = job ? await store.getDocument(task.jobId, task.index) : null;
    if (!job || !doc || isTerminal(doc.stage) || doc.attempt !== task.attempt) return;
    if (job.cancelRequested) {
      if ((await store.getPayload(job.id, task.index))?.kind === 'reembed') {
        // A re-embedding cancelled while it was not running (queued, or its process died): drop what it built.
        const collection = await this.deps.knowledge.getCollection(job.collectionId);
        if (collection?.secondary?.role === 'BUILDING') await this.deps.knowledge.reembedding?.dropSecondary(collection.id);
      }
      await this.settle(job.id, { ...doc, stage: 'CANCELLED', updatedAt: new Date() }, CLAIMABLE_STAGES);
      return;
    }
    // A previous run that reached STORING may have committed the document before the process died.
    const mayHaveStored = doc.stage === 'STORING';
    let current: JobDocumentState = { ...doc, stage: 'PARSING', runs: doc.runs + 1, updatedAt: new Date() };
    if (!(await store.transition(job.id, current, CLAIMABLE_STAGES))) return;
    await store.markRunning(job.id);
    await this.publish({ kind: 'STAGE', jobId: job.id, document: current });

    const collection = await this.deps.knowledge.getCollection(job.collectionId);
    if (!collection) {
      const failed: JobDocumentState = {
        ...current,
        stage: 'FAILED',
        code: 'NOT_FOUND',
        reasonCode: 'COLLECTION_DELETED',
        reason: 'The collection was deleted.',
        transient: false,
        updatedAt: new Date(),
      };
      await this.settle(job.id, failed, [current.stage]);
      return;
    }
    const payload = await store.getPayload(job.id, task.index);
    if (payload?.kind === 'reembed') return this.processReembed(job.id, current, payload.embedder);
    let outcome: DocumentOutcome;
    try {
      outcome = await this.deps.ingestion.ingestOne(collection, () => this.payloadToDocument(payload), {
        stage: async (stage: PipelineStage, partial) => {
          if (stage === 'PARSING') return;
          if ((await store.getJob(job.id))?.cancelRequested) throw new Cancelled();
          const next: JobDocumentState = {
            ...current,
            stage,
            externalId: partial.externalId ?? current.externalId,
            timings: { ...partial.timings },
            updatedAt: new Date(),
          };
          if (!(await store.transition(job.id, next, [current.stage]))) throw new Cancelled();
          current = next;
          await this.publish({ kind: 'STAGE', jobId: job.id, document: current });
        },
        isStop: (error) => error instanceof Cancelled || isShutdown(error),
      });
    } catch (error) {
      // The server is stopping: the document stays in its stage and the next start (or another replica) resumes it.
      if (isShutdown(error)) return;
      if (!(error instanceof Cancelled)) throw error;
      await this.settle(job.id, { ...current, stage: 'CANCELLED', updatedAt: new Date() }, [current.stage]);
      return;
    }
    const status = outcome.status === 'UNCHANGED' && mayHaveStored ? 'INDEXED' : outcome.status;
    const final: JobDocumentState = {
      ...current,
      stage: status,
      externalId: outcome.externalId ?? current.externalId,
      code: outcome.code,
      reasonCode: outcome.reasonCode,
      reason: outcome.reason,
      transient: status === 'FAILED' ? isTransientCode(outcome.code) : null,
      documentId: outcome.documentId,
      chunkCount: outcome.chunkCount,
      timings: outcome.timings,
      notices: outcome.notices,
      updatedAt: new Date(),
    };
    if (await this.settle(job.id, final, [current.stage])) {
      this.deps.metrics?.documents(status === 'INDEXED' ? 'indexed' : status === 'UNCHANGED' ? 'unchanged' : 'failed', 1);
      if (outcome.status === 'INDEXED') this.deps.metrics?.chunks(outcome.chunkCount ?? 0);
    }
  }

  /**
   * A re-embedding job's one document: EMBEDDING while the rebuild runs (its `chunkCount` is the chunks with a target
   * vector, published after every batch), INDEXED once switched, CANCELLED, or FAILED (retryable when transient).
   */
  private async processReembed(jobId: string, claimed: JobDocumentState, embedder: string): Promise<void> {
    const { store } = this.deps;
    let current: JobDocumentState = { ...claimed, stage: 'EMBEDDING', updatedAt: new Date() };
    if (!(await store.transition(jobId, current, [claimed.stage]))) return;
    await this.publish({ kind: 'STAGE', jobId, document: current });
    const started = performance.now();
    try {
      if (!this.deps.reembed) throw new AppError('INTERNAL_SERVER_ERROR', 'This server cannot run re-embedding jobs.');
      const job = await store.getJob(jobId);
      const outcome = await this.deps.reembed.rebuild(job!.collectionId, embedder, {
        cancelled: async () => (await store.getJob(jobId))?.cancelRequested ?? true,
        progress: async ({ embedded }) => {
          const next: JobDocumentState = { ...current, chunkCount: embedded, updatedAt: new Date() };
          if (!(await store.transition(jobId, next, ['EMBEDDING']))) return;
          current = next;
          await this.publish({ kind: 'STAGE', jobId, document: current });
        },
      });
      const embedMs = performance.now() - started;
      const final: JobDocumentState =
        outcome.status === 'CANCELLED'
          ? { ...current, stage: 'CANCELLED', updatedAt: new Date() }
          : {
              ...current,
              stage: 'INDEXED',
              chunkCount: current.chunkCount ?? outcome.chunks,
              timings: { ...current.timings, embedMs },
              updatedAt: new Date(),
            };
      await this.settle(jobId, final, ['EMBEDDING']);
    } catch (error) {
      if (isShutdown(error)) return;
      const code = isAppError(error) ? error.code : 'INTERNAL_SERVER_ERROR';
      const reasonCode = isAppError(error) && typeof error.details['reason'] === 'string' ? error.details['reason'] : null;
      this.deps.logger?.warn('re-embedding failed', { jobId, error: error instanceof Error ? error.message : String(error) });
      await this.settle(
        jobId,
        {
          ...current,
          stage: 'FAILED',
          code,
          reasonCode,
          reason: error instanceof Error ? error.message : String(error),
          transient: isTransientCode(code),
          updatedAt: new Date(),
        },
        ['EMBEDDING'],
      );
    }
  }

  /** Writes a terminal state (compare-and-set from `from`), publishes it and closes the job when it was the last. */
  private async settle(jobId: string, state: JobDocumentState, from: readonly JobStage[]): Promise<boolean> {
    const written = await this.deps.store.transition(jobId, state, from);
    if (written) {
      // Only FAILED documents can run again (retryIngestion): the others' content need not be kept.
      if (state.stage !== 'FAILED') await this.deps.store.dropPayload(jobId, state.index);
      await this.publish({ kind: 'STAGE', jobId, document: state });
    }
    await finishJobIfDone(this.deps, jobId);
    return written;
  }

  private publish(event: JobEvent): Promise<void> {
    return publishJobEvent(this.deps, event);
  }

  private async payloadToDocument(payload: JobPayload | null): Promise<DocumentInputArgs> {
    if (!payload) throw new AppError('INTERNAL_SERVER_ERROR', 'The document content was lost.', { reason: 'PAYLOAD_MISSING' });
    if (payload.kind === 'document') return payload;
    if (payload.kind === 'reembed') throw new AppError('INTERNAL_SERVER_ERROR', 'A re-embedding is not a document.');
    return uploadToDocument(this.deps.extractor, payload, Buffer.from(payload.data, 'base64'));
  }
}

/** The worker pool refused or dropped the work because the server is stopping (not a failure of the document). */
function isShutdown(error: unknown): boolean {
  return isAppError(error) && error.details['reason'] === 'SHUTTING_DOWN';
}
