import DataLoader from 'dataloader';
import type { Embedder } from '../../ports/embedder.port';

export interface EmbeddingBatcherOptions {
  /**
   * How long the first text of a batch waits for others before the provider is called, in ms. Texts requested
   * within the window (from one request or many concurrent ones) share one provider call.
   * @default 2
   */
  windowMs?: number;
  /** Called after each provider call with the number of texts and its duration in ms (metrics hook). */
  onBatch?: (size: number, durationMs: number) => void;
}

/**
 * One shared DataLoader in front of the embedder: all texts requested within a short window become one provider
 * call, split at the provider's batch limit. Safe to share between users: an embedding is a pure function of its
 * text and nothing is cached here (caching keys on the embedder fingerprint elsewhere).
 */
export class EmbeddingBatcher {
  private readonly loader: DataLoader<string, Float32Array>;

  constructor(
    private readonly embedder: Embedder,
    private readonly options: EmbeddingBatcherOptions = {},
  ) {
    const windowMs = options.windowMs ?? 2;
    this.loader = new DataLoader<string, Float32Array>((texts) => this.embedBatch(texts), {
      cache: false,
      maxBatchSize: embedder.maxBatchSize,
      batchScheduleFn: (callback) => {
        setTimeout(callback, windowMs);
      },
    });
  }

  embed(text: string): Promise<Float32Array> {
    return this.loader.load(text);
  }

  async embedMany(texts: readonly string[]): Promise<Float32Array[]> {
    const results = await this.loader.loadMany(texts);
    return results.map((result) => {
      if (result instanceof Error) throw result;
      return result;
    });
  }

  private async embedBatch(texts: readonly string[]): Promise<(Float32Array | Error)[]> {
    // Identical texts in one window are sent once.
    const unique = [...new Set(texts)];
    const started = performance.now();
    try {
      const vectors = await this.embedder.embed(unique);
      if (vectors.length !== unique.length) {
        throw new Error(`embedder returned ${vectors.length} vectors for ${unique.length} texts`);
      }
      this.options.onBatch?.(unique.length, performance.now() - started);
      const byText = new Map(unique.map((t, i) => [t, vectors[i]!]));
      return texts.map((t) => byText.get(t)!);
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      return texts.map(() => failure);
    }
  }
}
