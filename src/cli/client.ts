import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';

/** Exit codes of the `kbql` CLI. */
export const EXIT = {
  OK: 0,
  /** The request failed: server unreachable, HTTP or GraphQL error, unknown collection… */
  ERROR: 1,
  /** Bad command line (unknown option, missing argument). */
  USAGE: 2,
  /** `kbql ingest` finished, but some documents FAILED. */
  PARTIAL: 3,
} as const;

/** An error the CLI reports as one `kbql: …` line and an exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.ERROR,
    /** `extensions.code` of the first GraphQL error, or `HTTP_<status>`, or `UNREACHABLE` / `TIMEOUT`. */
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** The GraphQL endpoint; a bare origin gets `/graphql` appended. */
  url: string;
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /**
   * Time allowed for one request, in ms.
   * @default 120000
   */
  timeoutMs?: number;
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: unknown } }[];
}

/** A GraphQL client over `fetch` for the generated typed documents: variables and results are typed by the document. */
export class KbqlClient {
  readonly url: string;
  private readonly printed = new WeakMap<object, string>();

  constructor(private readonly options: ClientOptions) {
    this.url = normaliseUrl(options.url);
  }

  async request<TResult, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
  ): Promise<TResult> {
    let query = this.printed.get(document);
    if (query === undefined) {
      query = print(document);
      this.printed.set(document, query);
    }
    const timeoutMs = this.options.timeoutMs ?? 120_000;
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === 'TimeoutError') {
        throw new CliError(`no answer from ${this.url} within ${timeoutMs} ms`, EXIT.ERROR, 'TIMEOUT');
      }
      throw new CliError(`cannot reach ${this.url}: ${describeFetchError(error)}`, EXIT.ERROR, 'UNREACHABLE');
    }
    const text = await response.text();
    let body: GraphQLResponse<TResult>;
    try {
      body = JSON.parse(text) as GraphQLResponse<TResult>;
    } catch {
      throw new CliError(`${this.url} answered HTTP ${response.status} without a GraphQL response`, EXIT.ERROR, `HTTP_${response.status}`);
    }
    const first = body.errors?.[0];
    if (first) {
      const code = typeof first.extensions?.code === 'string' ? first.extensions.code : `HTTP_${response.status}`;
      throw new CliError(`${code}: ${first.message}`, EXIT.ERROR, code);
    }
    if (!response.ok || body.data == null) {
      throw new CliError(`${this.url} answered HTTP ${response.status} without data`, EXIT.ERROR, `HTTP_${response.status}`);
    }
    return body.data;
  }
}

function normaliseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`--url must be an http(s) URL, got "${raw}"`, EXIT.USAGE);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`--url must be an http(s) URL, got "${raw}"`, EXIT.USAGE);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/graphql';
  return url.href;
}

/** fetch() says "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND…) is in its cause. */
function describeFetchError(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}
