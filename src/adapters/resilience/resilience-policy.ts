import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TaskCancelledError,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  noop,
  retry,
  timeout,
  wrap,
  type IPolicy,
} from 'cockatiel';
import { circuitStateName, type CircuitStateName } from './circuit-state';

/** Waits between retries: exponential, with jitter (cockatiel's decorrelated jitter). */
export interface BackoffOptions {
  /**
   * Delay before the first retry, in milliseconds; it doubles with each further retry.
   * @default 100
   */
  initialDelayMs?: number;
  /**
   * Largest delay between two attempts, in milliseconds.
   * @default 2000
   */
  maxDelayMs?: number;
}

/** A circuit breaker that counts consecutive failed calls. */
export interface BreakerOptions {
  /**
   * Consecutive failed calls (as `isFailure` sees them) that open the circuit. While it is open every call fails at
   * once with a circuit-open error (see {@link isCircuitOpenError}) without running.
   * @default 5
   */
  threshold?: number;
  /**
   * How long an open circuit fails fast before one trial call goes through, in milliseconds: its success closes the
   * circuit, its failure opens it again.
   * @default 10000
   */
  halfOpenAfterMs?: number;
}

/**
 * One dependency's policy: which failures are worth another attempt and which say the dependency is down; what the
 * adapter does with the errors that come out (its AppError codes) stays the adapter's.
 */
export interface ResiliencePolicyOptions {
  /** Failures another attempt may cure: only these are retried. */
  isTransient: (error: unknown) => boolean;
  /**
   * Failures the breaker counts towards opening the circuit; any other outcome, a success included, resets the count.
   * @default isTransient
   */
  isFailure?: (error: unknown) => boolean;
  /**
   * Retries after the first attempt, for transient failures only; 0 turns retrying off.
   * @default 2
   */
  retries?: number;
  /** Delays between retries. @default { initialDelayMs: 100, maxDelayMs: 2000 } */
  backoff?: BackoffOptions;
  /** The circuit breaker. @default { threshold: 5, halfOpenAfterMs: 10000 } */
  breaker?: BreakerOptions;
  /**
   * Bound of one attempt, in milliseconds: past it the attempt's signal aborts and the attempt fails at once with a
   * timeout error (see {@link isTimeoutError}), which is not transient unless `isTransient` says so. Without it
   * attempts are not bounded here (the adapter bounds them itself).
   * @default none
   */
  timeoutMs?: number;
}

/** How one call goes through the policy. */
export interface ExecuteOptions {
  /** The caller's signal: aborting it aborts the attempt's signal and stops further retries. */
  signal?: AbortSignal;
  /** Bound of this call in milliseconds, instead of the policy's `timeoutMs`. */
  timeoutMs?: number;
  /**
   * What the bound covers: each `attempt`, or the `total` of all attempts and the waits between them (for
   * connecting, where the breaker usually stays out of it).
   * @default 'attempt'
   */
  timeoutScope?: 'attempt' | 'total';
  /** Retry transient failures. @default true */
  retry?: boolean;
  /** Retries for this call instead of the policy's `retries`. */
  retries?: number;
  /** Go through the circuit breaker: count the outcome, fail fast while it is open. @default true */
  breaker?: boolean;
}

/** Timeout, retry with backoff and circuit breaker around the calls to one dependency; see {@link createResiliencePolicy}. */
export interface ResiliencePolicy {
  /** The breaker's state: `closed` (calls go through), `open` (failing fast), `half-open` (one trial call). */
  readonly state: CircuitStateName;
  /** The policy's bound of one attempt in milliseconds, if it has one. */
  readonly timeoutMs: number | undefined;
  /** Consecutive failures that open the circuit. */
  readonly breakerThreshold: number;
  /** How long the open circuit fails fast, in milliseconds. */
  readonly breakerHalfOpenAfterMs: number;
  /**
   * Runs `fn` under the policy and returns its result, or throws: the last failure of `fn` itself, a timeout error
   * ({@link isTimeoutError}) or a circuit-open error ({@link isCircuitOpenError}). `fn` gets the attempt's signal.
   */
  execute<T>(fn: (signal: AbortSignal) => Promise<T>, options?: ExecuteOptions): Promise<T>;
}

/**
 * The one place kbql builds retry, backoff, timeout and circuit-breaker policies (on cockatiel) for a networked
 * dependency: the Weaviate store, the embedding providers and the LLM synthesizer. Create one per dependency and
 * share it: the breaker's count and state belong to the instance. Throws RangeError for an invalid option.
 */
export function createResiliencePolicy(options: ResiliencePolicyOptions): ResiliencePolicy {
  const retries = options.retries ?? 2;
  if (!Number.isInteger(retries) || retries < 0) throw new RangeError('retries must be a non-negative integer');
  const timeoutMs = options.timeoutMs === undefined ? undefined : positive(options.timeoutMs, 'timeoutMs');
  const backoff = {
    initialDelay: positive(options.backoff?.initialDelayMs ?? 100, 'backoff.initialDelayMs'),
    maxDelay: positive(options.backoff?.maxDelayMs ?? 2_000, 'backoff.maxDelayMs'),
  };
  const threshold = positiveInteger(options.breaker?.threshold ?? 5, 'breaker.threshold');
  const halfOpenAfterMs = positive(options.breaker?.halfOpenAfterMs ?? 10_000, 'breaker.halfOpenAfterMs');
  const isTransient = options.isTransient;
  const retryPolicy = (n: number): IPolicy =>
    n === 0 ? noop : retry(handleWhen(isTransient), { maxAttempts: n, backoff: new ExponentialBackoff(backoff) });
  const defaultRetry = retryPolicy(retries);
  const breaker = circuitBreaker(handleWhen(options.isFailure ?? isTransient), {
    halfOpenAfter: halfOpenAfterMs,
    breaker: new ConsecutiveBreaker(threshold),
  });

  return {
    get state() {
      return circuitStateName(breaker.state);
    },
    timeoutMs,
    breakerThreshold: threshold,
    breakerHalfOpenAfterMs: halfOpenAfterMs,
    async execute<T>(fn: (signal: AbortSignal) => Promise<T>, call: ExecuteOptions = {}): Promise<T> {
      const retrying = call.retry === false ? null : call.retries !== undefined ? retryPolicy(call.retries) : defaultRetry;
      const breaking = call.breaker === false ? null : breaker;
      const ms = call.timeoutMs ?? timeoutMs;
      const bound = ms === undefined ? null : timeout(ms, TimeoutStrategy.Aggressive);
      const layers = call.timeoutScope === 'total' ? [bound, retrying, breaking] : [retrying, breaking, bound];
      return compose(layers).execute(({ signal }) => fn(signal), call.signal);
    },
  };
}

/** True for the error a policy throws when its bound elapsed (cockatiel's TaskCancelledError). */
export function isTimeoutError(error: unknown): boolean {
  return error instanceof TaskCancelledError;
}

/** True for the error a policy throws, without running the call, while its circuit is open. */
export function isCircuitOpenError(error: unknown): boolean {
  return error instanceof BrokenCircuitError;
}

/** The layers in order, outermost first; the absent ones left out. */
function compose(layers: readonly (IPolicy | null)[]): IPolicy {
  const present = layers.filter((p): p is IPolicy => p !== null);
  if (present.length === 0) return noop;
  return present.length === 1 ? present[0]! : wrap(...present);
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${value}`);
  return value;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
