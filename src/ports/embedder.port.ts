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

/**
 * The identity of an embedder's vectors: provider, model, dimensions and normalisation, e.g.
 * `hash:kbql-hash-v1/1024/l2` or `openai:text-embedding-3-small/1536/l2`. Two embedders with the same fingerprint make
 * interchangeable vectors; cache keys and the re-embedding switch go by it. Every embedder L2-normalises.
 */
export function embedderFingerprint(info: EmbedderInfo): string {
  const qualified = info.name.includes(':') ? info.name : `hash:${info.name}`;
  return `${qualified}/${info.dimensions}/l2`;
}

/** Whether vectors of `a` and `b` are comparable (same name and dimensions). */
export function sameEmbedder(a: EmbedderInfo, b: EmbedderInfo): boolean {
  return a.name === b.name && a.dimensions === b.dimensions;
}
