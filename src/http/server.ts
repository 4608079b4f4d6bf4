import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeaderMap, type ApolloServer, type HTTPGraphQLRequest } from '@apollo/server';
import { ERROR_CODES, type ErrorCode } from '../errors';
import type { Logger } from '../logger';

/** A dependency /readyz checks; throwing means not ready. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export interface HttpServerOptions<TContext extends object> {
  apollo: ApolloServer<TContext>;
  /** Builds the per-request GraphQL context. */
  context: (requestId: string) => TContext;
  /** Largest request body in bytes; larger → 413 PAYLOAD_TOO_LARGE. */
  maxBodyBytes: number;
  readiness: ReadinessCheck[];
  logger: Logger;
  /**
   * Time allowed for a whole request, in ms.
   * @default 120000
   */
  requestTimeoutMs?: number;
}

const GRAPHQL_PATH = '/graphql';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** kbql's own HTTP layer: /graphql (through Apollo's HTTP-agnostic API), /healthz, /readyz. */
export function createHttpServer<TContext extends object>(options: HttpServerOptions<TContext>): http.Server {
  const server = http.createServer((req, res) => {
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    res.setHeader('x-request-id', requestId);
    route(options, req, res, requestId).catch((error: unknown) => {
      options.logger.error('http handler failed', { requestId, error: error instanceof Error ? error.message : String(error) });
      if (!res.headersSent) sendError(res, 'INTERNAL_SERVER_ERROR');
      else res.destroy();
    });
  });
  server.requestTimeout = options.requestTimeoutMs ?? 120_000;
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  return server;
}

async function route<TContext extends object>(
  options: HttpServerOptions<TContext>,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://kbql.local');
  switch (url.pathname) {
    case GRAPHQL_PATH:
      return handleGraphQL(options, req, res, url, requestId);
    case '/healthz':
      return sendJson(res, 200, { status: 'ok' });
    case '/readyz': {
      const checks: Record<string, string> = {};
      let ready = true;
      for (const dep of options.readiness) {
        try {
          await dep.check();
          checks[dep.name] = 'ok';
        } catch (error) {
          ready = false;
          checks[dep.name] = error instanceof Error ? error.message : 'failed';
        }
      }
      return sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks });
    }
    default:
      return sendError(res, 'NOT_FOUND', `No route for ${url.pathname}; GraphQL is served at ${GRAPHQL_PATH}.`);
  }
}

async function handleGraphQL<TContext extends object>(
  options: HttpServerOptions<TContext>,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  requestId: string,
): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'POST' && method !== 'HEAD') {
    res.setHeader('allow', 'GET, POST');
    return sendJson(res, 405, { errors: [{ message: 'Use GET or POST.', extensions: { code: 'BAD_REQUEST' } }] });
  }
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }

  let body: unknown = undefined;
  if (method === 'POST') {
    const raw = await readBody(req, options.maxBodyBytes);
    if (raw === null) {
      res.setHeader('connection', 'close');
      return sendError(res, 'PAYLOAD_TOO_LARGE', `The request body exceeds ${options.maxBodyBytes} bytes.`, {
        maxBytes: options.maxBodyBytes,
      });
    }
    const contentType = headers.get('content-type') ?? '';
    if (/^application\/(?:graphql-response\+)?json\b/i.test(contentType) && raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return sendJson(res, 400, { errors: [{ message: 'The request body is not valid JSON.', extensions: { code: 'BAD_REQUEST' } }] });
      }
    } else {
      body = raw.toString('utf8');
    }
  }

  const httpGraphQLRequest: HTTPGraphQLRequest = { method, headers, search: url.search, body };
  const response = await options.apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest,
    context: async () => options.context(requestId),
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

/** Reads the whole body, or returns null as soon as it passes `maxBytes` (Content-Length checked first). */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (part: Buffer) => {
      if (done) return;
      size += part.length;
      if (size > maxBytes) {
        done = true;
        req.resume();
        resolve(null);
        return;
      }
      parts.push(part);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(parts, size));
    });
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, code: ErrorCode, message?: string, details: Record<string, unknown> = {}): void {
  sendJson(res, ERROR_CODES[code].status, { errors: [{ message: message ?? ERROR_CODES[code].message, extensions: { ...details, code } }] });
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
