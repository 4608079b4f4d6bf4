/**
 * Two parts of weaviate-client 3.12 that its package does not export: its error classes, so kbql (and the test fake)
 * recognise and throw the very classes the client throws, and the module-level gRPC retry options its search,
 * aggregate, batch-insert and tenant calls spread into every request. Both are loaded from the client's CommonJS
 * build by absolute path (the `exports` map only blocks bare deep imports), so they are the module instances the
 * client itself uses.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

const load = createRequire(__filename);
const clientDir = path.dirname(load.resolve('weaviate-client'));

type ErrorOf<A extends unknown[]> = new (...args: A) => Error;

/** The client's error classes (dist/node/cjs/errors.js), by the constructor arguments they take. */
export interface WeaviateClientErrors {
  /** A failed gRPC search or aggregate: "Query call with protocol gRPC failed with message: <path> <STATUS>: <details>". */
  WeaviateQueryError: ErrorOf<[message: string, protocol: 'gRPC' | 'GraphQL']>;
  /** A failed gRPC batch insert: "Batch objects insert failed with message: …". */
  WeaviateBatchError: ErrorOf<[message: string]>;
  /** A failed gRPC batch delete: "Delete many failed with message: …". */
  WeaviateDeleteManyError: ErrorOf<[message: string]>;
  /** A failed gRPC tenants get. */
  WeaviateTenantsGetError: ErrorOf<[message: string]>;
  /** A REST answer >= 400 other than 401 and 403; carries `code`. */
  WeaviateUnexpectedStatusCodeError: new (code: number, message: string) => Error & { code: number };
  /** A REST 401 (no status code on it). */
  WeaviateUnauthenticatedError: ErrorOf<[message: string]>;
  /** A REST 403 (`code` 403), or gRPC PERMISSION_DENIED where the client recognises it (`code` 7). */
  WeaviateInsufficientPermissionsError: new (code: number, message: string) => Error & { code: number };
  /** The client's own per-call timeout. */
  WeaviateRequestTimeoutError: ErrorOf<[message: string]>;
  /** Any failure while connecting (connectToCustom), wrapping the cause's message. */
  WeaviateStartUpError: ErrorOf<[message: string]>;
  /** The gRPC health check at connect did not answer SERVING. */
  WeaviateGRPCUnavailableError: ErrorOf<[address: string]>;
}

/** weaviate-client's gRPC retry options (dist/node/cjs/grpc/retry.js), a mutable object read on every call. */
export interface GrpcRetryOptions {
  retry: boolean;
  /** Retries after the first attempt (nice-grpc's retry middleware). 3.12.1: 5. */
  retryMaxAttempts: number;
  /** gRPC status codes retried. 3.12.1: [UNAVAILABLE] (14). */
  retryableStatuses: number[];
  /** Called before each retry; 3.12.1 writes it to console.warn. */
  onRetryableError?: (error: unknown, attempt: number, delayMs: number) => void;
}

export const clientErrors = load(path.join(clientDir, 'errors.js')) as WeaviateClientErrors;

export const grpcRetryOptions = (load(path.join(clientDir, 'grpc', 'retry.js')) as { retryOptions: GrpcRetryOptions }).retryOptions;

/** gRPC status UNAVAILABLE. */
export const GRPC_UNAVAILABLE = 14;

/** Requests one gRPC call the client retries makes at most while Weaviate answers UNAVAILABLE. */
export function clientGrpcAttempts(): number {
  return grpcRetryOptions.retry && grpcRetryOptions.retryableStatuses.includes(GRPC_UNAVAILABLE)
    ? 1 + grpcRetryOptions.retryMaxAttempts
    : 1;
}

/** A sink for the client's retry lines: kbql's logger instead of console.warn (which breaks JSON logs). */
export type ClientLog = (message: string, fields: Record<string, unknown>) => void;

let sink: ClientLog | null = null;

/**
 * Routes the client's gRPC retry lines to `log` (the last store to call this wins: the options are process-wide).
 * Returns a function that restores console.warn-free silence for this sink when the store closes.
 */
export function routeClientRetryLog(log: ClientLog): () => void {
  sink = log;
  grpcRetryOptions.onRetryableError = (error, attempt, delayMs) => {
    const message = error instanceof Error ? error.message : String(error);
    sink?.('weaviate gRPC call failed; weaviate-client retries it', { attempt: attempt + 1, delayMs, error: message });
  };
  return () => {
    if (sink === log) sink = null;
  };
}
