import { llamaindexOllama } from '../llamaindex-providers';
import type { Embedder } from '../../ports/embedder.port';
import type { EmbedderInfo } from '../../ports/knowledge-store.port';
import { assertPositiveInteger, finishVectors, withDeadline } from './openai.embedder';
import { ProviderResilience, type ProviderResilienceOptions } from './provider.resilience';

export interface OllamaEmbedderOptions {
  /**
   * Ollama server URL.
   * @default 'http://127.0.0.1:11434'
   */
  host?: string;
  /** Model name, e.g. `nomic-embed-text`. */
  model: string;
  /** Length of the vectors the model returns; every vector is checked against it. */
  dimensions: number;
  /**
   * Deadline of one `embed` call (ms).
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Most texts per `embed` call. LlamaIndex's Ollama adapter posts one text per request (`/api/embeddings`), so this
   * bounds the requests one call makes; larger calls are split.
   * @default 64
   */
  maxBatchSize?: number;
  /**
   * Requests in flight at once within one call.
   * @default 4
   */
  concurrency?: number;
  /**
   * Retries of each failed request (connection errors, 408/429/5xx) inside the deadline, with exponential backoff.
   * @default 2
   */
  maxRetries?: number;
  /**
   * Backoff and circuit breaker (see {@link ProviderResilience}).
   * @default { retryInitialDelayMs: 200, retryMaxDelayMs: 2000, breakerThreshold: 5, breakerHalfOpenAfterMs: 10000 }
   */
  resilience?: Omit<ProviderResilienceOptions, 'provider' | 'retries'>;
}

const PROVIDER = 'ollama';

/** Embeddings from an Ollama server through LlamaIndex's `OllamaEmbedding`, L2-normalised. */
export class OllamaEmbedder implements Embedder {
  readonly info: EmbedderInfo;
  readonly maxBatchSize: number;
  readonly #host: string;
  readonly #model: string;
  readonly #dimensions: number;
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #resilience: ProviderResilience;

  constructor(options: OllamaEmbedderOptions) {
    assertPositiveInteger('dimensions', options.dimensions);
    this.#host = options.host ?? 'http://127.0.0.1:11434';
    this.#model = options.model;
    this.#dimensions = options.dimensions;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#concurrency = options.concurrency ?? 4;
    this.maxBatchSize = options.maxBatchSize ?? 64;
    assertPositiveInteger('timeoutMs', this.#timeoutMs);
    assertPositiveInteger('maxBatchSize', this.maxBatchSize);
    assertPositiveInteger('concurrency', this.#concurrency);
    this.info = Object.freeze({ name: `${PROVIDER}:${options.model}`, dimensions: options.dimensions });
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
    const raw = await this.#resilience.execute(() =>
      withDeadline(PROVIDER, this.#timeoutMs, signal, async (callSignal) => {
        // One client per call: OllamaEmbedding takes no per-request signal, so the call's signal goes into its fetch.
        const client = new (llamaindexOllama().OllamaEmbedding)({
          model: this.#model,
          config: {
            host: this.#host,
            fetch: (input: RequestInfo | URL, init?: RequestInit) => fetch(input, { ...init, signal: callSignal }),
          },
        });
        const vectors: number[][] = new Array<number[]>(texts.length);
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < texts.length && !callSignal.aborted) {
            const i = next++;
            vectors[i] = await this.#resilience.withRetries(callSignal, () => client.getTextEmbedding(texts[i]!));
          }
        };
        await Promise.all(Array.from({ length: Math.min(this.#concurrency, texts.length) }, worker));
        return vectors;
      }),
    );
    return finishVectors(PROVIDER, raw, texts.length, this.#dimensions);
  }
}
