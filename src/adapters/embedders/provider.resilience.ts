/**
 * The embedding providers' side of the shared resilience policy (`createResiliencePolicy`): which provider failures
 * are transient, which say the provider is down, and the AppError of an open circuit.
 */
import { AppError, isAppError } from '../../errors';
import type { CircuitStateName } from '../resilience/circuit-state';
import { createResiliencePolicy, isCircuitOpenError, isTimeoutError, type ResiliencePolicy } from '../resilience/resilience-policy';
import { hasNetworkFailureCause, isTransientHttpStatus } from '../resilience/transient-errors';

/** How calls to a model provider (embeddings API) are retried and cut off. Times in milliseconds. */
export interface ProviderResilienceOptions {
  /** Provider name for error details and messages, e.g. `openai`. */
  provider: string;
  /**
   * Retries after the first attempt, on transient failures only (connection refused/reset, HTTP 408/429/5xx).
   * @default 2
   */
  retries?: number;
  /**
   * First retry delay; doubles each retry, with jitter.
   * @default 200
   */
  retryInitialDelayMs?: number;
  /**
   * Largest retry delay.
   * @default 2000
   */
  retryMaxDelayMs?: number;
  /**
   * Consecutive failed attempts (transient failures or timeouts) that open the circuit; while it is open, calls fail
   * at once with UPSTREAM_UNAVAILABLE instead of waiting on a provider that is down.
   * @default 5
   */
  breakerThreshold?: number;
  /**
   * How long an open circuit fails fast before one trial call goes through (success closes it, failure re-opens it).
   * @default 10000
   */
  breakerHalfOpenAfterMs?: number;
}

export type ProviderCircuitState = CircuitStateName;

/** The HTTP status a provider client error carries (OpenAI's `status`, Ollama's `status_code`), or null. */
export function providerStatusOf(error: unknown): number | null {
  const { status: s1, status_code: s2 } = (error ?? {}) as { status?: unknown; status_code?: unknown };
  return typeof s1 === 'number' ? s1 : typeof s2 === 'number' ? s2 : null;
}

/**
 * True for failures another attempt may cure: HTTP 408, 429 and 5xx, refused or reset connections, the client's own
 * connection/timeout errors. Never for other 4xx (a wrong key or model stays wrong), malformed answers (kbql's own
 * AppErrors) or the caller's abort.
 */
export function isTransientProviderError(error: unknown): boolean {
  if (isAppError(error) || isCircuitOpenError(error)) return false;
  if (isTimeoutError(error)) return true;
  const status = providerStatusOf(error);
  if (status !== null) return isTransientHttpStatus(status);
  if (!(error instanceof Error)) return false;
  if (error.name === 'AbortError' || (/abort/i.test(error.constructor.name) && !/timeout/i.test(error.constructor.name))) return false;
  if (/Connection|Timeout/.test(`${error.name} ${error.constructor.name}`)) return true;
  return hasNetworkFailureCause(error);
}

/**
 * True for a failed provider call (as the embedders report it: an AppError) that says the provider is unwell: no
 * answer within the deadline, unreachable, or HTTP 408/429/5xx after the retries. A 4xx (wrong key or model), a
 * malformed answer or the caller's abort says nothing about the provider's health and does not count.
 */
export function isProviderOutage(error: unknown): boolean {
  if (!isAppError(error)) return false;
  if (error.code === 'UPSTREAM_TIMEOUT') return true;
  if (error.code !== 'UPSTREAM_UNAVAILABLE' || error.details['circuit'] === 'open') return false;
  const status = error.details['status'];
  if (status === undefined) return false; // a malformed answer (wrong count or dimensions): the provider answered
  return status === null || (typeof status === 'number' && isTransientHttpStatus(status));
}

/**
 * Retries with exponential backoff and a circuit breaker for one model provider (see `createResiliencePolicy`). Two
 * layers, used together by the embedders:
 * - {@link withRetries} around each HTTP request: transient failures ({@link isTransientProviderError}) are retried
 *   with backoff while the caller's deadline lasts; an abort stops the backoff.
 * - {@link execute} around a whole call, deadline included: after `breakerThreshold` consecutive failed calls
 *   ({@link isProviderOutage}: timeouts count too) the circuit opens and calls fail at once with AppError
 *   UPSTREAM_UNAVAILABLE (`details.circuit: 'open'`) without touching the provider; after `breakerHalfOpenAfterMs`
 *   one trial call goes through, and its success closes the circuit again.
 * One instance per provider client: every call made through it shares the breaker.
 */
export class ProviderResilience {
  readonly #provider: string;
  readonly #policy: ResiliencePolicy;

  constructor(options: ProviderResilienceOptions) {
    this.#provider = options.provider;
    this.#policy = createResiliencePolicy({
      isTransient: isTransientProviderError,
      isFailure: isProviderOutage,
      retries: options.retries ?? 2,
      backoff: { initialDelayMs: options.retryInitialDelayMs ?? 200, maxDelayMs: options.retryMaxDelayMs ?? 2_000 },
      breaker: { threshold: options.breakerThreshold ?? 5, halfOpenAfterMs: options.breakerHalfOpenAfterMs ?? 10_000 },
    });
  }

  get state(): ProviderCircuitState {
    return this.#policy.state;
  }

  /** Runs one provider call through the breaker; throws UPSTREAM_UNAVAILABLE at once while the circuit is open. */
  async execute<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await this.#policy.execute(() => call(), { retry: false });
    } catch (error) {
      if (isCircuitOpenError(error)) {
        const { breakerThreshold, breakerHalfOpenAfterMs } = this.#policy;
        throw new AppError(
          'UPSTREAM_UNAVAILABLE',
          `Embedding provider ${this.#provider} is unavailable (circuit open after ${breakerThreshold} consecutive failed calls); ` +
            `retrying it within ${Math.ceil(breakerHalfOpenAfterMs / 1000)} s.`,
          { provider: this.#provider, circuit: 'open', status: null },
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** Runs one request, retrying transient failures with backoff until `signal` aborts; throws the last raw error. */
  withRetries<T>(signal: AbortSignal, request: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.#policy.execute(request, { breaker: false, signal });
  }
}
