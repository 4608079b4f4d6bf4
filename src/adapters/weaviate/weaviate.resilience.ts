/**
 * The Weaviate store's side of the shared resilience policy (`createResiliencePolicy`): which weaviate-client
 * failures are transient, and how a failed call maps to UPSTREAM_TIMEOUT, UPSTREAM_UNAVAILABLE or INTERNAL_SERVER_ERROR.
 */
import { AppError, isAppError } from '../../errors';
import type { CircuitStateName } from '../resilience/circuit-state';
import {
  createResiliencePolicy,
  isCircuitOpenError,
  isTimeoutError,
  type ExecuteOptions,
  type ResiliencePolicy,
} from '../resilience/resilience-policy';
import { causeChain, hasNetworkFailureCause } from '../resilience/transient-errors';
import { clientGrpcAttempts } from './weaviate.client-internals';

/** How calls to a networked dependency are bounded, retried and cut off. Times in milliseconds. */
export interface ResilienceOptions {
  /** Dependency name for error details and messages. @default 'weaviate' */
  dependency?: string;
  /** Where the dependency lives, named in error messages (never a secret: pass the URL without credentials). */
  target: string;
  /** Bound of one attempt. @default 10000 */
  timeoutMs?: number;
  /** Retries after the first attempt, on transient errors only. @default 2 */
  retries?: number;
  /** First retry delay; doubles each retry (with jitter). @default 100 */
  retryInitialDelayMs?: number;
  /** Largest retry delay. @default 2000 */
  retryMaxDelayMs?: number;
  /** Consecutive failed attempts (transient errors or timeouts) that open the circuit. @default 5 */
  breakerThreshold?: number;
  /** How long an open circuit fails fast before letting one trial call through. @default 10000 */
  breakerHalfOpenAfterMs?: number;
}

/** How one call goes through the policies (see {@link ExecuteOptions}); the caller's signal is not used here. */
export type RunOptions = Omit<ExecuteOptions, 'signal'>;

export type BreakerState = CircuitStateName;

/** gRPC's words for a server that is down or too slow (weaviate-client searches over gRPC). */
const GRPC_TRANSIENT = /\b(UNAVAILABLE|DEADLINE_EXCEEDED)\b/;

/** The `reason` of an UPSTREAM_UNAVAILABLE that says Weaviate refused kbql's credentials. */
export type WeaviateAuthReason = 'WEAVIATE_UNAUTHENTICATED' | 'WEAVIATE_FORBIDDEN';

/**
 * Weaviate refused kbql's credentials: a REST 401 (`WeaviateUnauthenticatedError`, no status code on it) or 403, gRPC
 * UNAUTHENTICATED / PERMISSION_DENIED (which the client passes on as status text inside `WeaviateQueryError`,
 * `WeaviateBatchError` …), or either wrapped in a `WeaviateStartUpError` while connecting. Null otherwise.
 */
export function authFailureOf(error: unknown): WeaviateAuthReason | null {
  for (const e of causeChain(error)) {
    if (!e.name.startsWith('Weaviate')) continue;
    const code = (e as { code?: unknown }).code;
    if (e.name === 'WeaviateUnauthenticatedError' || (e.name === 'WeaviateUnexpectedStatusCodeError' && code === 401)) {
      return 'WEAVIATE_UNAUTHENTICATED';
    }
    if (e.name === 'WeaviateInsufficientPermissionsError' || (e.name === 'WeaviateUnexpectedStatusCodeError' && code === 403)) {
      return 'WEAVIATE_FORBIDDEN';
    }
    if (/\bUNAUTHENTICATED\b|\bUnauthenticated: /.test(e.message)) return 'WEAVIATE_UNAUTHENTICATED';
    if (/\bPERMISSION_DENIED\b|\bForbidden: /.test(e.message)) return 'WEAVIATE_FORBIDDEN';
  }
  return null;
}

/**
 * True for failures that say Weaviate is down or failing: connection refused/reset, HTTP 5xx, gRPC UNAVAILABLE /
 * DEADLINE_EXCEEDED, the client's own request timeout, and start-up (connect) failures. Never for refused
 * credentials, 4xx, gRPC INTERNAL, validation or kbql's own errors. The circuit breaker counts these.
 */
export function isTransientError(error: unknown): boolean {
  if (isAppError(error) || isTimeoutError(error) || isCircuitOpenError(error)) return false;
  if (!(error instanceof Error)) return false;
  if (authFailureOf(error)) return false;
  const status = statusOf(error);
  if (status !== null) return status >= 500;
  if (['WeaviateRequestTimeoutError', 'WeaviateGRPCUnavailableError', 'WeaviateStartUpError'].includes(error.name)) {
    return true;
  }
  // A Weaviate started next to kbql (Compose, Kubernetes) is not resolvable until it runs: DNS failures count.
  return hasNetworkFailureCause(error, { dnsFailure: true, message: GRPC_TRANSIENT });
}

/**
 * True when weaviate-client has already retried this failure itself: gRPC UNAVAILABLE from a search, aggregate,
 * batch insert or tenants get (its `retryOptions`, up to 5 retries in 3.12.1). Batch delete and REST calls are
 * not retried by the client.
 */
export function isRetriedByClient(error: unknown): boolean {
  if (!(error instanceof Error) || clientGrpcAttempts() === 1) return false;
  const retriedCall = ['WeaviateQueryError', 'WeaviateBatchError', 'WeaviateTenantsGetError'].includes(error.name);
  return retriedCall && /\bUNAVAILABLE\b/.test(error.message);
}

/** Failures kbql's own retry layer retries: transient ones the client has not already retried. */
export function isRetryableError(error: unknown): boolean {
  return isTransientError(error) && !isRetriedByClient(error);
}

/** The HTTP status of a weaviate-client REST error, or null. */
export function statusOf(error: unknown): number | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  if (error.name === 'WeaviateUnauthenticatedError') return 401;
  if (typeof code !== 'number') return null;
  if (error.name === 'WeaviateUnexpectedStatusCodeError' || error.name === 'WeaviateInsufficientPermissionsError') {
    return code === 7 ? 403 : code; // the gRPC permission error carries status 7
  }
  return null;
}

/**
 * True when the cause chain of `error` says Weaviate refused because the thing already exists (an object id or a
 * collection: "already exists"; a property: "already in use").
 */
export function isAlreadyExists(error: unknown): boolean {
  return causeChain(error).some((e) => /already exists?|already in use/i.test(e.message));
}

/**
 * Timeout + retry (transient errors only, exponential backoff) + circuit breaker around every call to a dependency
 * (see `createResiliencePolicy`). Failures come out as {@link AppError}: UPSTREAM_TIMEOUT when an attempt exceeds
 * its bound, UPSTREAM_UNAVAILABLE when the dependency is unreachable, answers 5xx or the circuit is open (then
 * without calling it), INTERNAL_SERVER_ERROR for anything else it rejects (the raw error is the `cause`). One
 * instance per dependency: the breaker state is shared by every call made through it.
 */
export class Resilience {
  private readonly dependency: string;
  private readonly target: string;
  private readonly policy: ResiliencePolicy;

  constructor(options: ResilienceOptions) {
    this.dependency = options.dependency ?? 'weaviate';
    this.target = options.target;
    this.policy = createResiliencePolicy({
      // Not what the client already retried itself: its retries and these would multiply.
      isTransient: isRetryableError,
      // A timed-out attempt is not retried, but it counts towards opening the circuit.
      isFailure: (e) => isTransientError(e) || isTimeoutError(e),
      timeoutMs: options.timeoutMs ?? 10_000,
      retries: options.retries ?? 2,
      backoff: { initialDelayMs: options.retryInitialDelayMs ?? 100, maxDelayMs: options.retryMaxDelayMs ?? 2_000 },
      breaker: { threshold: options.breakerThreshold ?? 5, halfOpenAfterMs: options.breakerHalfOpenAfterMs ?? 10_000 },
    });
  }

  get state(): BreakerState {
    return this.policy.state;
  }

  /** Runs `fn` under the policies; `operation` names it in errors. `signal` aborts when the bound is hit. */
  async run<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>, options: RunOptions = {}): Promise<T> {
    const ms = options.timeoutMs ?? this.policy.timeoutMs!;
    try {
      return await this.policy.execute(fn, options);
    } catch (error) {
      throw this.toAppError(operation, error, ms);
    }
  }

  private toAppError(operation: string, error: unknown, ms: number): AppError {
    if (isAppError(error)) return error;
    const details = { dependency: this.dependency, operation };
    const name = this.dependency.charAt(0).toUpperCase() + this.dependency.slice(1);
    if (isTimeoutError(error)) {
      return new AppError(
        'UPSTREAM_TIMEOUT',
        `${name} at ${this.target} did not answer ${operation} within ${ms} ms.`,
        { ...details, timeoutMs: ms },
        { cause: error },
      );
    }
    if (isCircuitOpenError(error)) {
      return new AppError(
        'UPSTREAM_UNAVAILABLE',
        `${name} at ${this.target} is unavailable (circuit open after ${this.policy.breakerThreshold} consecutive failures); not calling it for ${operation}.`,
        { ...details, circuit: 'open' },
        { cause: error },
      );
    }
    const auth = authFailureOf(error);
    if (auth) {
      const what =
        auth === 'WEAVIATE_UNAUTHENTICATED' ? `rejected kbql's credentials (check the API key)` : `denied kbql's credentials permission`;
      return new AppError(
        'UPSTREAM_UNAVAILABLE',
        `${name} at ${this.target} ${what} during ${operation}.`,
        { ...details, reason: auth },
        { cause: error },
      );
    }
    const reason = reasonOf(error);
    if (isTransientError(error)) {
      return new AppError(
        'UPSTREAM_UNAVAILABLE',
        `${name} at ${this.target} is unreachable or failing (${reason}) during ${operation}.`,
        { ...details, reason },
        { cause: error },
      );
    }
    // A rejection kbql did not expect (it validates its input first): the raw error stays in `cause` for the logs,
    // out of the client-visible message.
    return new AppError('INTERNAL_SERVER_ERROR', `${name} rejected ${operation} (${reason}).`, { ...details, reason }, { cause: error });
  }
}

/** A short, non-sensitive reason: an HTTP status, a gRPC status name, an errno code or the error class. */
export function reasonOf(error: unknown): string {
  if (isCircuitOpenError(error)) return 'circuit open';
  if (isTimeoutError(error)) return 'timed out';
  const status = statusOf(error);
  if (status !== null) return `HTTP ${status}`;
  const chain = causeChain(error);
  for (const e of chain) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return code;
  }
  for (const e of chain) {
    const token =
      /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|UNAVAILABLE|DEADLINE_EXCEEDED|INVALID_ARGUMENT|NOT_FOUND|ALREADY_EXISTS|PERMISSION_DENIED|UNAUTHENTICATED|RESOURCE_EXHAUSTED|INTERNAL|UNKNOWN)\b|fetch failed|socket hang up|timed out/.exec(
        e.message,
      );
    if (token) return token[1] ?? token[0];
  }
  return error instanceof Error ? error.name : 'unknown error';
}
