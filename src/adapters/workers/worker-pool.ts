import { Worker } from 'node:worker_threads';
import { AppError } from '../../errors';
import type { WorkPriority } from '../../ports/document-processor.port';

/** Which queue a task waits in: interactive tasks (a request is waiting) start before background ones (jobs). */
export type Lane = WorkPriority;

export interface WorkerPoolOptions {
  /** The worker script (compiled `.js`), which answers with {@link serveWorkerTasks}. */
  file: string;
  /** Threads kept, started on first use. @default 2 */
  size?: number;
  /**
   * Interactive tasks waiting for a thread before new ones are refused at once with SERVER_BUSY (background tasks
   * are bounded by their producers: job concurrency).
   * @default 256
   */
  maxQueue?: number;
  /** V8 heap limit of one thread, in MiB (ArrayBuffers are not counted: callers bound their inputs). @default 512 */
  heapMb?: number;
  /**
   * Tasks handed to one thread at a time: with more than one, a thread starts its next task as soon as it posts a
   * result, instead of idling until the event loop has received that result and sent another (the event loop is
   * busy with HTTP, GraphQL and store writes exactly when ingestion is heavy). Tasks still run one at a time.
   * @default 2
   */
  pipeline?: number;
  /** Passed to every thread as `workerData`. */
  workerData?: unknown;
  /** Named in errors and logs. */
  name: string;
}

export interface RunOptions {
  /** @default 'interactive' */
  lane?: Lane;
  /**
   * Longest the task may run once started, in ms; past it the thread is terminated (a fresh one replaces it) and the
   * task rejects with `onTimeout()`.
   */
  timeoutMs: number;
  onTimeout: () => Error;
  /** Longest the task may wait for a thread, in ms, before it rejects with SERVER_BUSY. @default no limit */
  queueTimeoutMs?: number;
  /** ArrayBuffers moved (not copied) to the thread. */
  transfer?: ArrayBuffer[];
}

interface Task {
  id: number;
  op: string;
  input: unknown;
  options: RunOptions;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  queueTimer: NodeJS.Timeout | null;
}

interface Slot {
  worker: Worker;
  /** Tasks sent to the thread, in the order it runs them; the first is running. */
  tasks: Task[];
  /** The running task's time limit. */
  timer: NodeJS.Timeout | null;
}

/** One input's outcome in a task over several inputs. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: SerializedError };

/** What a worker thread posts back. */
export type TaskReply =
  { id: number; ok: true; value: unknown; transfer?: ArrayBuffer[] } | { id: number; ok: false; error: SerializedError };

export interface SerializedError {
  message: string;
  /** An AppError's code and details, so the error crosses the thread boundary intact. */
  code?: string;
  details?: Record<string, unknown>;
}

/**
 * A small pool of worker threads for CPU work (parsing, chunking, local embedding), so the event loop only does I/O.
 * Tasks queue in two lanes; a thread takes the oldest interactive task first. A task that runs past its time limit
 * costs its thread (terminated and replaced), never the server; a thread that dies (heap limit, crash) fails only its
 * own task. Written on `node:worker_threads` rather than a pool library because killing a stuck task's thread, two
 * priorities and a bounded interactive queue are the whole of what kbql needs.
 */
export class WorkerPool {
  readonly name: string;
  readonly size: number;
  readonly #options: Required<Omit<WorkerPoolOptions, 'workerData'>> & { workerData: unknown };
  readonly #slots: Slot[] = [];
  readonly #lanes: Record<Lane, Task[]> = { interactive: [], background: [] };
  #nextId = 1;
  #closed = false;

  constructor(options: WorkerPoolOptions) {
    this.name = options.name;
    this.size = Math.max(1, options.size ?? 2);
    this.#options = {
      size: this.size,
      maxQueue: options.maxQueue ?? 256,
      heapMb: options.heapMb ?? 512,
      pipeline: Math.max(1, options.pipeline ?? 2),
      workerData: options.workerData,
      file: options.file,
      name: options.name,
    };
  }

  /** Runs `op` on a worker thread with `input` (structured-cloned). */
  run<T>(op: string, input: unknown, options: RunOptions): Promise<T> {
    if (this.#closed) return Promise.reject(shuttingDown(this.name));
    const lane = options.lane ?? 'interactive';
    if (lane === 'interactive' && this.#lanes.interactive.length >= this.#options.maxQueue) {
      return Promise.reject(busy(this.name, `its queue holds ${this.#options.maxQueue} tasks`));
    }
    return new Promise<T>((resolve, reject) => {
      const task: Task = { id: this.#nextId++, op, input, options, resolve: resolve as (v: unknown) => void, reject, queueTimer: null };
      if (options.queueTimeoutMs !== undefined) {
        task.queueTimer = setTimeout(() => {
          const queue = this.#lanes[lane];
          const at = queue.indexOf(task);
          if (at < 0) return;
          queue.splice(at, 1);
          reject(busy(this.name, `no thread was free for ${options.queueTimeoutMs} ms`));
        }, options.queueTimeoutMs);
        task.queueTimer.unref();
      }
      this.#lanes[lane].push(task);
      this.#dispatch();
    });
  }

  /** Rejects every waiting task, terminates every thread (running tasks reject too). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const lane of [this.#lanes.interactive, this.#lanes.background]) {
      for (const task of lane.splice(0)) {
        if (task.queueTimer) clearTimeout(task.queueTimer);
        task.reject(shuttingDown(this.name));
      }
    }
    await Promise.all([...this.#slots].map((slot) => this.#retire(slot, shuttingDown(this.name))));
  }

  #dispatch(): void {
    while (this.#lanes.interactive.length + this.#lanes.background.length > 0) {
      const slot = this.#freeSlot();
      if (!slot) return;
      const task = (this.#lanes.interactive.shift() ?? this.#lanes.background.shift())!;
      if (task.queueTimer) clearTimeout(task.queueTimer);
      this.#send(slot, task);
    }
  }

  /** An idle thread, else a new one while below size, else the least loaded thread with room in its pipeline. */
  #freeSlot(): Slot | null {
    const idle = this.#slots.find((s) => s.tasks.length === 0);
    if (idle) return idle;
    if (this.#slots.length < this.size) return this.#spawn();
    let best: Slot | null = null;
    for (const slot of this.#slots) {
      if (slot.tasks.length < this.#options.pipeline && (!best || slot.tasks.length < best.tasks.length)) best = slot;
    }
    return best;
  }

  #spawn(): Slot {
    const worker = new Worker(this.#options.file, {
      workerData: this.#options.workerData,
      resourceLimits: { maxOldGenerationSizeMb: this.#options.heapMb },
    });
    // Idle threads never keep the process alive; busy ones do (a caller awaits their result).
    worker.unref();
    const slot: Slot = { worker, tasks: [], timer: null };
    worker.on('message', (reply: TaskReply) => this.#settle(slot, reply));
    worker.on('error', (error) => void this.#retire(slot, crashed(this.name, error)));
    worker.on('exit', (code) => void this.#retire(slot, crashed(this.name, new Error(`exited with code ${code}`))));
    this.#slots.push(slot);
    return slot;
  }

  #send(slot: Slot, task: Task): void {
    slot.tasks.push(task);
    if (slot.tasks.length === 1) {
      slot.worker.ref();
      this.#arm(slot);
    }
    try {
      slot.worker.postMessage({ id: task.id, op: task.op, input: task.input }, task.options.transfer ?? []);
    } catch (error) {
      void this.#retire(slot, error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Starts the time limit of the slot's first task. A task queued in the thread starts when the one before it ends,
   * a moment before its result reaches this thread: its limit is counted from then, so it is never shorter.
   */
  #arm(slot: Slot): void {
    const task = slot.tasks[0];
    if (!task) return;
    slot.timer = setTimeout(() => void this.#retire(slot, task.options.onTimeout()), task.options.timeoutMs);
    slot.timer.unref();
  }

  #settle(slot: Slot, reply: TaskReply): void {
    const task = slot.tasks[0];
    if (!task || task.id !== reply.id) return;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.tasks.shift();
    if (slot.tasks.length === 0) slot.worker.unref();
    this.#arm(slot);
    if (reply.ok) task.resolve(reply.value);
    else task.reject(deserializeError(reply.error));
    this.#dispatch();
  }

  /**
   * Removes the slot and terminates its thread; its running task (if any) rejects with `error`; the tasks queued
   * behind it in the thread go back to the front of their lanes (they did not start), waiting tasks go on.
   */
  async #retire(slot: Slot, error: Error): Promise<void> {
    const at = this.#slots.indexOf(slot);
    if (at < 0) return;
    this.#slots.splice(at, 1);
    if (slot.timer) clearTimeout(slot.timer);
    const [running, ...queued] = slot.tasks.splice(0);
    running?.reject(error);
    for (const task of queued.reverse()) {
      // Buffers moved to the dead thread are gone: such a task cannot be sent again.
      if (this.#closed || task.options.transfer?.length) task.reject(error);
      else this.#lanes[task.options.lane ?? 'interactive'].unshift(task);
    }
    slot.worker.removeAllListeners('message');
    // Late events of a terminated thread must not throw (an 'error' without a listener would).
    slot.worker.removeAllListeners('error').on('error', () => undefined);
    slot.worker.removeAllListeners('exit');
    if (!this.#closed) this.#dispatch();
    await slot.worker.terminate();
  }
}

function busy(name: string, why: string): AppError {
  return new AppError('SERVER_BUSY', `kbql is busy: the ${name} pool is full (${why}). Retry shortly.`, { retryAfter: 1, pool: name });
}

function shuttingDown(name: string): AppError {
  return new AppError('UPSTREAM_UNAVAILABLE', `The ${name} worker pool is shut down (the server is stopping).`, {
    reason: 'SHUTTING_DOWN',
  });
}

/** A thread that died under a task (heap limit, native crash). */
export class WorkerCrashError extends Error {
  override readonly name = 'WorkerCrashError';
}

function crashed(name: string, cause: Error): WorkerCrashError {
  return new WorkerCrashError(`A ${name} worker thread stopped: ${cause.message}`, { cause });
}

/** The inverse of `serializeError` (`serve-tasks.ts`): an AppError again, or a plain Error with the message. */
export function deserializeError(error: SerializedError): Error {
  if (error.code) return new AppError(error.code as AppError['code'], error.message, (error.details ?? {}) as AppError['details']);
  return new Error(error.message);
}
