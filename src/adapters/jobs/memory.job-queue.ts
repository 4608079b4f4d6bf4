import type { JobQueue, JobTask } from '../../ports/job-store.port';

export interface MemoryJobQueueOptions {
  /**
   * Tasks run at once (documents processed in parallel by this process).
   * @default 2
   */
  concurrency?: number;
  /** Called with a handler's error (the handler records failures itself; this is for bugs). */
  onError?: (error: unknown, task: JobTask) => void;
}

const keyOf = (task: JobTask): string => `${task.jobId}:${task.index}:${task.attempt}`;

/**
 * The in-process queue of a single replica: FIFO, `concurrency` workers, a task queued or running twice is taken
 * once. Nothing here is durable — the job store is: on start the job service re-enqueues every unfinished document.
 */
export class MemoryJobQueue implements JobQueue {
  readonly kind = 'memory';
  private readonly concurrency: number;
  private readonly pending: JobTask[] = [];
  private readonly known = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private handler: ((task: JobTask) => Promise<void>) | null = null;
  private closed = false;

  constructor(private readonly options: MemoryJobQueueOptions = {}) {
    this.concurrency = Math.max(1, options.concurrency ?? 2);
  }

  async start(handler: (task: JobTask) => Promise<void>): Promise<void> {
    this.handler = handler;
    this.pump();
  }

  async enqueue(tasks: readonly JobTask[]): Promise<void> {
    for (const task of tasks) {
      const key = keyOf(task);
      if (this.known.has(key)) continue;
      this.known.add(key);
      this.pending.push(task);
    }
    this.pump();
  }

  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    this.pending.length = 0;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private pump(): void {
    const handler = this.handler;
    if (!handler || this.closed) return;
    while (this.running.size < this.concurrency && this.pending.length > 0) {
      const task = this.pending.shift()!;
      const run: Promise<void> = handler(task)
        .catch((error: unknown) => this.options.onError?.(error, task))
        .finally(() => {
          this.running.delete(run);
          this.known.delete(keyOf(task));
          this.pump();
        });
      this.running.add(run);
    }
  }
}
