/**
 * A local OpenAI-compatible API for tests: `POST /v1/chat/completions` (JSON or SSE streaming), `POST /v1/embeddings`
 * and `GET /v1/models`, on 127.0.0.1 and a free port. No real model can run on the test machines, so every test of
 * an LLM or remote-embedder path talks to this instead.
 *
 * Besides answering, it injects faults and lets a test observe what the client did:
 * - {@link OpenAiStub.failNext} answers the next k calls with an HTTP status (429, 500, 503…),
 * - {@link OpenAiStub.delayNext} holds the next k calls before answering,
 * - {@link OpenAiStub.hangNext} never finishes the next k calls (a streaming one can first send some tokens),
 * - {@link OpenAiStub.resetNext} destroys the socket of the next k calls (a connection reset),
 * - {@link OpenAiStub.requests}, {@link OpenAiStub.inFlight}, {@link OpenAiStub.aborted} count calls, requests still
 *   open and requests the client gave up on (closed the connection before the response ended).
 *
 * It also speaks Ollama's native API on the same port (for `createOllamaLlm`, `OllamaEmbedder` and the `ollama`
 * client): `POST /api/chat` (NDJSON streaming, or one JSON object with `stream: false`), `POST /api/embed`,
 * `POST /api/embeddings` and `GET /api/tags`, routes `ollama-chat`, `ollama-embed`, `ollama-embeddings` and
 * `ollama-tags`, with the same faults and observation; pass {@link OpenAiStub.origin} as the Ollama host.
 *
 * Faults apply to the routes given (default: every route) in the order they were queued. Usage:
 * ```ts
 * const stub = await OpenAiStub.start({ chatReply: 'Air is needed [1].' });
 * const llm = createOpenAiLlm({ baseURL: stub.baseUrl, model: 'stub', timeoutMs: 2000 });
 * stub.failNext(503, 2);
 * … await stub.waitForIdle(2000); assert.equal(stub.inFlight, 0);
 * await stub.close();
 * ```
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The routes the stub serves: OpenAI-compatible (`/v1/…`) and Ollama-native (`/api/…`). */
export type StubRoute = 'chat' | 'embeddings' | 'models' | OllamaStubRoute;

/** Ollama's `POST /api/chat`, `POST /api/embed`, `POST /api/embeddings` and `GET /api/tags`. */
export type OllamaStubRoute = 'ollama-chat' | 'ollama-embed' | 'ollama-embeddings' | 'ollama-tags';

/** One request the stub received. Mutated while it runs (`completed`, `aborted`). */
export interface StubRequest {
  route: StubRoute | 'unknown';
  method: string;
  path: string;
  /** The `authorization` header as received. */
  authorization: string | undefined;
  /** The parsed JSON body (`{}` for GET or an empty body). */
  body: Record<string, unknown>;
  /** A streaming chat request (OpenAI: `stream: true`; Ollama: `stream` not `false`, its default). */
  stream: boolean;
  /** The response was fully sent. */
  completed: boolean;
  /** The client closed the connection before the response was fully sent. */
  aborted: boolean;
  /** Chat tokens (SSE deltas or NDJSON lines) written before it completed or was aborted. */
  tokensSent: number;
}

/** What a chat request is answered with: fixed text, or text computed from the request's body. */
export type ChatReply = string | ((body: Record<string, unknown>) => string);

export interface OpenAiStubOptions {
  /**
   * The assistant's reply to chat requests.
   * @default 'OK'
   */
  chatReply?: ChatReply;
  /**
   * Pause between two SSE deltas of a streaming reply, in milliseconds (0: written back to back).
   * @default 0
   */
  tokenDelayMs?: number;
  /**
   * Length of the embedding vectors returned.
   * @default 8
   */
  dimensions?: number;
  /**
   * Model ids listed by `GET /v1/models` and `GET /api/tags`.
   * @default ['stub-chat', 'stub-embed']
   */
  models?: string[];
  /** When set, requests whose bearer token differs get 401 (as the real API answers a wrong key). */
  apiKey?: string;
  /**
   * Every `POST /v1/embeddings` is answered this long after it arrives, whatever its size (the shape of a remote
   * provider's latency), in ms.
   * @default 0
   */
  embeddingDelayMs?: number;
  /**
   * How a text becomes its vector.
   * @default {@link stubEmbedding} (words hashed with SHA-1: texts that share words are similar)
   */
  embedding?: (text: string, dimensions: number) => Float32Array;
}

type Fault =
  | { kind: 'status'; status: number; body?: unknown; retryAfterMs?: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'hang'; afterTokens: number }
  | { kind: 'reset' };

interface QueuedFault {
  fault: Fault;
  routes: ReadonlySet<StubRoute>;
}

const ALL_ROUTES: readonly StubRoute[] = [
  'chat',
  'embeddings',
  'models',
  'ollama-chat',
  'ollama-embed',
  'ollama-embeddings',
  'ollama-tags',
];

const ROUTES: Readonly<Record<string, StubRoute>> = {
  'POST /v1/chat/completions': 'chat',
  'POST /v1/embeddings': 'embeddings',
  'GET /v1/models': 'models',
  'POST /api/chat': 'ollama-chat',
  'POST /api/embed': 'ollama-embed',
  'POST /api/embeddings': 'ollama-embeddings',
  'GET /api/tags': 'ollama-tags',
};

/** Both chat routes (streaming replies, hangs after some tokens). */
function isChat(route: StubRequest['route']): route is 'chat' | 'ollama-chat' {
  return route === 'chat' || route === 'ollama-chat';
}

function isOllama(route: StubRequest['route']): route is OllamaStubRoute {
  return route.startsWith('ollama-');
}

export class OpenAiStub {
  /** `http://127.0.0.1:<port>` — the server's origin. */
  readonly origin: string;
  /** `http://127.0.0.1:<port>/v1` — what an OpenAI client takes as `baseURL`. */
  readonly baseUrl: string;
  /** Every request received, oldest first (cleared by {@link reset}). */
  readonly requests: StubRequest[] = [];
  /** Current chat reply; may be reassigned between calls. */
  chatReply: ChatReply;
  /** Current pause between SSE deltas, in milliseconds; may be reassigned. */
  tokenDelayMs: number;
  readonly dimensions: number;

  readonly #server: Server;
  readonly #models: string[];
  readonly #apiKey: string | undefined;
  readonly #embeddingDelayMs: number;
  readonly #embedding: (text: string, dimensions: number) => Float32Array;
  readonly #faults: QueuedFault[] = [];
  readonly #open = new Set<StubRequest>();
  readonly #idleWaiters = new Set<() => void>();
  readonly #requestWaiters = new Set<() => void>();
  /** Timers and hung responses to release on close. */
  readonly #pending = new Set<NodeJS.Timeout>();

  private constructor(server: Server, port: number, options: OpenAiStubOptions) {
    this.#server = server;
    this.origin = `http://127.0.0.1:${port}`;
    this.baseUrl = `${this.origin}/v1`;
    this.chatReply = options.chatReply ?? 'OK';
    this.#embeddingDelayMs = options.embeddingDelayMs ?? 0;
    this.#embedding = options.embedding ?? stubEmbedding;
    this.tokenDelayMs = options.tokenDelayMs ?? 0;
    this.dimensions = options.dimensions ?? 8;
    this.#models = options.models ?? ['stub-chat', 'stub-embed'];
    this.#apiKey = options.apiKey;
  }

  /** Starts a stub on 127.0.0.1 and a free port. Close it with {@link close}. */
  static async start(options: OpenAiStubOptions = {}): Promise<OpenAiStub> {
    // Requests arrive only after listen(), by which time `stub` is set.
    const server = createServer((req, res) => void stub.#handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const stub = new OpenAiStub(server, (server.address() as AddressInfo).port, options);
    return stub;
  }

  /** Answers the next `times` calls (to `routes`, default all) with HTTP `status` and an OpenAI-style error body. */
  failNext(status: number, times = 1, options: { routes?: StubRoute[]; body?: unknown; retryAfterMs?: number } = {}): this {
    return this.#queue({ kind: 'status', status, body: options.body, retryAfterMs: options.retryAfterMs }, times, options.routes);
  }

  /** Holds the next `times` calls (to `routes`, default all) for `ms` milliseconds, then answers normally. */
  delayNext(ms: number, times = 1, options: { routes?: StubRoute[] } = {}): this {
    return this.#queue({ kind: 'delay', ms }, times, options.routes);
  }

  /**
   * Never finishes the next `times` calls (to `routes`, default all): the request stays open until the client gives
   * up. A streaming chat call first sends its headers and `afterTokens` deltas (default 0), then stalls.
   */
  hangNext(times = 1, options: { routes?: StubRoute[]; afterTokens?: number } = {}): this {
    return this.#queue({ kind: 'hang', afterTokens: options.afterTokens ?? 0 }, times, options.routes);
  }

  /** Destroys the socket of the next `times` calls (to `routes`, default all) without answering (ECONNRESET). */
  resetNext(times = 1, options: { routes?: StubRoute[] } = {}): this {
    return this.#queue({ kind: 'reset' }, times, options.routes);
  }

  /** Faults still queued. */
  get pendingFaults(): number {
    return this.#faults.length;
  }

  /** Requests received so far, optionally only those to `route`. */
  count(route?: StubRoute): number {
    return route ? this.requests.filter((r) => r.route === route).length : this.requests.length;
  }

  /** Requests whose response has neither completed nor been abandoned by the client. */
  get inFlight(): number {
    return this.#open.size;
  }

  /** Requests the client closed before their response was complete. */
  get aborted(): number {
    return this.requests.filter((r) => r.aborted).length;
  }

  /** Resolves once no request is in flight; rejects after `timeoutMs`. */
  waitForIdle(timeoutMs = 5000): Promise<void> {
    return this.#waitUntil(() => this.#open.size === 0, this.#idleWaiters, timeoutMs, 'the stub to be idle');
  }

  /** Resolves once at least `n` requests (to `route`, default any) have been received; rejects after `timeoutMs`. */
  waitForRequests(n: number, options: { route?: StubRoute; timeoutMs?: number } = {}): Promise<void> {
    return this.#waitUntil(() => this.count(options.route) >= n, this.#requestWaiters, options.timeoutMs ?? 5000, `${n} request(s)`);
  }

  /** Resolves once a request has sent at least `n` SSE deltas (or ended); rejects after `timeoutMs`. */
  waitForTokens(n: number, timeoutMs = 5000): Promise<void> {
    return this.#waitUntil(
      () => this.requests.some((r) => r.tokensSent >= n || (r.stream && (r.completed || r.aborted))),
      this.#requestWaiters,
      timeoutMs,
      `${n} streamed token(s)`,
    );
  }

  /** Forgets recorded requests and queued faults (not the requests still open). */
  reset(): void {
    this.requests.length = 0;
    this.#faults.length = 0;
  }

  /** Closes every connection (hung ones included) and the server. */
  async close(): Promise<void> {
    for (const timer of this.#pending) clearTimeout(timer);
    this.#pending.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #queue(fault: Fault, times: number, routes: StubRoute[] | undefined): this {
    for (let i = 0; i < times; i++) this.#faults.push({ fault, routes: new Set(routes ?? ALL_ROUTES) });
    return this;
  }

  #takeFault(route: StubRoute | 'unknown'): Fault | undefined {
    if (route === 'unknown') return undefined;
    const index = this.#faults.findIndex((f) => f.routes.has(route));
    return index < 0 ? undefined : this.#faults.splice(index, 1)[0]!.fault;
  }

  #waitUntil(done: () => boolean, waiters: Set<() => void>, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      waiters.add(check);
    });
  }

  #notify(waiters: Set<() => void>): void {
    for (const w of [...waiters]) w();
  }

  #settle(record: StubRequest, how: 'completed' | 'aborted'): void {
    if (!this.#open.delete(record)) return;
    record[how] = true;
    this.#notify(this.#idleWaiters);
    this.#notify(this.#requestWaiters);
  }

  #sleep(ms: number, res: ServerResponse): Promise<boolean> {
    return new Promise((resolve) => {
      if (ms <= 0) return resolve(!res.destroyed);
      const timer = setTimeout(() => {
        this.#pending.delete(timer);
        resolve(!res.destroyed);
      }, ms);
      this.#pending.add(timer);
      res.once('close', () => {
        clearTimeout(timer);
        this.#pending.delete(timer);
        resolve(false);
      });
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Decoded once: a bench sends hundreds of KB of texts per request, and the stub stands for a remote provider
    // whose work should cost the measured machine as little as possible.
    const parts: Buffer[] = [];
    for await (const chunk of req) parts.push(chunk as Buffer);
    const raw = Buffer.concat(parts).toString('utf8');
    let body: Record<string, unknown> = {};
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {
      // answered below as a 400
    }
    const path = (req.url ?? '').split('?')[0]!;
    const route: StubRequest['route'] = ROUTES[`${req.method} ${path}`] ?? 'unknown';
    const record: StubRequest = {
      route,
      method: req.method ?? '',
      path,
      authorization: req.headers.authorization,
      body,
      stream: (route === 'chat' && body['stream'] === true) || (route === 'ollama-chat' && body['stream'] !== false),
      completed: false,
      aborted: false,
      tokensSent: 0,
    };
    this.requests.push(record);
    this.#open.add(record);
    // 'close' on the response fires both after a normal end and when the client goes away first.
    res.once('close', () => this.#settle(record, res.writableFinished ? 'completed' : 'aborted'));
    this.#notify(this.#requestWaiters);

    const fault = this.#takeFault(route);
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'delay' && !(await this.#sleep(fault.ms, res))) return;
    if (route === 'embeddings' && this.#embeddingDelayMs > 0 && !(await this.#sleep(this.#embeddingDelayMs, res))) return;
    if (fault?.kind === 'status') {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
      res.writeHead(fault.status, headers);
      const error = isOllama(route)
        ? { error: `stub failure ${fault.status}` }
        : { error: { message: `stub failure ${fault.status}`, type: 'server_error', code: null } };
      res.end(JSON.stringify(fault.body ?? error));
      return;
    }
    if (fault?.kind === 'hang' && !(isChat(route) && record.stream)) return; // stays open until the client leaves

    if (this.#apiKey !== undefined && req.headers.authorization !== `Bearer ${this.#apiKey}`) {
      return json(res, 401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } });
    }
    if (raw && Object.keys(body).length === 0 && raw.trim() !== '{}') {
      if (isOllama(route)) return json(res, 400, { error: 'invalid character in JSON body' });
      return json(res, 400, { error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error' } });
    }
    switch (route) {
      case 'ollama-tags':
        return json(res, 200, { models: this.#models.map((name) => ollamaModel(name)) });
      case 'ollama-embed':
        return this.#ollamaEmbed(res, body);
      case 'ollama-embeddings':
        if (typeof body['prompt'] !== 'string') return json(res, 400, { error: "'prompt' must be a string" });
        return json(res, 200, { embedding: Array.from(stubEmbedding(body['prompt'], this.dimensions)) });
      case 'ollama-chat':
        return this.#ollamaChat(res, record, fault?.kind === 'hang' ? fault.afterTokens : undefined);
      case 'models':
        return json(res, 200, { object: 'list', data: this.#models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'stub' })) });
      case 'embeddings':
        return this.#embeddings(res, body);
      case 'chat':
        return this.#chat(res, record, fault?.kind === 'hang' ? fault.afterTokens : undefined);
      default:
        return json(res, 404, { error: { message: `Unknown route ${req.method} ${path}`, type: 'invalid_request_error' } });
    }
  }

  #embeddings(res: ServerResponse, body: Record<string, unknown>): void {
    const input = body['input'];
    const texts = Array.isArray(input) ? input.map(String) : typeof input === 'string' ? [input] : null;
    if (!texts || texts.length === 0) {
      return json(res, 400, { error: { message: "'input' must be a string or a non-empty array", type: 'invalid_request_error' } });
    }
    const base64 = body['encoding_format'] === 'base64';
    const data = texts.map((text, index) => {
      const vector = this.#embedding(text, this.dimensions);
      const embedding = base64 ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64') : Array.from(vector);
      return { object: 'embedding', index, embedding };
    });
    const tokens = texts.reduce((sum, t) => sum + wordCount(t), 0);
    json(res, 200, { object: 'list', data, model: body['model'] ?? 'stub-embed', usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }

  async #chat(res: ServerResponse, record: StubRequest, stallAfter: number | undefined): Promise<void> {
    const body = record.body;
    const reply = typeof this.chatReply === 'function' ? this.chatReply(body) : this.chatReply;
    const model = typeof body['model'] === 'string' ? body['model'] : 'stub-chat';
    const promptTokens = JSON.stringify(body['messages'] ?? []).split(/\s+/).length;
    const tokens = chatTokens(reply);
    const usage = { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length };
    if (!record.stream) {
      return json(res, 200, {
        id: 'chatcmpl-stub',
        object: 'chat.completion',
        created: 0,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop' }],
        usage,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}): void => {
      const chunk = {
        id: 'chatcmpl-stub',
        object: 'chat.completion.chunk',
        created: 0,
        model,
        choices: [{ index: 0, delta, finish_reason: finish }],
        ...extra,
      };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    };
    send({ role: 'assistant', content: '' }, null);
    for (const [i, token] of tokens.entries()) {
      if (stallAfter !== undefined && i >= stallAfter) {
        this.#notify(this.#requestWaiters);
        return; // stalls with the response open; the client's abort (or close()) ends it
      }
      if (i > 0 && !(await this.#sleep(this.tokenDelayMs, res))) return;
      if (res.destroyed) return;
      send({ content: token }, null);
      record.tokensSent++;
      this.#notify(this.#requestWaiters);
    }
    if (stallAfter !== undefined) return; // stall after the whole reply, before finishing
    send({}, 'stop');
    const options = body['stream_options'] as { include_usage?: boolean } | undefined;
    if (options?.include_usage) {
      res.write(
        `data: ${JSON.stringify({ id: 'chatcmpl-stub', object: 'chat.completion.chunk', created: 0, model, choices: [], usage })}\n\n`,
      );
    }
    res.end('data: [DONE]\n\n');
  }

  /** Ollama's `POST /api/embed`: `input` a string or an array of strings, one vector per input. */
  #ollamaEmbed(res: ServerResponse, body: Record<string, unknown>): void {
    const input = body['input'];
    const texts = Array.isArray(input) ? input.map(String) : typeof input === 'string' ? [input] : null;
    if (!texts || texts.length === 0) return json(res, 400, { error: "'input' must be a string or a non-empty array of strings" });
    const tokens = texts.reduce((sum, t) => sum + wordCount(t), 0);
    json(res, 200, {
      model: body['model'] ?? 'stub-embed',
      embeddings: texts.map((text) => Array.from(stubEmbedding(text, this.dimensions))),
      total_duration: 0,
      load_duration: 0,
      prompt_eval_count: tokens,
    });
  }

  /**
   * Ollama's `POST /api/chat`: NDJSON lines `{ model, created_at, message: { role, content }, done: false }`, one per
   * token, then a `done: true` line with the eval counts (`stream: false`: one object with the whole reply).
   */
  async #ollamaChat(res: ServerResponse, record: StubRequest, stallAfter: number | undefined): Promise<void> {
    const body = record.body;
    const reply = typeof this.chatReply === 'function' ? this.chatReply(body) : this.chatReply;
    const model = typeof body['model'] === 'string' ? body['model'] : 'stub-chat';
    const tokens = chatTokens(reply);
    const created_at = new Date(0).toISOString();
    const final = {
      done: true,
      done_reason: 'stop',
      total_duration: 0,
      load_duration: 0,
      prompt_eval_count: JSON.stringify(body['messages'] ?? []).split(/\s+/).length,
      prompt_eval_duration: 0,
      eval_count: tokens.length,
      eval_duration: 0,
    };
    if (!record.stream) return json(res, 200, { model, created_at, message: { role: 'assistant', content: reply }, ...final });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const line = (content: string, extra: Record<string, unknown> = { done: false }): void => {
      res.write(`${JSON.stringify({ model, created_at, message: { role: 'assistant', content }, ...extra })}\n`);
    };
    for (const [i, token] of tokens.entries()) {
      if (stallAfter !== undefined && i >= stallAfter) {
        this.#notify(this.#requestWaiters);
        return; // stalls with the response open; the client's abort (or close()) ends it
      }
      if (i > 0 && !(await this.#sleep(this.tokenDelayMs, res))) return;
      if (res.destroyed) return;
      line(token);
      record.tokensSent++;
      this.#notify(this.#requestWaiters);
    }
    if (stallAfter !== undefined) return; // stall after the whole reply, before the final line
    line('', final);
    res.end();
  }
}

/** One entry of Ollama's `GET /api/tags`. */
function ollamaModel(name: string): Record<string, unknown> {
  return {
    name,
    model: name,
    modified_at: new Date(0).toISOString(),
    size: 0,
    digest: createHash('sha256').update(name).digest('hex'),
    details: { parent_model: '', format: 'gguf', family: 'stub', families: ['stub'], parameter_size: '0B', quantization_level: 'F32' },
  };
}

function json(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(payload));
}

/** The reply cut into stream deltas: each word with the whitespace before it (so deltas join back to the reply). */
export function chatTokens(text: string): string[] {
  return text.match(/\s*\S+/g) ?? (text ? [text] : []);
}

/** Whitespace-separated words, counted without building them (a bench sends megabytes of text). */
function wordCount(text: string): number {
  let words = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const space = code <= 0x20 ? code === 0x20 || (code >= 0x09 && code <= 0x0d) : code >= 0xa0 && /\s/.test(text[i]!);
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return words;
}

/**
 * A deterministic, L2-normalised embedding: each lower-cased word adds ±1 to a hashed coordinate, so texts that share
 * words are similar (cosine) and identical texts are identical.
 */
export function stubEmbedding(text: string, dimensions: number): Float32Array {
  const v = new Float32Array(dimensions);
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    const h = createHash('sha1').update(word).digest();
    v[h.readUInt32LE(0) % dimensions]! += h[4]! & 1 ? 1 : -1;
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  if (norm === 0) v[0] = 1;
  else for (let i = 0; i < v.length; i++) v[i]! /= Math.sqrt(norm);
  return v;
}
