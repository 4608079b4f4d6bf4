import DataLoader from 'dataloader';
import type { Embedder } from '../../ports/embedder.port';

export interface EmbeddingBatcherOptions {
  /**
   * How long the first text of a batch waits for others before the provider is called (ms). Texts requested within
   * the window, by one request or by many concurrent ones, share one provider call.
   * @default 2
   */
  windowMs?: number;
  /**
   * Called after each provider call, successful or not, with the number of distinct texts sent and the call's
   * duration in ms (a metrics hook; an exception thrown here is ignored).
   */
  onBatch?: (size: number, durationMs: number) => void;
}

/**
 * One DataLoader, shared by all requests, in front of the embedder: every text requested within `windowMs` goes into
 * one provider call, split at the embedder's `maxBatchSize`, identical texts sent once. Sharing across users is safe
 * here (unlike per-request loaders of user data): an embedding is a pure function of its text. Nothing is cached.
 * A failed provider call rejects the callers of that batch only.
 */
export class EmbeddingBatcher {
  readonly #loader: DataLoader<string, Float32Array>;
  readonly #embedder: Embedder;
  readonly #onBatch: ((size: number, durationMs: number) => void) | undefined;

  constructor(embedder: Embedder, options: EmbeddingBatcherOptions = {}) {
    const windowMs = options.windowMs ?? 2;
    if (!(windowMs >= 0)) throw new RangeError(`windowMs must be >= 0, got ${windowMs}`);
    this.#embedder = embedder;
    this.#onBatch = options.onBatch;
    this.#loader = new DataLoader<string, Float32Array>((texts) => this.#embedBatch(texts), {
      cache: false,
      maxBatchSize: embedder.maxBatchSize,
      batchScheduleFn: (dispatch) => {
        // After the window, one more turn of the event loop: requests whose bytes have already arrived get to join
        // (under load they arrive together but are processed one after another, each past the timer).
        setTimeout(() => setImmediate(dispatch), windowMs);
      },
    });
  }

  /** The embedder's name and dimensions. */
  get info(): Embedder['info'] {
    return this.#embedder.info;
  }

  embed(text: string): Promise<Float32Array> {
    return this.#loader.load(text);
  }

  /** Vectors in the order of `texts`; rejects with the first failure. */
  async embedMany(texts: readonly string[]): Promise<Float32Array[]> {
    const results = await this.#loader.loadMany(texts);
    return results.map((result) => {
      if (result instanceof Error) throw result;
      return result;
    });
  }

  /** DataLoader's batch function: one vector or one Error per key, in key order. */
  async #embedBatch(texts: readonly string[]): Promise<(Float32Array | Error)[]> {
    const unique = [...new Set(texts)];
    const started = performance.now();
    try {
      const vectors = await this.#embedder.embed(unique);
      if (vectors.length !== unique.length) {
        throw new Error(`embedder ${this.#embedder.info.name} returned ${vectors.length} vectors for ${unique.length} texts`);
      }
      const byText = new Map(unique.map((text, i) => [text, vectors[i]!]));
      return texts.map((text) => byText.get(text)!);
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      return texts.map(() => failure);
    } finally {
      try {
        this.#onBatch?.(unique.length, performance.now() - started);
      } catch {
        // A metrics hook must not fail embeddings.
      }
    }
  }
}
