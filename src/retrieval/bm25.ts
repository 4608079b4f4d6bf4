/**
 * BM25 scoring of candidate chunks with a title field, and RM3-style pseudo-relevance feedback: the keyword
 * ranking the embedded store uses on top of the candidates its full-text index finds. Pure: the caller supplies the
 * stemmer (the same one its index uses), the collection statistics and the candidate texts.
 */
import { STOPWORDS, tokenize } from './tokenize';

/** Tuning of {@link scoreBm25} and {@link feedbackQuery}. */
export interface Bm25Params {
  /** Term-frequency saturation. @default 0.9 (Anserini's default) */
  k1: number;
  /** Length normalisation. @default 0.4 (Anserini's default) */
  b: number;
  /** Weight of the document title's terms added to every chunk of the document (a second field). @default 1 */
  titleWeight: number;
  /** Feedback chunks taken from the first ranking (0: no feedback). @default 5 */
  feedbackChunks: number;
  /** Expansion terms taken from the feedback chunks. @default 20 */
  feedbackTerms: number;
  /** Share of the query weight the expansion terms get. @default 0.4 */
  feedbackWeight: number;
}

/**
 * Anserini's k1/b; the title weight and the feedback settings were picked on SciFact's training claims from a small
 * grid (see docs/how-it-works.md); the bench cross-validates the fusion weight on top of them.
 */
export const DEFAULT_BM25_PARAMS: Readonly<Bm25Params> = Object.freeze({
  k1: 0.9,
  b: 0.4,
  titleWeight: 1,
  feedbackChunks: 5,
  feedbackTerms: 20,
  feedbackWeight: 0.4,
});

/** A stemmed term of a query with its weight and one surface form (what a full-text index is queried with). */
export interface QueryTerm {
  term: string;
  surface: string;
  weight: number;
}

/** Collection-wide statistics BM25 needs: number of chunks, their mean length in tokens, document frequencies. */
export interface Bm25Stats {
  chunkCount: number;
  meanLength: number;
  documentFrequency(term: QueryTerm): number;
}

/** A candidate chunk, analysed once: its term counts (body plus weighted title) and its length in tokens. */
export interface AnalyzedChunk {
  counts: Map<string, number>;
  length: number;
}

/** Stemmed term → one surface form seen (what feedback terms are sent back to the full-text index as). */
export type Surfaces = Map<string, string>;

export type Stemmer = (word: string) => string;

/**
 * The query's terms: tokens minus stopwords (all tokens when every one is a stopword), stemmed, each counted once (a
 * claim that repeats a term restates it; counting it twice cost 0.007 nDCG@10 on SciFact's training claims).
 */
export function analyzeQuery(text: string, stem: Stemmer, maxTerms = 64): QueryTerm[] {
  const byTerm = new Map<string, QueryTerm>();
  const tokens = tokenize(text);
  const keepStopwords = tokens.every((t) => STOPWORDS.has(t));
  for (const token of tokens) {
    if (!keepStopwords && STOPWORDS.has(token)) continue;
    const term = stem(token);
    if (!byTerm.has(term) && byTerm.size < maxTerms) byTerm.set(term, { term, surface: token, weight: 1 });
  }
  return [...byTerm.values()];
}

/**
 * Term counts of a chunk's text plus `titleWeight` × its document title's terms, noting each new term's surface form
 * in `surfaces`. Linear in the text.
 */
export function analyzeChunk(
  text: string,
  title: string | null,
  stem: Stemmer,
  titleWeight: number,
  surfaces: Surfaces = new Map(),
): AnalyzedChunk {
  const counts = new Map<string, number>();
  let length = 0;
  const add = (source: string, weight: number) => {
    for (const token of tokenize(source)) {
      const term = stem(token);
      counts.set(term, (counts.get(term) ?? 0) + weight);
      if (!surfaces.has(term)) surfaces.set(term, token);
      length += weight;
    }
  };
  add(text, 1);
  if (title && titleWeight > 0) add(title, titleWeight);
  return { counts, length };
}

/** BM25's idf with Lucene's +1 (never negative). */
export function idf(stats: Bm25Stats, term: QueryTerm): number {
  const df = stats.documentFrequency(term);
  if (df <= 0) return 0;
  return Math.log(1 + (stats.chunkCount - df + 0.5) / (df + 0.5));
}

/** BM25 of one analysed chunk for weighted query terms; `idfs` aligned with `terms`. */
export function scoreBm25(
  terms: readonly QueryTerm[],
  idfs: readonly number[],
  chunk: AnalyzedChunk,
  meanLength: number,
  params: Pick<Bm25Params, 'k1' | 'b'>,
): number {
  const norm = params.k1 * (1 - params.b + (params.b * chunk.length) / Math.max(meanLength, 1));
  let score = 0;
  for (let i = 0; i < terms.length; i++) {
    const tf = chunk.counts.get(terms[i]!.term);
    if (!tf) continue;
    score += terms[i]!.weight * idfs[i]! * ((tf * (params.k1 + 1)) / (tf + norm));
  }
  return score;
}

/**
 * RM3-style expansion: the terms of the best-ranked chunks, weighted by their share of each chunk, their idf and
 * the chunk's score relative to the best; the top `feedbackTerms` get `feedbackWeight` of the query's total weight,
 * the original terms the rest. Returns the original query when there is nothing to learn from.
 */
export function feedbackQuery(
  query: readonly QueryTerm[],
  ranked: readonly { chunk: AnalyzedChunk; score: number }[],
  stats: Bm25Stats,
  params: Pick<Bm25Params, 'feedbackChunks' | 'feedbackTerms' | 'feedbackWeight'>,
  surfaces: Surfaces,
): QueryTerm[] {
  const top = ranked.slice(0, params.feedbackChunks);
  if (top.length === 0 || params.feedbackWeight <= 0 || params.feedbackTerms <= 0) return [...query];
  const best = top[0]!.score;
  const weights = new Map<string, { surface: string; weight: number }>();
  for (const { chunk, score } of top) {
    // Softly favours the best chunks: a chunk at 90% of the best score counts e^-1 as much.
    const chunkWeight = Math.exp((score - best) / (0.1 * best + 1e-9));
    for (const [term, count] of chunk.counts) {
      const surface = surfaces.get(term) ?? term;
      if (STOPWORDS.has(surface)) continue;
      const entry = weights.get(term) ?? { surface, weight: 0 };
      entry.weight += (chunkWeight * count) / chunk.length;
      weights.set(term, entry);
    }
  }
  // idf last, once per distinct term (the statistics may cost a lookup each).
  const scored = [...weights.entries()]
    .map(([term, e]) => ({ term, surface: e.surface, weight: e.weight }))
    .sort((a, b) => b.weight - a.weight)
    .slice(0, params.feedbackTerms * 3)
    .map((t) => ({ ...t, weight: t.weight * idf(stats, { term: t.term, surface: t.surface, weight: 1 }) }))
    .sort((a, b) => b.weight - a.weight || (a.term < b.term ? -1 : 1))
    .slice(0, params.feedbackTerms);
  const total = scored.reduce((sum, t) => sum + t.weight, 0);
  if (!(total > 0)) return [...query];
  const queryWeight = query.reduce((sum, t) => sum + t.weight, 0);
  const out = new Map<string, QueryTerm>();
  for (const t of query) out.set(t.term, { ...t, weight: (1 - params.feedbackWeight) * t.weight });
  for (const t of scored) {
    const add = (params.feedbackWeight * t.weight * queryWeight) / total;
    const seen = out.get(t.term);
    if (seen) seen.weight += add;
    else out.set(t.term, { term: t.term, surface: t.surface, weight: add });
  }
  return [...out.values()];
}
