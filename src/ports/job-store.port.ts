import type { ContentType, Metadata } from './knowledge-store.port';

/**
 * The ports of asynchronous ingestion: where jobs and their per-document state live ({@link JobStore}), how
 * per-document work is scheduled ({@link JobQueue}), how progress reaches subscribers ({@link JobEventBus}) and
 * where uploaded files wait for a job ({@link UploadStore}). Embedded mode: SQLite in the data dir, an in-process
 * queue and an in-process bus. Multi-replica mode: Redis for all four, BullMQ as the queue.
 */

/** Where one document of a job is. Terminal: INDEXED, UNCHANGED, FAILED, CANCELLED. */
export type JobStage = 'QUEUED' | 'PARSING' | 'CHUNKING' | 'EMBEDDING' | 'STORING' | 'INDEXED' | 'UNCHANGED' | 'FAILED' | 'CANCELLED';

export const JOB_STAGES: readonly JobStage[] = [
  'QUEUED',
  'PARSING',
  'CHUNKING',
  'EMBEDDING',
  'STORING',
  'INDEXED',
  'UNCHANGED',
  'FAILED',
  'CANCELLED',
];
export const TERMINAL_STAGES: ReadonlySet<JobStage> = new Set(['INDEXED', 'UNCHANGED', 'FAILED', 'CANCELLED']);
export const isTerminal = (stage: JobStage): boolean => TERMINAL_STAGES.has(stage);
/** Stages a worker may (re)claim a document from: anything not terminal (a crashed run leaves a middle stage). */
export const CLAIMABLE_STAGES: readonly JobStage[] = ['QUEUED', 'PARSING', 'CHUNKING', 'EMBEDDING', 'STORING'];

/** What a job document is made of, persisted with the job so a restarted process can redo it. */
export type JobPayload =
  | {
      kind: 'document';
      id: string | null;
      title: string | null;
      source: string | null;
      content: string;
      contentType: ContentType | null;
      metadata: Metadata | null;
    }
  | {
      kind: 'upload';
      /** The upload it came from (informational: the bytes are copied into the payload). */
      uploadId: string;
      filename: string;
      /** The Content-Type the client declared, if any. */
      mediaType: string | null;
      /** base64 of the file. */
      data: string;
    }
  | {
      /** A re-embedding of the job's collection (one "document": the whole rebuild, see docs/reembedding.md). */
      kind: 'reembed';
      /** The configured name of the target embedder. */
      embedder: string;
    };

export interface JobDocumentTimings {
  parseMs: number | null;
  chunkMs: number | null;
  embedMs: number | null;
  storeMs: number | null;
}

export interface JobDocumentState {
  index: number;
  /** The document id in the collection, once known (given, the upload's filename, or a content hash). */
  externalId: string | null;
  /** The uploaded file's name, for uploads. */
  filename: string | null;
  stage: JobStage;
  /** Error code when FAILED (BAD_USER_INPUT, PAYLOAD_TOO_LARGE, UPSTREAM_UNAVAILABLE, …). */
  code: string | null;
  /** A specific machine-readable reason when FAILED: CORRUPT_FILE, ENCRYPTED_FILE, EMPTY_FILE, UNSUPPORTED_TYPE, … */
  reasonCode: string | null;
  reason: string | null;
  /** Whether a retry may succeed without changing the document (provider down, timeout); false for bad content. */
  transient: boolean | null;
  documentId: string | null;
  chunkCount: number | null;
  /** How many times a worker started processing this document (1 normally; more after a crash or retry). */
  runs: number;
  /** Incremented by every retry of this document; orders events of different attempts. */
  attempt: number;
  timings: JobDocumentTimings;
  /**
   * What parsing changed in the document's text (control characters removed, unpaired surrogates replaced); absent in
   * states written before it existed.
   */
  notices?: string[];
  updatedAt: Date;
}

/**
 * QUEUED until a worker takes a document, RUNNING until every document is terminal, then COMPLETED (none failed),
 * COMPLETED_WITH_ERRORS (some failed) or CANCELLED (cancelled before the end).
 */
export type JobStatus = 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'COMPLETED_WITH_ERRORS' | 'CANCELLED';
export const JOB_STATUSES: readonly JobStatus[] = ['QUEUED', 'RUNNING', 'COMPLETED', 'COMPLETED_WITH_ERRORS', 'CANCELLED'];

export interface JobRecord {
  id: string;
  status: JobStatus;
  tenant: string;
  collectionId: string;
  total: number;
  cancelRequested: boolean;
  createdAt: Date;
  updatedAt: Date;
  /** Set once, when every document reached a terminal stage. Cleared by a retry. */
  finishedAt: Date | null;
}

export interface NewJob {
  id: string;
  tenant: string;
  collectionId: string;
  createdAt: Date;
  documents: { state: JobDocumentState; payload: JobPayload }[];
}

export interface JobListFilter {
  tenant: string;
  collectionId?: string;
  status?: JobStatus;
}

/**
 * Ingestion jobs, their per-document states and payloads: SQLite in the data directory (one replica) or Redis
 * (shared by every replica). Reads and writes of a Redis store throw AppError UPSTREAM_UNAVAILABLE (reason
 * JOB_STORE) when Redis cannot be reached.
 */
export interface JobStore {
  /** `sqlite` or `redis`, for logs. */
  readonly kind: string;
  /** Opens the file (creating its tables) or checks the connection. Idempotent. */
  init(): Promise<void>;
  /** Releases the SQLite file (a Redis store's connection is closed by the job backend that opened it). */
  close(): Promise<void>;
  /**
   * Writes the job, its document states and payloads in one step (all or nothing). With
   * `maxOpenDocumentsPerTenant`, first checks in the same atomic step (so concurrent calls, also from other
   * replicas, cannot both slip under it) that the tenant's open documents plus this job's stay within it, else
   * writes nothing and throws {@link TenantQueueFull}.
   */
  createJob(job: NewJob, options?: CreateJobOptions): Promise<JobRecord>;
  /**
   * Documents of the tenant's jobs not in a terminal stage (queued or in progress), across all its jobs: what
   * `maxOpenDocumentsPerTenant` counts. Drops as documents finish or are cancelled, rises when a retry queues one.
   */
  openDocuments(tenant: string): Promise<number>;
  /** The job, null when unknown (never was, or deleted). */
  getJob(id: string): Promise<JobRecord | null>;
  /** Newest first. */
  listJobs(filter: JobListFilter, page: { offset: number; limit: number }): Promise<{ items: JobRecord[]; total: number }>;
  /** Jobs not finished yet (any tenant): what a restarted process resumes. */
  unfinishedJobs(): Promise<JobRecord[]>;
  /** Every document state of the job, by index. */
  getDocuments(jobId: string): Promise<JobDocumentState[]>;
  /** One document state; null when the job or the index is unknown. */
  getDocument(jobId: string, index: number): Promise<JobDocumentState | null>;
  /** Documents of the job not in a terminal stage yet. */
  openCount(jobId: string): Promise<number>;
  /** What the document is made from; null when unknown or dropped (see {@link dropPayload}). */
  getPayload(jobId: string, index: number): Promise<JobPayload | null>;
  /**
   * Writes `state` (whole) only when the stored stage is one of `from` — a compare-and-set on the stage, so a
   * cancel (QUEUED → CANCELLED) and a worker's claim never both win. Returns whether it was written.
   */
  transition(jobId: string, state: JobDocumentState, from: readonly JobStage[]): Promise<boolean>;
  /** Overwrites the document's payload (a retry with replacement content). */
  replacePayload(jobId: string, index: number, payload: JobPayload): Promise<void>;
  /** Forgets a payload no run will need again (the document is INDEXED, UNCHANGED or CANCELLED). */
  dropPayload(jobId: string, index: number): Promise<void>;
  /** Marks the job as cancelled by its caller: workers stop its documents at their next stage. */
  setCancelRequested(jobId: string): Promise<void>;
  /** QUEUED → RUNNING (no-op otherwise). */
  markRunning(jobId: string): Promise<void>;
  /**
   * Sets `finishedAt` and the final status when the job is not finished yet; true for the one caller that did (who
   * then announces the summary), even with several replicas racing.
   */
  markFinished(jobId: string, at: Date, status: JobStatus): Promise<boolean>;
  /** Clears `finishedAt` and `cancelRequested`, status RUNNING (a retry reopens the job). */
  reopen(jobId: string): Promise<void>;
  /**
   * Deletes a finished job with every document state and payload it still has, in one atomic step, and only when
   * it is finished: `finishedAt` set, status COMPLETED, COMPLETED_WITH_ERRORS or CANCELLED, and no document outside
   * a terminal stage (a retry being queued). `deleted` for the one caller that deleted it, `missing` when there is
   * no such job (never was, or another caller or replica deleted it first), `active` when it is not finished (kept).
   */
  deleteJob(jobId: string): Promise<JobDeletion>;
  /**
   * Retention: deletes, oldest first, at most `limit` jobs whose `finishedAt` is before `finishedBefore` (each with
   * {@link deleteJob}'s checks, so a job reopened meanwhile is kept and takes no place in the batch). Returns how many
   * this call deleted; fewer than `limit` means nothing more is due now. Several replicas may run it at once: each job
   * is deleted by one of them.
   */
  deleteFinishedBefore(finishedBefore: Date, limit: number): Promise<number>;
}

export interface CreateJobOptions {
  /** Most open documents (not terminal) the job's tenant may have across its jobs once this one is written. */
  maxOpenDocumentsPerTenant?: number;
}

/** Thrown by {@link JobStore.createJob} when the job would take its tenant over `maxOpenDocumentsPerTenant`. */
export class TenantQueueFull extends Error {
  override readonly name = 'TenantQueueFull';
  constructor(
    /** The tenant's open documents when refused. */
    readonly open: number,
    /** This job's documents. */
    readonly requested: number,
    readonly max: number,
  ) {
    super(`The tenant has ${open} open documents; ${requested} more would exceed ${max}.`);
  }
}

/** What {@link JobStore.deleteJob} did. */
export type JobDeletion = 'deleted' | 'missing' | 'active';

/** Statuses of a finished job: the only ones retention or `deleteIngestionJob` may delete. */
export const FINISHED_JOB_STATUSES: readonly JobStatus[] = ['COMPLETED', 'COMPLETED_WITH_ERRORS', 'CANCELLED'];

/** One unit of work: one document of one job, at one attempt. */
export interface JobTask {
  jobId: string;
  index: number;
  attempt: number;
}

/**
 * Runs tasks with bounded concurrency. A task is delivered to exactly one worker at a time (BullMQ's lock across
 * replicas; a single in-process pool otherwise); re-enqueueing a task still queued is a no-op.
 */
export interface JobQueue {
  readonly kind: string;
  /** Starts the workers; `handler` is called for each task. */
  start(handler: (task: JobTask) => Promise<void>): Promise<void>;
  /** Queues the tasks; a task already queued is not queued twice. */
  enqueue(tasks: readonly JobTask[]): Promise<void>;
  /** Stops taking tasks and waits (up to `timeoutMs`) for the running ones. */
  close(timeoutMs?: number): Promise<void>;
}

export type JobEvent = { kind: 'STAGE'; jobId: string; document: JobDocumentState } | { kind: 'SUMMARY'; jobId: string };

/** Progress events, fanned out to every replica's subscribers. */
export interface JobEventBus {
  /**
   * Sends `event` to the job's subscribers on every replica. Progress streams also re-read the store now and then,
   * so a lost event delays an update rather than losing it.
   */
  publish(event: JobEvent): Promise<void>;
  /** Calls `listener` for each event of the job until the returned function is called. */
  subscribe(jobId: string, listener: (event: JobEvent) => void): Promise<() => void>;
  /** Drops every subscription and the bus's connection. */
  close(): Promise<void>;
}

export interface UploadRecord {
  id: string;
  tenant: string;
  filename: string;
  mediaType: string | null;
  bytes: number;
  createdAt: Date;
  expiresAt: Date;
}

/** Uploaded files waiting for a job, kept until they expire. */
export interface UploadStore {
  /** Stores the file and its record until `record.expiresAt`. */
  put(record: UploadRecord, data: Buffer): Promise<void>;
  /** The record and bytes, or null when unknown or expired. */
  get(id: string): Promise<{ record: UploadRecord; data: Buffer } | null>;
  /** Deletes expired uploads; returns how many. */
  sweep(now: Date): Promise<number>;
  /** Releases what the store holds open (nothing for files). */
  close(): Promise<void>;
}
