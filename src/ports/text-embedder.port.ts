/**
 * What ingestion needs from the embedding side: many texts in, one vector each out. The app gives it the cached,
 * batched embedder (`modules/ingestion/cached-embedder.ts` in front of `embedding-batcher.ts`), never a provider
 * directly.
 */
export interface TextEmbedder {
  /**
   * One vector per text, in order, each of the embedder's dimensions and L2-normalised. Throws what the embedder
   * throws (AppError UPSTREAM_TIMEOUT / UPSTREAM_UNAVAILABLE when a provider fails).
   */
  embedMany(texts: readonly string[]): Promise<Float32Array[]>;
}
