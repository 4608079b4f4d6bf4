import type { OpenAIEmbedding } from '@llamaindex/openai';
import { llamaindexOpenAi } from '../llamaindex-providers';
import { AppError, isAppError } from '../../errors';
import type { Embedder } from '../../ports/embedder.port';
import type { EmbedderInfo } from '../../ports/knowledge-store.port';
import { ProviderResilience, providerStatusOf, type ProviderResilienceOptions } from './provider.resilience';

/** An OpenAI-compatible `/v1/embeddings` endpoint: OpenAI, vLLM, Text Embeddings Inference, LocalAI… */
export interface OpenAIEmbedderOptions {
  /**
   * Base URL of the API, up to and including `/v1`.
   * @default 'https://api.openai.com/v1'
   */
  baseURL?: string;
  /** Bearer token; local servers usually need none. Never logged nor put in errors. */
  apiKey?: string;
  /** Model name as the server knows it, e.g. `text-embedding-3-small`, `BAAI/bge-small-en-v1.5`. */
  model: string;
  /** Length of the vectors the model returns; every vector is checked against it. */
  dimensions: number;
  /**
   * Send `dimensions` in the request, for models that can shorten their vectors (OpenAI text-embedding-3).
   * Most self-hosted servers reject the field, so it is off unless asked for.
   * @default false
   */
  requestDimensions?: boolean;
  /**
   * How vectors come back: `base64` (little-endian float32, the OpenAI SDK's own default: about a quarter of the bytes
   * and none of the JSON number parsing of `float`) or `float` (JSON arrays). With `base64`, a server that ignores the
   * field and answers arrays is read as it answers, and one that refuses the field (HTTP 400 or 422) is asked again
   * with `float`, which this embedder then keeps.
   * @default 'base64'
   */
  encodingFormat?: 'base64' | 'float';
  /**
   * Deadline of one `embed` call, retries included (ms).
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Most texts per request; larger `embed` calls are split.
   * @default 256
   */
  maxBatchSize?: number;
  /**
   * Retries of a failed request (connection errors, 408/429/5xx) inside the deadline, with exponential backoff.
   * @default 2
   */
  maxRetries?: number;
  /**
   * Backoff and circuit breaker (see {@link ProviderResilience}): after `breakerThreshold` consecutive failed calls
   * the embedder fails fast with UPSTREAM_UNAVAILABLE for `breakerHalfOpenAfterMs`, then tries again.
   * @default { retryInitialDelayMs: 200, retryMaxDelayMs: 2000, breakerThreshold: 5, breakerHalfOpenAfterMs: 10000 }
   */
  resilience?: Omit<ProviderResilienceOptions, 'provider' | 'retries'>;
}

const PROVIDER = 'openai';

/** Embeddings through LlamaIndex's `OpenAIEmbedding` (its OpenAI client and token truncation), L2-normalised. */
export class OpenAIEmbedder implements Embedder {
  readonly info: EmbedderInfo;
  readonly maxBatchSize: number;
  readonly #embedding: OpenAIEmbedding;
  readonly #model: string;
  readonly #dimensions: number;
  readonly #requestDimensions: boolean;
  #encodingFormat: 'base64' | 'float';
  readonly #timeoutMs: number;
  readonly #resilience: ProviderResilience;

  constructor(options: OpenAIEmbedderOptions) {
    assertPositiveInteger('dimensions', options.dimensions);
    this.#model = options.model;
    this.#dimensions = options.dimensions;
    this.#requestDimensions = options.requestDimensions ?? false;
    this.#encodingFormat = options.encodingFormat ?? 'base64';
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.maxBatchSize = options.maxBatchSize ?? 256;
    assertPositiveInteger('timeoutMs', this.#timeoutMs);
    assertPositiveInteger('maxBatchSize', this.maxBatchSize);
    this.info = Object.freeze({ name: `${PROVIDER}:${options.model}`, dimensions: options.dimensions });
    this.#embedding = new (llamaindexOpenAi().OpenAIEmbedding)({
      model: options.model,
      // Explicit values, so the client never falls back to OPENAI_API_KEY / OPENAI_BASE_URL from the environment.
      apiKey: options.apiKey ?? 'no-key',
      baseURL: options.baseURL ?? 'https://api.openai.com/v1',
      // Retries are kbql's (backoff + circuit breaker below), not the client's.
      maxRetries: 0,
      timeout: this.#timeoutMs,
      embedBatchSize: this.maxBatchSize,
      ...(this.#requestDimensions ? { dimensions: options.dimensions } : {}),
    });
    this.#resilience = new ProviderResilience({ ...options.resilience, provider: PROVIDER, retries: options.maxRetries ?? 2 });
  }

  /** The circuit breaker's state: `open` while the provider is considered down (calls fail fast). */
  get circuitState(): ProviderResilience['state'] {
    return this.#resilience.state;
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.maxBatchSize) {
      out.push(...(await this.#embedBatch(texts.slice(i, i + this.maxBatchSize), signal)));
    }
    return out;
  }

  async #embedBatch(texts: string[], signal: AbortSignal | undefined): Promise<Float32Array[]> {
    const input = this.#embedding.truncateMaxTokens(texts);
    // Breaker outside the deadline (a call that times out counts as a failure), retries inside it.
    const raw = await this.#resilience.execute(() =>
      withDeadline(PROVIDER, this.#timeoutMs, signal, (callSignal) =>
        this.#resilience.withRetries(callSignal, async (attemptSignal) => {
          const format = this.#encodingFormat;
          try {
            return await this.#request(input, format, attemptSignal);
          } catch (error) {
            // A compatible server that does not know base64: ask again in floats, and keep asking that way.
            if (format !== 'base64' || !REFUSED_FIELD.has(providerStatusOf(error) ?? 0)) throw error;
            this.#encodingFormat = 'float';
            return this.#request(input, 'float', attemptSignal);
          }
        }),
      ),
    );
    return finishVectors(PROVIDER, raw, texts.length, this.#dimensions);
  }

  /** One `/embeddings` call; each vector as the server sent it: a base64 string decoded, or a JSON array. */
  async #request(input: string[], format: 'base64' | 'float', signal: AbortSignal): Promise<(ArrayLike<number> | null)[]> {
    const session = await this.#embedding.session;
    const response = await session.embeddings.create(
      {
        model: this.#model,
        input,
        // Given explicitly, so that the SDK hands the answer over as it came (it decodes base64 only when it chose it).
        encoding_format: format,
        ...(this.#requestDimensions ? { dimensions: this.#dimensions } : {}),
      },
      { signal },
    );
    const data = Array.isArray(response?.data) ? [...response.data] : [];
    return data
      .sort((a, b) => a.index - b.index)
      .map((d) => {
        const embedding: unknown = d.embedding;
        return typeof embedding === 'string' ? decodeFloat32(embedding) : Array.isArray(embedding) ? (embedding as number[]) : null;
      });
  }
}

/** Statuses with which a server refuses a request field it does not support. */
const REFUSED_FIELD: ReadonlySet<number> = new Set([400, 422]);

/**
 * A base64 string of little-endian float32 values as a Float32Array of its own (null when the byte count is not a
 * multiple of 4: a malformed answer, which the caller reports with the expected dimensions).
 */
export function decodeFloat32(base64: string): Float32Array | null {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.byteLength % 4 !== 0) return null;
  const out = new Float32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
  else for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------------------------
// Shared by the networked embedders (OpenAI-compatible and Ollama).

/**
 * Runs `call` with a signal that aborts at the deadline or when the caller's signal aborts, whichever comes first, and
 * settles as soon as either happens even if the client library ignores the signal. The timer is always cleared.
 * Deadline → AppError UPSTREAM_TIMEOUT; caller abort → the caller's reason; any other failure → {@link upstreamError}.
 */
export async function withDeadline<T>(
  provider: string,
  timeoutMs: number,
  callerSignal: AbortSignal | undefined,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  callerSignal?.throwIfAborted();
  const controller = new AbortController();
  let timedOut = false;
  let rejectAborted: (reason: unknown) => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    rejectAborted = reject;
  });
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`deadline of ${timeoutMs} ms`));
    rejectAborted(controller.signal.reason);
  }, timeoutMs);
  const onCallerAbort = (): void => {
    controller.abort(callerSignal?.reason);
    rejectAborted(callerSignal?.reason);
  };
  callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
  try {
    return await Promise.race([call(controller.signal), aborted]);
  } catch (error) {
    if (timedOut) {
      throw new AppError('UPSTREAM_TIMEOUT', `Embedding provider ${provider} did not answer within ${timeoutMs} ms.`, {
        provider,
        timeoutMs,
      });
    }
    if (callerSignal?.aborted) throw callerSignal.reason;
    throw upstreamError(provider, error);
  } finally {
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onCallerAbort);
  }
}

/**
 * Maps a client error to an AppError: timeouts to UPSTREAM_TIMEOUT, everything else (refused connection, HTTP error,
 * malformed answer) to UPSTREAM_UNAVAILABLE. Details carry the provider and the HTTP status, never the upstream
 * message (it may echo credentials); the original error stays as `cause` for server-side logs.
 */
export function upstreamError(provider: string, error: unknown): AppError {
  if (isAppError(error)) return error;
  // The OpenAI client's errors carry `status`, the Ollama client's `status_code`.
  const status = providerStatusOf(error);
  const name = error instanceof Error ? `${error.name} ${error.constructor.name}` : '';
  if (/timeout/i.test(name) || status === 408 || status === 504) {
    return new AppError('UPSTREAM_TIMEOUT', `Embedding provider ${provider} timed out.`, { provider, status }, { cause: error });
  }
  const what = status === null ? 'could not be reached or answered unexpectedly' : `answered HTTP ${status}`;
  return new AppError('UPSTREAM_UNAVAILABLE', `Embedding provider ${provider} ${what}.`, { provider, status }, { cause: error });
}

/**
 * Checks count, length and values of provider vectors and L2-normalises them (a Float32Array given is normalised in
 * place and returned: the caller's own decoded copy).
 */
export function finishVectors(
  provider: string,
  raw: readonly (ArrayLike<number> | null | undefined)[],
  expectedCount: number,
  dimensions: number,
): Float32Array[] {
  if (raw.length !== expectedCount) {
    throw new AppError(
      'UPSTREAM_UNAVAILABLE',
      `Embedding provider ${provider} returned ${raw.length} vectors for ${expectedCount} texts.`,
      { provider, expected: expectedCount, received: raw.length },
    );
  }
  return raw.map((vector) => {
    const length = vector?.length ?? 0;
    if (!vector || length !== dimensions) {
      throw new AppError(
        'UPSTREAM_UNAVAILABLE',
        `Embedding provider ${provider} returned vectors of ${length} dimensions; ${dimensions} are configured. ` +
          'Fix the configured dimensions or the model.',
        { provider, expectedDimensions: dimensions, receivedDimensions: length },
      );
    }
    // A vector decoded from base64 is already this call's own Float32Array: normalised in place.
    const out = vector instanceof Float32Array ? vector : Float32Array.from(vector);
    let sum = 0;
    for (const x of out) sum += x * x;
    if (!Number.isFinite(sum) || sum === 0) {
      throw new AppError('UPSTREAM_UNAVAILABLE', `Embedding provider ${provider} returned a zero or non-finite vector.`, {
        provider,
      });
    }
    const norm = Math.sqrt(sum);
    for (let i = 0; i < out.length; i++) out[i]! /= norm;
    return out;
  });
}

export function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}
