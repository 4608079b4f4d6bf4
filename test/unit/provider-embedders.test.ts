import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { OllamaEmbedder } from '../../src/adapters/embedders/ollama.embedder';
import { OpenAIEmbedder } from '../../src/adapters/embedders/openai.embedder';
import { isProviderOutage, isTransientProviderError } from '../../src/adapters/embedders/provider.resilience';
import { AppError } from '../../src/errors';
import { OpenAiStub } from '../helpers/openai-stub';

const DIMS = 8;
const API_KEY = 'sk-test-secret-123';

/**
 * `floatsOnly`: a server that ignores `encoding_format` and always answers JSON arrays; `refusesBase64`: one that
 * answers HTTP 400 to `encoding_format: "base64"`; `shortBase64`: base64 vectors cut by one byte.
 */
type Mode = 'ok' | 'hang' | 'error500' | 'wrongDims' | 'failOnce' | 'floatsOnly' | 'refusesBase64' | 'shortBase64';

/** A stub of the OpenAI `/v1/embeddings` and Ollama `/api/embeddings` + `/api/embed` endpoints on 127.0.0.1:0. */
class StubServer {
  mode: Mode = 'ok';
  requests: { path: string; body: Record<string, unknown>; authorization: string | undefined }[] = [];
  #server: Server = createServer((req, res) => void this.#handle(req, res));
  #failed = false;

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  reset(mode: Mode): void {
    this.mode = mode;
    this.requests = [];
    this.#failed = false;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = (raw ? JSON.parse(raw) : {}) as Record<string, unknown>;
    this.requests.push({ path: req.url ?? '', body, authorization: req.headers.authorization });
    if (this.mode === 'hang') return; // never answers; the test's stop() closes the socket
    if (this.mode === 'error500' || (this.mode === 'failOnce' && !this.#failed)) {
      this.#failed = true;
      res.writeHead(500, { 'content-type': 'application/json', 'retry-after-ms': '5' });
      res.end(JSON.stringify({ error: { message: 'model crashed', type: 'server_error' } }));
      return;
    }
    const dims = this.mode === 'wrongDims' ? DIMS + 1 : DIMS;
    const json = (status: number, payload: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    const base64 = body['encoding_format'] === 'base64' && this.mode !== 'floatsOnly';
    if (req.url === '/v1/embeddings' && base64 && this.mode === 'refusesBase64') {
      json(400, { error: { message: "encoding_format: unsupported value 'base64'", type: 'invalid_request_error' } });
    } else if (req.url === '/v1/embeddings') {
      const input = Array.isArray(body['input']) ? (body['input'] as string[]) : [String(body['input'])];
      const data = input.map((text, index) => {
        const vector = fakeVector(text, dims);
        const bytes = Buffer.from(Float32Array.from(vector).buffer);
        const embedding = base64 ? (this.mode === 'shortBase64' ? bytes.subarray(1) : bytes).toString('base64') : vector;
        return { object: 'embedding', index, embedding };
      });
      // Out of order on purpose: clients must sort by index.
      json(200, { object: 'list', data: data.reverse(), model: body['model'], usage: { prompt_tokens: 1, total_tokens: 1 } });
    } else if (req.url === '/api/embeddings') {
      json(200, { embedding: fakeVector(String(body['prompt']), dims) });
    } else if (req.url === '/api/embed') {
      const input = Array.isArray(body['input']) ? (body['input'] as string[]) : [String(body['input'])];
      json(200, { model: body['model'], embeddings: input.map((t) => fakeVector(t, dims)) });
    } else {
      json(404, { error: 'not found' });
    }
  }
}

/** A deterministic, not normalised vector that differs per text. */
function fakeVector(text: string, dims: number): number[] {
  return Array.from({ length: dims }, (_, i) => ((text.charCodeAt(i % text.length) || 1) % 7) + i + 1);
}

function norm(v: Float32Array): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

async function expectAppError(promise: Promise<unknown>, code: string): Promise<AppError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof AppError, `expected AppError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  return error;
}

describe('OpenAIEmbedder against a stub /v1/embeddings', () => {
  const stub = new StubServer();
  let base = '';
  before(async () => {
    base = await stub.start();
  });
  after(() => stub.stop());
  beforeEach(() => stub.reset('ok'));

  const make = (extra: Partial<ConstructorParameters<typeof OpenAIEmbedder>[0]> = {}): OpenAIEmbedder =>
    new OpenAIEmbedder({ baseURL: `${base}/v1`, model: 'test-model', dimensions: DIMS, timeoutMs: 2000, maxRetries: 0, ...extra });

  it('returns one L2-normalised vector per text, in input order', async () => {
    const embedder = make({ apiKey: API_KEY });
    assert.deepEqual(embedder.info, { name: 'openai:test-model', dimensions: DIMS });
    const [a, b, a2] = await embedder.embed(['alpha', 'beta', 'alpha']);
    for (const v of [a!, b!, a2!]) {
      assert.equal(v.length, DIMS);
      assert.ok(Math.abs(norm(v) - 1) < 1e-6);
    }
    assert.deepEqual(a, a2);
    assert.notDeepEqual(a, b);
    assert.equal(stub.requests.length, 1);
    const request = stub.requests[0]!;
    assert.equal(request.path, '/v1/embeddings');
    assert.deepEqual(request.body['input'], ['alpha', 'beta', 'alpha']);
    assert.equal(request.body['model'], 'test-model');
    assert.equal(request.body['encoding_format'], 'base64');
    assert.equal(request.body['dimensions'], undefined);
    assert.equal(request.authorization, `Bearer ${API_KEY}`);
  });

  it('reads the same vectors from base64, from a server that ignores the field, and after a refusal of it', async () => {
    const expected = (text: string): number[] => {
      const v = Float32Array.from(fakeVector(text, DIMS));
      const n = norm(v);
      return Array.from(v, (x) => x / n);
    };
    const close = (actual: Float32Array, text: string) =>
      expected(text).forEach((x, i) => assert.ok(Math.abs(actual[i]! - x) < 1e-6, `${text}[${i}]: ${actual[i]} vs ${x}`));
    for (const mode of ['ok', 'floatsOnly', 'refusesBase64'] as const) {
      stub.reset(mode);
      const embedder = make();
      const [a, b] = await embedder.embed(['alpha', 'beta']);
      close(a!, 'alpha');
      close(b!, 'beta');
      // A second call: the refused field is not sent again.
      await embedder.embed(['gamma']);
      const formats = stub.requests.map((r) => r.body['encoding_format']);
      assert.deepEqual(formats, mode === 'refusesBase64' ? ['base64', 'float', 'float'] : ['base64', 'base64'], mode);
    }
  });

  it('asks for floats from the start when configured to', async () => {
    const embedder = make({ encodingFormat: 'float' });
    const [a] = await embedder.embed(['alpha']);
    assert.ok(Math.abs(norm(a!) - 1) < 1e-6);
    assert.equal(stub.requests[0]!.body['encoding_format'], 'float');
  });

  it('refuses a base64 vector whose byte count is not a whole number of floats', async () => {
    stub.reset('shortBase64');
    const error = await expectAppError(make().embed(['alpha']), 'UPSTREAM_UNAVAILABLE');
    assert.equal(error.details['expectedDimensions'], DIMS);
  });

  it('does not fall back to floats on other refusals (a wrong key stays wrong)', async () => {
    stub.reset('error500');
    await expectAppError(make().embed(['alpha']), 'UPSTREAM_UNAVAILABLE');
    assert.deepEqual(
      stub.requests.map((r) => r.body['encoding_format']),
      ['base64'],
    );
  });

  it('splits calls larger than maxBatchSize and sends dimensions only when asked', async () => {
    const embedder = make({ maxBatchSize: 2, requestDimensions: true });
    const vectors = await embedder.embed(['a', 'b', 'c', 'd', 'e']);
    assert.equal(vectors.length, 5);
    assert.deepEqual(
      stub.requests.map((r) => (r.body['input'] as string[]).length),
      [2, 2, 1],
    );
    assert.equal(stub.requests[0]!.body['dimensions'], DIMS);
  });

  it('maps a hanging server to UPSTREAM_TIMEOUT at the deadline', async () => {
    stub.reset('hang');
    const started = Date.now();
    const error = await expectAppError(make({ timeoutMs: 150, maxRetries: 3 }).embed(['x']), 'UPSTREAM_TIMEOUT');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 140 && elapsed < 1500, `took ${elapsed} ms`);
    assert.equal(error.details['provider'], 'openai');
  });

  it('maps HTTP 500 to UPSTREAM_UNAVAILABLE with the provider and status, never the key', async () => {
    stub.reset('error500');
    const error = await expectAppError(make({ apiKey: API_KEY }).embed(['x']), 'UPSTREAM_UNAVAILABLE');
    assert.equal(error.details['provider'], 'openai');
    assert.equal(error.details['status'], 500);
    assert.ok(!JSON.stringify({ message: error.message, details: error.details }).includes(API_KEY));
  });

  it('retries a failed request within the deadline', async () => {
    stub.reset('failOnce');
    const [v] = await make({ maxRetries: 1 }).embed(['x']);
    assert.equal(v!.length, DIMS);
    assert.equal(stub.requests.length, 2);
  });

  it('refuses vectors whose length differs from the configured dimensions', async () => {
    stub.reset('wrongDims');
    const error = await expectAppError(make().embed(['x']), 'UPSTREAM_UNAVAILABLE');
    assert.match(error.message, /9 dimensions; 8 are configured/);
    assert.equal(error.details['receivedDimensions'], DIMS + 1);
  });

  it('maps a refused connection to UPSTREAM_UNAVAILABLE', async () => {
    const closed = new StubServer();
    const url = await closed.start();
    await closed.stop();
    const embedder = new OpenAIEmbedder({ baseURL: `${url}/v1`, model: 'm', dimensions: DIMS, timeoutMs: 2000, maxRetries: 0 });
    const error = await expectAppError(embedder.embed(['x']), 'UPSTREAM_UNAVAILABLE');
    assert.equal(error.details['provider'], 'openai');
  });

  it("rejects with the caller's abort reason when the caller aborts", async () => {
    stub.reset('hang');
    const controller = new AbortController();
    const pending = make({ timeoutMs: 5000 }).embed(['x'], controller.signal);
    setTimeout(() => controller.abort(new Error('client went away')), 30);
    await assert.rejects(pending, /client went away/);
  });
});

describe('OllamaEmbedder against a stub Ollama server', () => {
  const stub = new StubServer();
  let host = '';
  before(async () => {
    host = await stub.start();
  });
  after(() => stub.stop());
  beforeEach(() => stub.reset('ok'));

  const make = (extra: Partial<ConstructorParameters<typeof OllamaEmbedder>[0]> = {}): OllamaEmbedder =>
    new OllamaEmbedder({ host, model: 'nomic-embed-text', dimensions: DIMS, timeoutMs: 2000, ...extra });

  it('returns one L2-normalised vector per text, in order, one /api/embeddings request each', async () => {
    const embedder = make();
    assert.deepEqual(embedder.info, { name: 'ollama:nomic-embed-text', dimensions: DIMS });
    const texts = ['one', 'two', 'three', 'four', 'five'];
    const vectors = await embedder.embed(texts);
    assert.equal(vectors.length, texts.length);
    vectors.forEach((v, i) => {
      assert.ok(Math.abs(norm(v) - 1) < 1e-6);
      const expected = fakeVector(texts[i]!, DIMS);
      const n = Math.sqrt(expected.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(v[0]! - expected[0]! / n) < 1e-6, 'vector belongs to its text');
    });
    assert.equal(stub.requests.length, texts.length);
    assert.ok(stub.requests.every((r) => r.path === '/api/embeddings' && r.body['model'] === 'nomic-embed-text'));
    assert.deepEqual(stub.requests.map((r) => r.body['prompt']).sort(), [...texts].sort());
  });

  it('maps a hanging server to UPSTREAM_TIMEOUT at the deadline', async () => {
    stub.reset('hang');
    const started = Date.now();
    const error = await expectAppError(make({ timeoutMs: 150 }).embed(['x']), 'UPSTREAM_TIMEOUT');
    assert.ok(Date.now() - started < 1500);
    assert.equal(error.details['provider'], 'ollama');
  });

  it('maps HTTP 500 to UPSTREAM_UNAVAILABLE with the provider and status', async () => {
    stub.reset('error500');
    const error = await expectAppError(make().embed(['x']), 'UPSTREAM_UNAVAILABLE');
    assert.equal(error.details['provider'], 'ollama');
    assert.equal(error.details['status'], 500);
  });

  it('refuses vectors whose length differs from the configured dimensions', async () => {
    stub.reset('wrongDims');
    const error = await expectAppError(make().embed(['x']), 'UPSTREAM_UNAVAILABLE');
    assert.equal(error.details['expectedDimensions'], DIMS);
  });
});

describe('provider resilience: retries with backoff, circuit breaker (OpenAI-compatible stub)', () => {
  let stub: OpenAiStub;
  before(async () => {
    stub = await OpenAiStub.start({ dimensions: DIMS });
  });
  after(() => stub.close());
  beforeEach(() => stub.reset());

  const make = (extra: Partial<ConstructorParameters<typeof OpenAIEmbedder>[0]> = {}): OpenAIEmbedder =>
    new OpenAIEmbedder({
      baseURL: stub.baseUrl,
      model: 'stub-embed',
      dimensions: DIMS,
      timeoutMs: 2000,
      maxRetries: 2,
      resilience: { retryInitialDelayMs: 5, retryMaxDelayMs: 20, breakerThreshold: 2, breakerHalfOpenAfterMs: 150 },
      ...extra,
    });
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('retries 500s and a reset connection, then succeeds within the same call', async () => {
    stub.failNext(500, 1, { routes: ['embeddings'] }).resetNext(1, { routes: ['embeddings'] });
    const embedder = make();
    const [v] = await embedder.embed(['x']);
    assert.equal(v!.length, DIMS);
    assert.equal(stub.count('embeddings'), 3, 'two failed attempts, then the one that succeeded');
    assert.equal(embedder.circuitState, 'closed');
  });

  it('opens the circuit after consecutive failed calls: then fails fast without calling the provider, and heals', async () => {
    stub.failNext(503, 1000, { routes: ['embeddings'] });
    const embedder = make();
    for (let call = 1; call <= 2; call++) {
      const error = await expectAppError(embedder.embed([`q${call}`]), 'UPSTREAM_UNAVAILABLE');
      assert.equal(error.details['status'], 503);
      assert.equal(stub.count('embeddings'), call * 3, 'each call: first attempt + 2 retries');
    }
    assert.equal(embedder.circuitState, 'open');
    const fast = await expectAppError(embedder.embed(['q3']), 'UPSTREAM_UNAVAILABLE');
    assert.equal(fast.details['circuit'], 'open');
    assert.match(fast.message, /circuit open/);
    assert.equal(stub.count('embeddings'), 6, 'the open circuit did not call the provider');

    stub.reset(); // the provider heals
    await pause(200); // past breakerHalfOpenAfterMs: the next call is the trial
    const [v] = await embedder.embed(['q4']);
    assert.equal(v!.length, DIMS);
    assert.equal(embedder.circuitState, 'closed');
    assert.equal(stub.count('embeddings'), 1);
  });

  it('a failed trial call re-opens the circuit', async () => {
    stub.failNext(500, 1000, { routes: ['embeddings'] });
    const embedder = make({ maxRetries: 0 });
    await expectAppError(embedder.embed(['a']), 'UPSTREAM_UNAVAILABLE');
    await expectAppError(embedder.embed(['b']), 'UPSTREAM_UNAVAILABLE');
    assert.equal(embedder.circuitState, 'open');
    await pause(200);
    const trial = await expectAppError(embedder.embed(['c']), 'UPSTREAM_UNAVAILABLE');
    assert.equal(trial.details['status'], 500, 'the trial reached the provider');
    assert.equal(embedder.circuitState, 'open');
    assert.equal(stub.count('embeddings'), 3);
  });

  it('calls that time out count as failures and open the circuit', async () => {
    stub.hangNext(2, { routes: ['embeddings'] });
    const embedder = make({ timeoutMs: 150 });
    await expectAppError(embedder.embed(['a']), 'UPSTREAM_TIMEOUT');
    await expectAppError(embedder.embed(['b']), 'UPSTREAM_TIMEOUT');
    assert.equal(embedder.circuitState, 'open');
    const fast = await expectAppError(embedder.embed(['c']), 'UPSTREAM_UNAVAILABLE');
    assert.equal(fast.details['circuit'], 'open');
    assert.equal(stub.count('embeddings'), 2);
  });

  it('a 4xx (wrong key) is neither retried nor counted against the provider', async () => {
    const keyed = await OpenAiStub.start({ dimensions: DIMS, apiKey: 'right-key' });
    try {
      const embedder = new OpenAIEmbedder({
        baseURL: keyed.baseUrl,
        apiKey: 'wrong-key',
        model: 'stub-embed',
        dimensions: DIMS,
        timeoutMs: 2000,
        resilience: { breakerThreshold: 1 },
      });
      for (let i = 0; i < 3; i++) {
        const error = await expectAppError(embedder.embed(['x']), 'UPSTREAM_UNAVAILABLE');
        assert.equal(error.details['status'], 401);
      }
      assert.equal(keyed.count('embeddings'), 3, 'one request per call, no retry, no open circuit');
      assert.equal(embedder.circuitState, 'closed');
    } finally {
      await keyed.close();
    }
  });

  it("the caller's abort is not counted against the provider", async () => {
    stub.hangNext(3, { routes: ['embeddings'] });
    const embedder = make({ timeoutMs: 5000 });
    for (let i = 0; i < 3; i++) {
      const controller = new AbortController();
      const pending = embedder.embed(['x'], controller.signal);
      await stub.waitForRequests(i + 1, { route: 'embeddings' });
      controller.abort(new Error('client went away'));
      await assert.rejects(pending, /client went away/);
    }
    assert.equal(embedder.circuitState, 'closed');
  });
});

describe('provider error classification', () => {
  const withStatus = (status: number) => Object.assign(new Error(`HTTP ${status}`), { status });
  it('retries connection failures, 408, 429 and 5xx; never other 4xx or kbql errors', () => {
    for (const status of [408, 429, 500, 502, 503]) assert.equal(isTransientProviderError(withStatus(status)), true, String(status));
    for (const status of [400, 401, 403, 404, 422]) assert.equal(isTransientProviderError(withStatus(status)), false, String(status));
    assert.equal(isTransientProviderError(Object.assign(new Error('x'), { status_code: 503 })), true, 'Ollama errors');
    assert.equal(
      isTransientProviderError(new TypeError('fetch failed', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) })),
      true,
    );
    assert.equal(isTransientProviderError(new AppError('UPSTREAM_UNAVAILABLE')), false);
    assert.equal(isTransientProviderError(new Error('something else')), false);
  });
  it('counts timeouts, unreachable providers and 408/429/5xx as outages; not 4xx, malformed answers or an open circuit', () => {
    assert.equal(isProviderOutage(new AppError('UPSTREAM_TIMEOUT')), true);
    assert.equal(isProviderOutage(new AppError('UPSTREAM_UNAVAILABLE', 'x', { provider: 'p', status: null })), true);
    assert.equal(isProviderOutage(new AppError('UPSTREAM_UNAVAILABLE', 'x', { provider: 'p', status: 503 })), true);
    assert.equal(isProviderOutage(new AppError('UPSTREAM_UNAVAILABLE', 'x', { provider: 'p', status: 401 })), false);
    assert.equal(isProviderOutage(new AppError('UPSTREAM_UNAVAILABLE', 'x', { provider: 'p', expected: 2, received: 1 })), false);
    assert.equal(isProviderOutage(new AppError('UPSTREAM_UNAVAILABLE', 'x', { provider: 'p', circuit: 'open', status: null })), false);
    assert.equal(isProviderOutage(new Error('abort')), false);
  });
});
