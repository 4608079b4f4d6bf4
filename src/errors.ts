/**
 * The one error-code registry. The domain throws {@link AppError}; `graphql/format-error.ts` maps it to
 * `extensions.code` (and an HTTP status where the transport uses one). No GraphQL imports here.
 */
export const ERROR_CODES = {
  UNAUTHENTICATED: { status: 401, message: 'Authentication is required.' },
  FORBIDDEN: { status: 403, message: 'You are not allowed to do this.' },
  BAD_USER_INPUT: { status: 400, message: 'The input is not valid.' },
  QUERY_TOO_COMPLEX: { status: 400, message: 'The operation is too expensive (cost, aliases or size); split it up.' },
  QUERY_TOO_DEEP: { status: 400, message: 'The operation nests too deeply.' },
  NOT_FOUND: { status: 404, message: 'Nothing was found with that identifier.' },
  CONFLICT: { status: 409, message: 'The request conflicts with the current state.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry later.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request or one of its parts is too large.' },
  SERVER_BUSY: { status: 503, message: 'kbql is busy; retry shortly.' },
  UPSTREAM_UNAVAILABLE: { status: 503, message: 'A service kbql depends on is unavailable.' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'A service kbql depends on did not answer in time.' },
  STORAGE_UNAVAILABLE: {
    status: 503,
    message: 'The data directory cannot be written (disk full or read-only); nothing was changed. Retry once space returns.',
  },
  INTERNAL_SERVER_ERROR: { status: 500, message: 'Something went wrong on our side.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Details that travel to the client in `extensions` (never secrets, never document text). */
export type ErrorDetails = Record<string, string | number | boolean | null | readonly string[] | readonly number[]>;

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details: ErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message ?? ERROR_CODES[code].message, options);
    this.status = ERROR_CODES[code].status;
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;

/** Shorthands for the codes the domain throws most. */
export const badInput = (message: string, details?: ErrorDetails): AppError => new AppError('BAD_USER_INPUT', message, details);
export const notFound = (what: string, id: string): AppError =>
  new AppError('NOT_FOUND', `${what} "${id}" was not found.`, { kind: what, id });
