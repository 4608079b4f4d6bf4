import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { JobQueue, JobTask } from '../../ports/job-store.port';

export interface BullJobQueueOptions {
  url: string;
  /** BullMQ key prefix, e.g. `kbql:bull`. */
  prefix: string;
  /** @default 'kbql-ingestion' */
  name?: string;
  /**
   * Tasks this replica runs at once.
   * @default 2
   */
  concurrency?: number;
  /**
   * How long a worker holds a task's lock without renewing it, in ms; a replica that died loses its tasks to the
   * others after about this long.
   * @default 30000
   */
  lockDurationMs?: number;
  /**
   * Longest `enqueue` may wait for Redis, in ms.
   * @default 5000
   */
  timeoutMs?: number;
  /**
   * Runs of a task whose handler throws (only when the job store failed mid-way), before BullMQ gives it up.
   * @default 5
   */
  attempts?: number;
  /**
   * First wait before a failed task runs again, in ms; doubled each time.
   * @default 500
   */
  backoffMs?: number;
  /** Called with a handler's error (the handler records failures itself; this is for infrastructure errors). */
  onError?: (error: unknown) => void;
}

/** BullMQ's custom ids may not contain ':' (it separates key parts). */
const taskId = (task: JobTask): string => `${task.jobId}_${task.index}_${task.attempt}`;

/**
 * The multi-replica queue: one BullMQ job per document task, so the replicas share a big ingestion job and BullMQ's
 * lock gives each task to one worker at a time; a replica killed mid-task loses its lock and another takes the task
 * over (stalled-job recovery). Re-adding a task whose id is still known is a no-op.
 */
export class BullJobQueue implements JobQueue {
  readonly kind = 'bullmq';
  private readonly queue: Queue;
  private worker: Worker | null = null;
  private readonly running = new Set<Promise<void>>();
  private readonly connection: ConnectionOptions;
  private readonly name: string;

  constructor(private readonly options: BullJobQueueOptions) {
    this.name = options.name ?? 'kbql-ingestion';
    // Workers block on Redis (maxRetriesPerRequest null is what BullMQ requires). No offline queue anywhere: with
    // Redis down, commands fail at once instead of piling up, so BullMQ's loops (and its close) never wait forever;
    // enqueue is bounded by timeoutMs as well.
    this.connection = { url: options.url, maxRetriesPerRequest: null, enableOfflineQueue: false, connectTimeout: 5000 };
    this.queue = new Queue(this.name, {
      connection: { url: options.url, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5000 },
      prefix: options.prefix,
    });
    this.queue.on('error', (error) => options.onError?.(error));
  }

  async start(handler: (task: JobTask) => Promise<void>): Promise<void> {
    const lockDuration = this.options.lockDurationMs ?? 30_000;
    this.worker = new Worker(this.name, (job) => this.track(handler(job.data as JobTask)), {
      connection: this.connection,
      prefix: this.options.prefix,
      concurrency: Math.max(1, this.options.concurrency ?? 2),
      lockDuration,
      stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)),
      maxStalledCount: 5,
    });
    this.worker.on('error', (error) => this.options.onError?.(error));
    this.worker.on('failed', (_job, error) => this.options.onError?.(error));
  }

  async enqueue(tasks: readonly JobTask[]): Promise<void> {
    if (tasks.length === 0) return;
    const timeoutMs = this.options.timeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.queue.addBulk(
          tasks.map((task) => ({
            name: 'document',
            data: task,
            opts: {
              jobId: taskId(task),
              // BullMQ's own entries must not pile up in Redis, and the job store holds every outcome: a task is
              // removed once it completes, and also once it failed all its attempts (the error is logged through
              // onError). A kept failed entry would also make the re-enqueue of that task id on the next start a
              // no-op, leaving its document unfinished for good.
              removeOnComplete: true,
              removeOnFail: true,
              // A handler throws only when the job store failed mid-way: redo the document (it is idempotent).
              attempts: Math.max(1, this.options.attempts ?? 5),
              backoff: { type: 'exponential', delay: this.options.backoffMs ?? 500 },
            },
          })),
        ),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`enqueue: Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Lets running tasks finish for up to `timeoutMs`, then closes the worker. A task cut short is redone by whichever
   * replica takes it after its lock expires.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    const within = (work: Promise<unknown>, ms: number) => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        work.then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
      ]).finally(() => clearTimeout(timer));
    };
    // Our own drain, then BullMQ's forced close: its graceful one waits on Redis, forever while Redis is down.
    await within(Promise.allSettled([...this.running]), timeoutMs);
    await within(Promise.allSettled([this.worker?.close(true), this.queue.close()]), 2_000);
    // With Redis down a close never completes: cut the connections so none keeps reconnecting (and the process alive).
    await within(Promise.allSettled([this.worker?.disconnect(), this.queue.disconnect()]), 1_000);
  }

  private track(run: Promise<void>): Promise<void> {
    this.running.add(run);
    const done = () => this.running.delete(run);
    run.then(done, done);
    return run;
  }
}
