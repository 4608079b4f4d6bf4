import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from 'cors';

export interface CorsPolicy {
  /** Exact origins allowed (`scheme://host[:port]`). */
  origins: readonly string[];
  /** Any origin: `Access-Control-Allow-Origin: *`. @default false */
  anyOrigin?: boolean;
  /** http(s)://localhost, 127.0.0.1 and [::1] on any port. @default false */
  localhost?: boolean;
  /** `Access-Control-Allow-Credentials: true` for allowed origins. @default false */
  credentials?: boolean;
}

/**
 * What a cross-origin request may send. `apollo-require-preflight` is the header Apollo's CSRF prevention accepts
 * on GET requests; the graphql-http and Apollo client headers are there so their clients work as they are.
 */
export const CORS_ALLOWED_HEADERS = [
  'accept',
  'apollo-require-preflight',
  'authorization',
  'content-type',
  'x-api-key',
  'x-apollo-operation-name',
  'x-request-id',
  'traceparent',
  'tracestate',
] as const;
/** What a browser script may read of a response besides the CORS-safelisted headers. */
const EXPOSED_HEADERS = ['retry-after', 'www-authenticate', 'x-request-id'];
/** How long a browser may reuse a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;
const LOCALHOST = /^https?:\/\/(?:localhost|127\.0\.0\.1|\[::1\])(?::\d{1,5})?$/;

/** What the CORS step did: answered the request (a preflight) or let it through. */
export type CorsOutcome = 'answered' | 'continue';

/**
 * CORS for one route, with the `cors` package (the Express project's middleware, which works on plain node:http).
 * A preflight from an allowed origin → 204 with the allowed methods and headers; from any other origin → 403 with a
 * JSON error saying which variable allows it (a browser would only report a blocked request). Actual requests from
 * an allowed origin get `Access-Control-Allow-Origin` (and `Vary: Origin`); others run as before, without it, so a
 * browser keeps their response from the page. Requests without `Origin` (curl, servers) are not affected.
 */
export function createCorsHandler(policy: CorsPolicy): (req: IncomingMessage, res: ServerResponse) => Promise<CorsOutcome> {
  const exact = new Set(policy.origins);
  const allowed = (origin: string | undefined): boolean | '*' => {
    if (!origin) return false;
    if (policy.anyOrigin) return '*';
    return exact.has(origin) || (policy.localhost === true && LOCALHOST.test(origin));
  };
  const middleware = cors({
    origin: (origin, callback) => callback(null, allowed(origin)),
    methods: ['GET', 'POST'],
    allowedHeaders: [...CORS_ALLOWED_HEADERS],
    exposedHeaders: EXPOSED_HEADERS,
    credentials: policy.credentials ?? false,
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    optionsSuccessStatus: 204,
  });
  return (req, res) =>
    new Promise<CorsOutcome>((resolve, reject) => {
      // The middleware ends a preflight itself and calls `next` for everything else.
      const answered = () => resolve('answered');
      res.once('finish', answered);
      middleware(req as never, res as never, (error?: Error) => {
        res.off('finish', answered);
        if (error) reject(error);
        else resolve('continue');
      });
    }).then((outcome) => {
      if (outcome === 'continue' && (req.method ?? '').toUpperCase() === 'OPTIONS') {
        const origin = req.headers.origin;
        if (origin) refuse(res, origin);
        else {
          res.writeHead(204, { allow: 'GET, POST, OPTIONS', 'content-length': '0' });
          res.end();
        }
        return 'answered';
      }
      return outcome;
    });
}

function refuse(res: ServerResponse, origin: string): void {
  const body = JSON.stringify({
    errors: [
      {
        message: `Cross-origin requests from ${origin} are not allowed; add it to KBQL_CORS_ORIGINS on the server.`,
        extensions: { code: 'FORBIDDEN', origin },
      },
    ],
  });
  res.writeHead(403, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), vary: 'Origin' });
  res.end(body);
}
