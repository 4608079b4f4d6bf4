import type { WorkPriority } from '../../ports/document-processor.port';
import { deserializeError, type Settled } from './worker-pool';

/**
 * Small inputs gathered into tasks of several: the calls made in one turn of the event loop (a request's documents,
 * as their previous step ends together) share one task per lane, up to `maxInputs` inputs or `maxChars` characters.
 * Each input still settles on its own: its result, or its own error. A batch's time limit is that of one task:
 * inputs this small take well under a millisecond each.
 */
export class SmallTasks<I, O> {
  readonly #waiting: Record<WorkPriority, { input: I; resolve: (value: O) => void; reject: (error: Error) => void }[]> = {
    interactive: [],
    background: [],
  };
  readonly #chars: Record<WorkPriority, number> = { interactive: 0, background: 0 };
  readonly #scheduled: Record<WorkPriority, boolean> = { interactive: false, background: false };

  /**
   * @param runBatch runs one task over several inputs: one outcome per input, in order.
   * @param maxInputs most inputs in one task. @default 16
   * @param maxChars most characters (as callers count them) in one task. @default 65536
   */
  constructor(
    private readonly runBatch: (inputs: I[], priority: WorkPriority) => Promise<Settled<O>[]>,
    private readonly maxInputs = 16,
    private readonly maxChars = 64 * 1024,
  ) {}

  run(input: I, chars: number, priority: WorkPriority): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#waiting[priority].push({ input, resolve, reject });
      this.#chars[priority] += chars;
      if (this.#waiting[priority].length >= this.maxInputs || this.#chars[priority] >= this.maxChars) this.#flush(priority);
      else if (!this.#scheduled[priority]) {
        this.#scheduled[priority] = true;
        setImmediate(() => this.#flush(priority));
      }
    });
  }

  #flush(priority: WorkPriority): void {
    this.#scheduled[priority] = false;
    const batch = this.#waiting[priority].splice(0);
    this.#chars[priority] = 0;
    if (batch.length === 0) return;
    this.runBatch(
      batch.map((item) => item.input),
      priority,
    ).then(
      (settled) =>
        batch.forEach((item, i) => {
          const outcome = settled[i];
          if (outcome?.ok) item.resolve(outcome.value);
          else item.reject(outcome ? deserializeError(outcome.error) : new Error('the thread answered fewer results than inputs'));
        }),
      (error: unknown) => batch.forEach((item) => item.reject(error instanceof Error ? error : new Error(String(error)))),
    );
  }
}
