import type { Logger } from '../../logger';
import {
  isTerminal,
  type JobEvent,
  type JobEventBus,
  type JobRecord,
  type JobStage,
  type JobStatus,
  type JobStore,
} from '../../ports/job-store.port';

/** What the job service, its worker and its progress streams share: the job store and the event bus. */
export interface JobStatePorts {
  store: JobStore;
  events: JobEventBus;
  logger?: Logger;
}

/** A job with its per-stage counts, as the API shows it. */
export interface JobView extends JobRecord {
  queued: number;
  inProgress: number;
  indexed: number;
  unchanged: number;
  failed: number;
  cancelled: number;
  /** From creation to the end (or to now while it runs). */
  tookMs: number;
}

/** The job with its counts. */
export async function describeJob(store: JobStore, job: JobRecord): Promise<JobView> {
  const docs = await store.getDocuments(job.id);
  const count = (...stages: JobStage[]) => docs.filter((d) => stages.includes(d.stage)).length;
  const end = job.finishedAt ?? new Date();
  return {
    ...job,
    queued: count('QUEUED'),
    inProgress: count('PARSING', 'CHUNKING', 'EMBEDDING', 'STORING'),
    indexed: count('INDEXED'),
    unchanged: count('UNCHANGED'),
    failed: count('FAILED'),
    cancelled: count('CANCELLED'),
    tookMs: end.getTime() - job.createdAt.getTime(),
  };
}

/** Publishes a job event; a failure is logged, never thrown. */
export async function publishJobEvent(ports: JobStatePorts, event: JobEvent): Promise<void> {
  try {
    await ports.events.publish(event);
  } catch (error) {
    // Progress is best effort: the state is in the store, and subscribers re-read it for the summary.
    ports.logger?.warn('ingestion progress event not published', {
      jobId: event.jobId,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** Closes the job once none of its documents is open: its final status, then the SUMMARY event (once). */
export async function finishJobIfDone(ports: JobStatePorts, jobId: string): Promise<void> {
  if ((await ports.store.openCount(jobId)) > 0) return;
  const job = await ports.store.getJob(jobId);
  if (!job || job.finishedAt) return;
  const docs = await ports.store.getDocuments(jobId);
  if (docs.some((d) => !isTerminal(d.stage))) return;
  const status: JobStatus = docs.some((d) => d.stage === 'CANCELLED')
    ? 'CANCELLED'
    : docs.some((d) => d.stage === 'FAILED')
      ? 'COMPLETED_WITH_ERRORS'
      : 'COMPLETED';
  if (await ports.store.markFinished(jobId, new Date(), status)) await publishJobEvent(ports, { kind: 'SUMMARY', jobId });
}
