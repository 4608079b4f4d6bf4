import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/** Exit codes of the `kbql` CLI. */
export const EXIT = {
  OK: 0,
  /** The request failed: server unreachable, HTTP or GraphQL error, unknown collection… */
  ERROR: 1,
  /** Bad command line (unknown option, missing argument). */
  USAGE: 2,
  /** `kbql ingest` finished, but some documents FAILED (or, for a job, were CANCELLED). */
  PARTIAL: 3,
  /** Ctrl-C while following a job: the CLI stopped following; the job goes on on the server. */
  INTERRUPTED: 130,
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
    const query = this.printOf(document);
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

  /**
   * Runs a subscription over graphql-ws (`ws(s)://<same host and path>`), yielding each event's data. Ends when the
   * server completes the stream; a GraphQL error or a closed connection throws a CliError. `signal` stops it (the
   * iterator returns, the socket is closed). The connection must be acknowledged within `timeoutMs`; events may be far
   * apart (a long job), so there is no idle limit: the caller's signal bounds the wait where that matters.
   */
  async *subscribe<TResult, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
    signal?: AbortSignal,
  ): AsyncGenerator<TResult> {
    const url = this.wsUrl;
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: this.options.token ? { authorization: `Bearer ${this.options.token}` } : {},
      retryAttempts: 0,
      lazy: true,
      connectionAckWaitTimeout: this.options.timeoutMs ?? 120_000,
    });
    const iterator = client.iterate<TResult>({ query: this.printOf(document), variables });
    const stop = () => void iterator.return?.();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      for (;;) {
        let step: IteratorResult<{ data?: TResult | null; errors?: readonly { message: string; extensions?: { code?: unknown } }[] }>;
        try {
          step = await iterator.next();
        } catch (error) {
          throw new CliError(`subscription over ${url} failed: ${describeSocketError(error)}`, EXIT.ERROR, 'UNREACHABLE');
        }
        if (step.done) return;
        const first = step.value.errors?.[0];
        if (first) {
          const code = typeof first.extensions?.code === 'string' ? first.extensions.code : 'GRAPHQL_ERROR';
          throw new CliError(`${code}: ${first.message}`, EXIT.ERROR, code);
        }
        if (step.value.data != null) yield step.value.data;
      }
    } finally {
      signal?.removeEventListener('abort', stop);
      await iterator.return?.();
      await client.dispose();
    }
  }

  /**
   * `POST /v1/uploads` on the same origin: the raw bytes, named by `X-Kbql-Filename` (percent-encoded). Resolves with
   * the upload id that startIngestion takes.
   */
  async upload(filename: string, data: Buffer): Promise<{ id: string; filename: string; bytes: number }> {
    const url = new URL('/v1/uploads', this.url).href;
    const timeoutMs = this.options.timeoutMs ?? 120_000;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'x-kbql-filename': encodeURIComponent(filename),
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
        },
        body: new Uint8Array(data),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === 'TimeoutError') {
        throw new CliError(`no answer from ${url} within ${timeoutMs} ms`, EXIT.ERROR, 'TIMEOUT');
      }
      throw new CliError(`cannot reach ${url}: ${describeFetchError(error)}`, EXIT.ERROR, 'UNREACHABLE');
    }
    const text = await response.text();
    let body: { id?: unknown; filename?: unknown; bytes?: unknown; errors?: { message: string; extensions?: { code?: unknown } }[] };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new CliError(`${url} answered HTTP ${response.status} without JSON`, EXIT.ERROR, `HTTP_${response.status}`);
    }
    const first = body.errors?.[0];
    if (!response.ok || typeof body.id !== 'string') {
      const code = typeof first?.extensions?.code === 'string' ? first.extensions.code : `HTTP_${response.status}`;
      throw new CliError(`${code}: ${first?.message ?? `upload answered HTTP ${response.status}`}`, EXIT.ERROR, code);
    }
    return {
      id: body.id,
      filename: typeof body.filename === 'string' ? body.filename : filename,
      bytes: Number(body.bytes ?? data.length),
    };
  }

  /** The graphql-ws endpoint: the GraphQL URL with ws: / wss:. */
  get wsUrl(): string {
    return this.url.replace(/^http/, 'ws');
  }

  private printOf(document: object): string {
    let query = this.printed.get(document);
    if (query === undefined) {
      query = print(document as Parameters<typeof print>[0]);
      this.printed.set(document, query);
    }
    return query;
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
/** graphql-ws rejects with a CloseEvent-like object (code, reason) or an Error. */
function describeSocketError(error: unknown): string {
  if (error instanceof Error) return describeFetchError(error);
  const close = error as { code?: unknown; reason?: unknown; message?: unknown } | null;
  if (close && typeof close.code === 'number')
    return `closed ${close.code}${typeof close.reason === 'string' && close.reason ? ` ${close.reason}` : ''}`;
  if (close && typeof close.message === 'string') return close.message;
  return String(error);
}

function describeFetchError(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}
