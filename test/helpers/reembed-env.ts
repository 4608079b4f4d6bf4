/** Embedder A (`default`): hash, 256 dimensions; embedder B (`b`): hash, 128 dimensions. For the re-embedding tests. */
export const REEMBED_ENV = {
  KBQL_EMBEDDING_DIMENSIONS: '256',
  KBQL_EMBEDDERS: JSON.stringify({ b: { provider: 'hash', dimensions: 128 } }),
} as const;
