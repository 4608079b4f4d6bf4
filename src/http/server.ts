import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { HeaderMap, type ApolloServer, type HTTPGraphQLRequest } from '@apollo/server';
import {
  defaultTextMapGetter,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type TextMapPropagator,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ERROR_CODES, isAppError, type ErrorCode } from '../errors';
import type { Logger } from '../logger';
import { SPAN_ATTRIBUTES as A, TRACER_NAME } from '../observability/attributes';
import { Readiness, type ReadinessCheck } from '../observability/readiness';
import { attachRequestRecord, type RequestRecord } from '../observability/request-record';
import { checkInputNesting } from '../graphql/input-depth';
import { createCorsHandler, type CorsOutcome, type CorsPolicy } from './cors';

export type { ReadinessCheck } from '../observability/readiness';

/** A rendered metrics page (Prometheus text format). */
export interface MetricsPage {
  contentType: string;
  body: string;
}

export interface HttpServerOptions<TContext extends object> {
  apollo: ApolloServer<TContext>;
  /**
   * Builds the per-request GraphQL context, before the body is read: authentication happens here. An {@link AppError}
   * it throws (UNAUTHENTICATED for a bad token) is the response, with its status; nothing else runs.
   */
  context: (requestId: string, request: IncomingMessage) => TContext | Promise<TContext>;
  /** Largest request body in bytes; larger → 413 PAYLOAD_TOO_LARGE. */
  maxBodyBytes: number;
  /** The dependencies /readyz reports (a {@link Readiness} to share its cache with the metrics). */
  readiness: readonly ReadinessCheck[] | Readiness;
  logger: Logger;
  /** Renders `GET /metrics`; without it the route is 404 (e.g. when metrics are served on their own port). */
  metrics?: () => Promise<MetricsPage>;
  /**
   * Who may call /graphql from a browser on another origin (see {@link createCorsHandler}).
   * @default no origin: preflights from a browser are refused with 403
   */
  cors?: CorsPolicy;
  /**
   * Tracer of the HTTP server span of each /graphql request.
   * @default trace.getTracer('kbql') (a no-op until an SDK is registered)
   */
  tracer?: Tracer;
  /**
   * Reads the incoming trace context (so a router's or client's trace continues here).
   * @default W3C Trace Context (`traceparent`, `tracestate`)
   */
  propagator?: TextMapPropagator;
  /**
   * `POST /v1/uploads` (404 without it): the raw body is one file, named by the `X-Kbql-Filename` header, typed by
   * `Content-Type` (a hint; the type is sniffed from the bytes at ingestion). Authenticated like /graphql (through
   * `context`); a body over `maxBytes` → 413 PAYLOAD_TOO_LARGE. Answers 201 with what `accept` returns.
   */
  uploads?: {
    maxBytes: number;
    accept(context: TContext, data: Buffer, filename: string | null, mediaType: string | null): Promise<Record<string, unknown>>;
  };
  /**
   * Time allowed for a whole request, in ms.
   * @default 120000
   */
  requestTimeoutMs?: number;
}

const GRAPHQL_PATH = '/graphql';
const UPLOADS_PATH = '/v1/uploads';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Routes probed every few seconds: their request lines are logged at debug level only. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

interface ServerState {
  inFlight: Set<ServerResponse>;
  draining: boolean;
  idle: (() => void)[];
}
const states = new WeakMap<http.Server, ServerState>();

/**
 * kbql's own HTTP layer: /graphql (through Apollo's HTTP-agnostic API), /healthz, /readyz and /metrics; one JSON
 * log line per request (request id, trace id, operation, duration, outcome); W3C trace context taken from the
 * request; in-flight requests tracked for {@link drainHttpServer}.
 */
export function createHttpServer<TContext extends object>(options: HttpServerOptions<TContext>): http.Server {
  const readiness = options.readiness instanceof Readiness ? options.readiness : new Readiness(options.readiness);
  const tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  const propagator = options.propagator ?? new W3CTraceContextPropagator();
  const state: ServerState = { inFlight: new Set(), draining: false, idle: [] };
  const cors = createCorsHandler(options.cors ?? { origins: [] });
  const server = http.createServer((req, res) => {
    const started = performance.now();
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    res.setHeader('x-request-id', requestId);
    if (state.draining) res.setHeader('connection', 'close');
    state.inFlight.add(res);
    const path = pathOf(req.url);
    const log: RequestLog = { requestId, traceId: null, record: null, trace: null };
    res.once('close', () => {
      state.inFlight.delete(res);
      logRequest(options.logger, req, res, path, started, log);
      if (state.inFlight.size === 0) for (const resolve of state.idle.splice(0)) resolve();
    });

    const handle = () =>
      route(options, readiness, cors, req, res, path, requestId, log).catch((error: unknown) => {
        options.logger.error('http handler failed', { requestId, error: error instanceof Error ? error.message : String(error) });
        if (!res.headersSent) sendError(res, 'INTERNAL_SERVER_ERROR');
        else res.destroy();
      });
    if (path !== GRAPHQL_PATH) {
      void handle();
      return;
    }
    const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    const method = (req.method ?? 'GET').toUpperCase();
    const span = tracer.startSpan(
      `${method} ${GRAPHQL_PATH}`,
      {
        kind: SpanKind.SERVER,
        attributes: { [A.httpMethod]: method, [A.urlPath]: GRAPHQL_PATH, [A.httpRoute]: GRAPHQL_PATH, [A.requestId]: requestId },
      },
      parent,
    );
    const spanContext = span.spanContext();
    if (isSpanContextValid(spanContext)) log.traceId = spanContext.traceId;
    res.once('close', () => {
      span.setAttribute(A.httpStatusCode, res.statusCode);
      if (res.statusCode >= 500 || !res.writableFinished) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    // Handed to the GraphQL plugin on the request's context rather than made active: a request the sampler left out
    // then runs without async context (see RecordedContextManager).
    log.trace = trace.setSpan(parent, span);
    void handle();
  });
  states.set(server, state);
  server.requestTimeout = options.requestTimeoutMs ?? 120_000;
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  return server;
}

/**
 * Graceful drain: stops accepting connections, lets in-flight requests finish (their connections then close), and
 * resolves when none is left — or after `timeoutMs`, when the remaining connections are cut.
 */
export async function drainHttpServer(server: http.Server, timeoutMs = 10_000): Promise<void> {
  const state = states.get(server);
  if (!server.listening && (!state || state.inFlight.size === 0)) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  if (state) {
    state.draining = true;
    // Responses not yet started tell the client the connection ends with them.
    for (const res of state.inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
    if (state.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<boolean>((resolve) => state.idle.push(() => resolve(true)));
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const drained = await Promise.race([idle, late]);
      clearTimeout(timer);
      if (!drained) server.closeAllConnections();
    }
  }
  server.closeIdleConnections();
  // A connection that never completed a request (half-sent headers) is neither idle nor in flight: cut it after a grace.
  let grace: NodeJS.Timeout | undefined;
  const cut = new Promise<void>((resolve) => {
    grace = setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, 2_000);
  });
  await Promise.race([closed, cut]);
  clearTimeout(grace);
  await closed;
}

interface RequestLog {
  requestId: string;
  traceId: string | null;
  record: RequestRecord | null;
  /** The trace context of a /graphql request: its HTTP server span under the incoming parent. */
  trace: Context | null;
}

function logRequest(logger: Logger, req: IncomingMessage, res: ServerResponse, path: string, started: number, log: RequestLog): void {
  const record = log.record;
  const status = res.statusCode;
  const outcome = !res.writableFinished ? 'aborted' : (record?.outcome ?? (status >= 400 ? 'error' : 'ok'));
  const fields = {
    requestId: log.requestId,
    traceId: log.traceId,
    method: req.method,
    path,
    status,
    durationMs: Math.round((performance.now() - started) * 100) / 100,
    operation: record?.operation ?? null,
    operationType: record?.operationType ?? null,
    outcome,
    ...(record && record.errorCodes.length > 0 ? { errorCodes: record.errorCodes } : {}),
  };
  if (QUIET_ROUTES.has(path)) logger.debug('request', fields);
  else logger.info('request', fields);
}

function pathOf(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://kbql.local').pathname;
  } catch {
    return '/';
  }
}

async function route<TContext extends object>(
  options: HttpServerOptions<TContext>,
  readiness: Readiness,
  cors: (req: IncomingMessage, res: ServerResponse) => Promise<CorsOutcome>,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  requestId: string,
  log: RequestLog,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://kbql.local');
  switch (path) {
    case GRAPHQL_PATH:
      if ((await cors(req, res)) === 'answered') return;
      return handleGraphQL(options, req, res, url, requestId, log);
    case '/healthz':
      return sendJson(res, 200, { status: 'ok' });
    case '/readyz': {
      const report = await readiness.report();
      return sendJson(res, report.status === 'not ready' ? 503 : 200, report);
    }
    case UPLOADS_PATH:
      if (options.uploads) return handleUpload(options, options.uploads, req, res, requestId);
      return sendError(res, 'NOT_FOUND', 'Uploads are not served here.');
    case '/metrics':
      if (options.metrics) return sendMetrics(res, options.metrics);
      return sendError(res, 'NOT_FOUND', 'Metrics are not served on this port.');
    default:
      return sendError(res, 'NOT_FOUND', `No route for ${path}; GraphQL is served at ${GRAPHQL_PATH}.`);
  }
}

async function sendMetrics(res: ServerResponse, render: () => Promise<MetricsPage>): Promise<void> {
  const page = await render();
  res.writeHead(200, { 'content-type': page.contentType, 'content-length': Buffer.byteLength(page.body) });
  res.end(page.body);
}

/** A server that answers only `GET /metrics` (for KBQL_METRICS_PORT), with the same request logging. */
export function createMetricsServer(options: { metrics: () => Promise<MetricsPage>; logger: Logger }): http.Server {
  const server = http.createServer((req, res) => {
    const started = performance.now();
    const path = pathOf(req.url);
    res.once('close', () =>
      logRequest(options.logger, req, res, path, started, { requestId: randomUUID(), traceId: null, record: null, trace: null }),
    );
    const work =
      path === '/metrics'
        ? sendMetrics(res, options.metrics)
        : Promise.resolve(sendError(res, 'NOT_FOUND', 'Only /metrics is served on this port.'));
    work.catch((error: unknown) => {
      options.logger.error('metrics handler failed', { error: error instanceof Error ? error.message : String(error) });
      if (!res.headersSent) sendError(res, 'INTERNAL_SERVER_ERROR');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  return server;
}

async function handleGraphQL<TContext extends object>(
  options: HttpServerOptions<TContext>,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  requestId: string,
  log: RequestLog,
): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'POST' && method !== 'HEAD') {
    res.setHeader('allow', 'GET, POST');
    return sendJson(res, 405, { errors: [{ message: 'Use GET or POST.', extensions: { code: 'BAD_REQUEST' } }] });
  }
  const contextValue = await contextOrRefusal(options, req, res, requestId);
  if (contextValue === null) return;
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }

  let body: unknown = undefined;
  if (method === 'POST') {
    const raw = await readBodyText(req, res, options.maxBodyBytes);
    if (raw === null) {
      return sendError(res, 'PAYLOAD_TOO_LARGE', `The request body exceeds ${options.maxBodyBytes} bytes.`, {
        maxBytes: options.maxBodyBytes,
      });
    }
    const contentType = headers.get('content-type') ?? '';
    if (/^application\/(?:graphql-response\+)?json\b/i.test(contentType) && raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        return sendJson(res, 400, { errors: [{ message: 'The request body is not valid JSON.', extensions: { code: 'BAD_REQUEST' } }] });
      }
    } else {
      body = raw;
    }
  }

  // Before Apollo: its parser and variable coercion recurse once per nesting level.
  const tooDeep =
    method === 'POST'
      ? checkInputNesting(fieldOf(body, 'query'), fieldOf(body, 'variables'))
      : checkInputNesting(url.searchParams.get('query'), jsonOrNull(url.searchParams.get('variables')));
  if (tooDeep) return sendError(res, tooDeep.code, tooDeep.message, { ...tooDeep.details });

  const httpGraphQLRequest: HTTPGraphQLRequest = { method, headers, search: url.search, body };
  const response = await options.apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest,
    context: async () => {
      log.record = attachRequestRecord(contextValue, log.trace);
      return contextValue;
    },
  });
  res.statusCode = response.status ?? 200;
  for (const [key, value] of response.headers) res.setHeader(key, value);
  if (response.body.kind === 'complete') {
    res.end(response.body.string);
    return;
  }
  for await (const chunk of response.body.asyncIterator) res.write(chunk);
  res.end();
}

/**
 * `POST /v1/uploads`. Why a plain upload route rather than GraphQL multipart requests: Apollo Server 5 has no
 * multipart support and its CSRF prevention refuses multipart bodies; a separate route needs no special client link
 * (any `fetch` or `curl --data-binary` works), enforces its own size limit before GraphQL is involved, and the upload
 * id can be reused by a retried mutation without sending the bytes again. The required `X-Kbql-Filename` header is a
 * non-simple header, so a browser cannot send this cross-site without a CORS preflight (which kbql never grants).
 */
async function handleUpload<TContext extends object>(
  options: HttpServerOptions<TContext>,
  uploads: NonNullable<HttpServerOptions<TContext>['uploads']>,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  if ((req.method ?? 'GET').toUpperCase() !== 'POST') {
    req.resume();
    res.setHeader('allow', 'POST');
    return sendJson(res, 405, { errors: [{ message: 'Use POST with the file as the body.', extensions: { code: 'BAD_REQUEST' } }] });
  }
  const contextValue = await contextOrRefusal(options, req, res, requestId);
  if (contextValue === null) return;
  const data = await readBody(req, res, uploads.maxBytes);
  if (data === null) {
    return sendError(res, 'PAYLOAD_TOO_LARGE', `The file exceeds ${uploads.maxBytes} bytes.`, { maxBytes: uploads.maxBytes });
  }
  const header = req.headers['x-kbql-filename'];
  const filename = (Array.isArray(header) ? header[0] : header) ?? null;
  const mediaType = req.headers['content-type'] ?? null;
  try {
    return sendJson(res, 201, await uploads.accept(contextValue, data, filename, mediaType));
  } catch (error) {
    if (!isAppError(error)) throw error;
    return sendError(res, error.code, error.message, { ...error.details });
  }
}

/**
 * The request's context (authentication happens while building it), or null after answering with the AppError it
 * threw: 401 with `WWW-Authenticate` for a bad credential. The body is drained unread: nothing else runs.
 */
async function contextOrRefusal<TContext extends object>(
  options: Pick<HttpServerOptions<TContext>, 'context'>,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<TContext | null> {
  try {
    return await options.context(requestId, req);
  } catch (error) {
    if (!isAppError(error)) throw error;
    req.resume();
    if (error.code === 'UNAUTHENTICATED') res.setHeader('www-authenticate', 'Bearer realm="kbql", error="invalid_token"');
    sendError(res, error.code, error.message, { ...error.details });
    return null;
  }
}

/** A body over the limit is still read (and dropped) up to this many times the limit before kbql answers. */
const DRAIN_FACTOR = 2;
/** …and for at most this long: a client that trickles its refused body is cut off. */
const DRAIN_MS = 10_000;

/**
 * Reads the whole body, or returns null when it passes `maxBytes` (Content-Length checked first). A refused body is
 * read to its end and dropped before returning (up to DRAIN_FACTOR × the limit, DRAIN_MS): a proxy such as nginx
 * sends the whole body before it reads the answer, and a connection closed under it while it writes becomes a 502
 * instead of kbql's 413. Past those bounds the connection is closed after the answer.
 */
function readBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  return collectBody(req, res, maxBytes, {
    add: (part) => parts.push(part),
    end: (size) => Buffer.concat(parts, size),
  });
}

/**
 * {@link readBody} as UTF-8 text, decoded part by part as the parts arrive: a 2 MiB body decoded at once (and
 * copied into one buffer first) held the event loop for 20–40 ms.
 */
function readBodyText(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<string | null> {
  const decoder = new StringDecoder('utf8');
  const pieces: string[] = [];
  return collectBody(req, res, maxBytes, {
    add: (part) => pieces.push(decoder.write(part)),
    end: () => {
      pieces.push(decoder.end());
      return pieces.join('');
    },
  });
}

/** Reads a body of at most `maxBytes` into `sink`; null (after draining what is left) when it is larger. */
function collectBody<T>(
  req: IncomingMessage,
  res: ServerResponse,
  maxBytes: number,
  sink: { add(part: Buffer): void; end(size: number): T },
): Promise<T | null> {
  const declared = Number(req.headers['content-length']);
  const budget = maxBytes * DRAIN_FACTOR;
  if (Number.isFinite(declared) && declared > maxBytes) return drained(req, res, declared > budget ? -1 : budget).then(() => null);
  return new Promise((resolve, reject) => {
    let size = 0;
    const onData = (part: Buffer): void => {
      size += part.length;
      if (size <= maxBytes) {
        sink.add(part);
        return;
      }
      req.off('data', onData).off('end', onEnd);
      resolve(drained(req, res, budget - size).then(() => null));
    };
    const onEnd = (): void => resolve(sink.end(size));
    req.on('data', onData).on('end', onEnd).on('error', reject);
  });
}

/**
 * Resolves once the rest of a refused body is read and dropped. When more than `budget` bytes remain (a negative
 * budget: at once) or DRAIN_MS passes, it stops reading and resolves with `connection: close` set on the answer.
 */
function drained(req: IncomingMessage, res: ServerResponse, budget: number): Promise<void> {
  const closeAfterAnswer = (): void => {
    req.resume();
    res.setHeader('connection', 'close');
  };
  if (req.complete) return Promise.resolve();
  if (budget < 0) {
    closeAfterAnswer();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    let left = budget;
    const done = (): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', done).off('error', done);
      resolve();
    };
    const stop = (): void => {
      done();
      closeAfterAnswer();
    };
    const onData = (part: Buffer): void => {
      left -= part.length;
      if (left < 0) stop();
    };
    const timer = setTimeout(stop, DRAIN_MS);
    timer.unref();
    req.on('data', onData).on('end', done).on('error', done).resume();
  });
}

function fieldOf(body: unknown, name: string): unknown {
  return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)[name] : undefined;
}

function jsonOrNull(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null; // Apollo answers malformed variables itself
  }
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, code: ErrorCode, message?: string, details: Record<string, unknown> = {}): void {
  sendJson(res, ERROR_CODES[code].status, {
    errors: [{ message: message ?? ERROR_CODES[code].message, extensions: { ...details, code } }],
  });
}

/** Starts listening and resolves with the bound address (port 0 → a free port). */
export function listen(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
