import { AsyncLocalStorage } from 'node:async_hooks';
import { ROOT_CONTEXT, trace, type Context, type ContextManager } from '@opentelemetry/api';

type Fn = (...args: never[]) => unknown;

/**
 * OpenTelemetry's active context, carried across `await` only while a trace is being recorded.
 *
 * OpenTelemetry's own manager keeps an AsyncLocalStorage entered for every request. On Node 20 an entered
 * AsyncLocalStorage makes every promise of the process run async hooks (init, before, after), recorded or not: 13% of
 * kbql's HTTP throughput, for requests the sampler left out. This manager carries a context across `await` only when
 * it holds a recording span (or replaces one inside a recorded scope), counts the recorded scopes still open, and
 * switches the storage off when the last one settles: while nothing is recorded, promises run without hooks.
 *
 * What it gives up: a context without a recording span is active only for the synchronous part of `with` (the HTTP
 * layer hands its span to the GraphQL plugin explicitly instead), and work a recorded scope leaves running after it
 * settles may lose its parent (its spans are then not started; see `insideRecordedSpan`).
 */
export class RecordedContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  /** Recorded scopes entered by {@link with} whose result has not settled yet. */
  private open = 0;
  /** Whether the storage is on (async hooks run for every promise). */
  private on = false;
  /** A context made active by {@link with} without the storage: for the synchronous part of its call only. */
  private current: Context | undefined;

  active(): Context {
    return this.current ?? this.storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const call = thisArg === undefined ? fn : (fn.bind(thisArg) as F);
    const outer = this.current;
    if (this.storage.getStore() === undefined && !trace.getSpan(context)?.isRecording()) {
      // Nothing recorded here or around: active while `fn` runs synchronously, not carried past an `await`.
      this.current = context;
      try {
        return call(...args);
      } finally {
        this.current = outer;
      }
    }
    this.open++;
    this.on = true;
    this.current = undefined;
    let result: ReturnType<F>;
    try {
      result = this.storage.run(context, call, ...args);
    } catch (error) {
      this.settled();
      throw error;
    } finally {
      this.current = outer;
    }
    if (result instanceof Promise) {
      const settled = () => this.settled();
      // A reaction of the manager's own; the caller gets its promise back untouched.
      result.then(settled, settled);
    } else {
      this.settled();
    }
    return result;
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the wrapper needs both `this`es
    const manager = this;
    const fn = target as unknown as Fn;
    return function (this: unknown, ...args: never[]) {
      return manager.with(context, fn, this as never, ...args);
    } as unknown as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.open = 0;
    this.off();
    return this;
  }

  /** Recorded scopes still open. */
  get openScopes(): number {
    return this.open;
  }

  /** Whether contexts are being carried across `await` now (and every promise pays for it). */
  get carrying(): boolean {
    return this.on;
  }

  private settled(): void {
    if (--this.open === 0) this.off();
  }

  private off(): void {
    this.on = false;
    this.storage.disable();
  }
}
