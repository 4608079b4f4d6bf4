/**
 * The one GraphQL-over-HTTP client of the tests: POST `<baseUrl>/graphql` with a JSON body, resolve with the status,
 * the headers and the parsed body. It asserts nothing, so a test can check a 4xx as easily as a 200.
 */

/** One entry of a response's `errors`. */
export interface GraphqlError {
  message: string;
  path?: readonly (string | number)[];
  extensions?: Record<string, any>;
}

/** The JSON body of a GraphQL response; loosely typed, tests index into `data`. */
export interface GraphqlBody<TData = Record<string, any>> {
  data?: TData | null;
  errors?: GraphqlError[];
}

export interface GraphqlResponse<TBody = GraphqlBody> {
  status: number;
  headers: Headers;
  body: TBody;
  /** From sending the request to the parsed body, in milliseconds. */
  ms: number;
}

export interface GraphqlRequestOptions {
  /** Sent as `authorization: Bearer <token>`. @default none */
  token?: string;
  /** More request headers (`x-request-id`, `origin` …); they override `content-type` and `authorization`. */
  headers?: Record<string, string>;
  /** Abort the request after this long, in milliseconds. @default no limit */
  timeoutMs?: number;
  /** Appended to `baseUrl`; `''` posts to `baseUrl` itself (a gateway's URL). @default '/graphql' */
  path?: string;
}

/**
 * POST `body` to `<baseUrl>/graphql`: a string is sent as it is (malformed or oversized bodies), anything else as
 * JSON. The response body must be JSON (every kbql answer on /graphql is), or this rejects.
 */
export async function postGraphql<TBody = GraphqlBody>(
  baseUrl: string,
  body: unknown,
  options: GraphqlRequestOptions = {},
): Promise<GraphqlResponse<TBody>> {
  const started = performance.now();
  const response = await fetch(`${baseUrl}${options.path ?? '/graphql'}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(options.timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(options.timeoutMs) }),
  });
  const parsed = (await response.json()) as TBody;
  return { status: response.status, headers: response.headers, body: parsed, ms: performance.now() - started };
}

/** POST one operation (`{ query, variables }`) to `<baseUrl>/graphql`; see {@link postGraphql}. */
export function graphqlRequest<TBody = GraphqlBody>(
  baseUrl: string,
  query: string,
  variables?: Record<string, unknown>,
  options: GraphqlRequestOptions = {},
): Promise<GraphqlResponse<TBody>> {
  return postGraphql<TBody>(baseUrl, { query, variables }, options);
}

/**
 * {@link graphqlRequest} for callers that only want the data: resolves with `data`, rejects when the response has
 * `errors` (their JSON is the message) or a status other than 2xx.
 */
export async function gql<TData = any>(
  baseUrl: string,
  query: string,
  variables?: Record<string, unknown>,
  options: GraphqlRequestOptions = {},
): Promise<TData> {
  const { status, body } = await graphqlRequest<GraphqlBody<TData>>(baseUrl, query, variables, options);
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  if (status < 200 || status > 299) throw new Error(`HTTP ${status}`);
  return body.data as TData;
}
