import type { EmbedderInfo } from './knowledge-store.port';

/**
 * Turns texts into vectors. Implementations: the offline hashed n-gram embedder (default), OpenAI-compatible
 * endpoints and Ollama. Callers normally go through the batching loader (`modules/ingestion/embedding-batcher.ts`)
 * instead of calling `embed` directly.
 */
export interface Embedder {
  /** Name + dimensions, stored on each collection so a mismatched embedder is refused. */
  readonly info: EmbedderInfo;
  /** Most texts one `embed` call may carry (the provider's batch limit). */
  readonly maxBatchSize: number;
  /**
   * One vector per text, in order, each of `info.dimensions` floats and L2-normalised.
   * Throws AppError UPSTREAM_TIMEOUT / UPSTREAM_UNAVAILABLE when a provider fails.
   */
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]>;
}
