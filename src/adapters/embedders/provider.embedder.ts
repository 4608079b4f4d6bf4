import { AppError } from '../../errors';
import type { Embedder } from '../../ports/embedder.port';
import type { EmbedderInfo } from '../../ports/knowledge-store.port';

export interface ProviderEmbedderOptions {
  /** Provider label for errors and metrics, e.g. `openai`, `ollama`. */
  provider: string;
  model: string;
  /** Vector size the model returns; every response is checked against it. */
  dimensions: number;
  /** Timeout of one provider call, in ms. */
  timeoutMs: number;
  /** Most texts in one provider call. */
  maxBatchSize: number;
}

/**
 * Shared behaviour of networked embedders: a timeout around every call (UPSTREAM_TIMEOUT), transport failures as
 * UPSTREAM_UNAVAILABLE naming the provider (never the key), dimension checks and L2 normalisation.
 */
export abstract class ProviderEmbedder implements Embedder {
  readonly info: EmbedderInfo;
  readonly maxBatchSize: number;

  protected constructor(protected readonly settings: ProviderEmbedderOptions) {
    this.info = { name: `${settings.provider}:${settings.model}`, dimensions: settings.dimensions };
    this.maxBatchSize = settings.maxBatchSize;
  }

  /** One raw vector per text, in order. */
  protected abstract request(texts: string[]): Promise<number[][]>;

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const { provider, timeoutMs, dimensions } = this.settings;
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.maxBatchSize) {
      const batch = texts.slice(i, i + this.maxBatchSize);
      const raw = await this.withTimeout(() => this.request(batch), signal);
      if (!Array.isArray(raw) || raw.length !== batch.length) {
        throw new AppError('UPSTREAM_UNAVAILABLE', `${provider} returned ${Array.isArray(raw) ? raw.length : 'no'} embeddings for ${batch.length} texts.`, { provider });
      }
      for (const vector of raw) {
        if (!Array.isArray(vector) || vector.length !== dimensions) {
          throw new AppError(
            'UPSTREAM_UNAVAILABLE',
            `${provider} model ${this.settings.model} returned ${Array.isArray(vector) ? vector.length : 0}-dimensional vectors; kbql is configured for ${dimensions} (KBQL_EMBEDDING_DIMENSIONS).`,
            { provider, expected: dimensions, received: Array.isArray(vector) ? vector.length : 0 },
          );
        }
        out.push(l2Normalise(vector));
      }
    }
    return out;
  }

  private async withTimeout<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const { provider, timeoutMs } = this.settings;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AppError('UPSTREAM_TIMEOUT', `${provider} embeddings did not answer within ${timeoutMs} ms.`, { provider, timeoutMs })), timeoutMs);
      if (signal) {
        onAbort = () => reject(signal.reason ?? new Error('aborted'));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    try {
      return await Promise.race([work(), guard]);
    } catch (error) {
      if (error instanceof AppError || (signal?.aborted && error === signal.reason)) throw error;
      const status = (error as { status?: unknown })?.status;
      throw new AppError(
        'UPSTREAM_UNAVAILABLE',
        `${provider} embeddings failed${typeof status === 'number' ? ` with HTTP ${status}` : ''}.`,
        { provider, ...(typeof status === 'number' ? { upstreamStatus: status } : {}) },
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
      if (signal && onAbort) signal.removeEventListener('abort', onAbort);
    }
  }
}

export function l2Normalise(values: ArrayLike<number>): Float32Array {
  const out = Float32Array.from(values);
  let norm = 0;
  for (let i = 0; i < out.length; i++) norm += out[i]! * out[i]!;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < out.length; i++) out[i] = out[i]! / norm;
  return out;
}
