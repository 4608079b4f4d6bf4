/** What the Weaviate store reads from a query and from Weaviate's hybrid score explanation. */

/** Weaviate's `en` stopwords: removed from BM25 queries, so a query of only these has no keyword side. */
const STOPWORDS = new Set(
  'a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with'.split(' '),
);

/** Query terms as Weaviate's `word` tokenization and `en` stopwords see them. */
export function queryTerms(query: string): string[] {
  return (query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((t) => !STOPWORDS.has(t));
}

/**
 * Each side's raw score from a relativeScoreFusion `explainScore`, whose lines read
 * `Hybrid (Result Set vector,hybridVector) Document <id>: original score 0.87, normalized score: 0.4` (the vector
 * side's original score is 1 - cosine distance) and `Hybrid (Result Set keyword,bm25) …` (BM25).
 */
export function parseHybridExplain(explain: string): { vector: number | null; keyword: number | null } {
  const out: { vector: number | null; keyword: number | null } = { vector: null, keyword: null };
  const pattern = /Result Set (vector|keyword)[^)]*\) Document [^:]*: original score ([-+0-9.eE]+|NaN)/g;
  for (let m = pattern.exec(explain); m; m = pattern.exec(explain)) {
    const value = Number(m[2]);
    if (Number.isFinite(value)) out[m[1] as 'vector' | 'keyword'] = value;
  }
  return out;
}
