import type { Logger } from '../logger';
import type { IngestionJobService } from '../modules/jobs/ingestion-job.service';
import type { ReembedService } from '../modules/embeddings/reembed.service';
import type { IngestionJobWorker } from '../modules/jobs/ingestion-job.worker';
import type { UploadService } from '../modules/jobs/upload.service';
import type { DocumentProcessor } from '../ports/document-processor.port';

/** Stops one part: drains a server, closes a connection, clears a timer. */
export type Disposer = () => unknown;

/**
 * Shutdown as Apollo Server does it (`toDispose`): each part registers how to stop it as it is built, and
 * {@link Disposers.dispose} runs them in reverse order, so every part stops before the parts it was built on and
 * nobody maintains a hand-written order. Where an order is not the reverse of construction, the place of the
 * registration says so (see `createApp`).
 */
export class Disposers {
  private readonly parts: { name: string; dispose: Disposer }[] = [];
  private disposing: Promise<void> | null = null;

  constructor(private readonly logger: Pick<Logger, 'error'>) {}

  /** Registers the disposer of a part just built; `name` is what a failure is logged under. */
  add(name: string, dispose: Disposer): void {
    this.parts.push({ name, dispose });
  }

  /**
   * Runs every disposer once, last registered first, each after the previous one settled. The first is called
   * synchronously (a server's listener closes before this returns). A disposer that fails is logged and the others
   * still run; the returned promise then rejects with the first failure. Idempotent: later calls get the same promise.
   */
  dispose(): Promise<void> {
    this.disposing ??= this.runAll();
    return this.disposing;
  }

  private async runAll(): Promise<void> {
    const failures: unknown[] = [];
    for (const part of [...this.parts].reverse()) {
      try {
        await part.dispose();
      } catch (error) {
        this.logger.error('shutdown step failed', { part: part.name, error: error instanceof Error ? error.message : String(error) });
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  }
}

export interface BackgroundWorkDeps {
  jobWorker: IngestionJobWorker;
  jobs: IngestionJobService;
  uploads: UploadService;
  /** Drops the previous vectors of re-embedded collections once their rollback grace period is over. */
  reembed: Pick<ReembedService, 'sweepExpired'>;
  /** The worker threads' processor, stopped before the job worker is awaited. */
  processor: DocumentProcessor;
  logger: Logger;
}

/** Starts what runs besides requests: the job worker (unfinished jobs continue) and the upload and job sweeps. */
export async function startBackgroundWork(deps: BackgroundWorkDeps, disposers: Disposers): Promise<void> {
  const { jobWorker, jobs, uploads, reembed, processor, logger } = deps;
  // Unfinished jobs of a previous run (or of a replica that died) continue; expired uploads go.
  await jobWorker.start();
  disposers.add('job worker', () => jobWorker.stop());
  // The worker threads go before the jobs are awaited (registered after the worker, so stopped before it): a job
  // document in a thread stops there and resumes on the next start, instead of holding the drain until it finishes.
  disposers.add('ingest worker threads', () => processor.close());
  const uploadSweep = every(10 * 60_000, () => uploads.sweep(), 'upload sweep failed', logger);
  // Finished jobs older than KBQL_JOB_RETENTION_DAYS go, hourly, a bounded batch per sweep (safe on every replica).
  const jobSweep = every(60 * 60_000, () => jobs.sweepFinishedJobs(), 'job retention sweep failed', logger);
  // Previous vectors past KBQL_REEMBED_GRACE_SECONDS go (rollbackEmbedding already refuses them).
  // Not at start: nothing expires within a minute of it, and a start should not read every collection.
  const reembedSweep = every(60_000, () => reembed.sweepExpired(), 're-embedding sweep failed', logger, { atStart: false });
  disposers.add('sweeps', () => {
    clearInterval(uploadSweep);
    clearInterval(jobSweep);
    clearInterval(reembedSweep);
  });
}

/** Runs `sweep` now (unless `atStart` is false) and every `intervalMs`, never keeping the process alive; a failure is logged as `failure`. */
function every(
  intervalMs: number,
  sweep: () => Promise<unknown>,
  failure: string,
  logger: Logger,
  options: { atStart?: boolean } = {},
): NodeJS.Timeout {
  const run = () =>
    void sweep().catch((error: unknown) => logger.warn(failure, { error: error instanceof Error ? error.message : String(error) }));
  if (options.atStart ?? true) run();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return timer;
}
