import { badInput } from '../errors';

/** One candidate from one side of a hybrid search: a chunk id and that side's raw score (higher is better). */
export interface ScoredCandidate {
  id: string;
  score: number;
}

/** A fused hit: the relative-score-fusion score plus each side's raw score (null when that side missed it). */
export interface FusedCandidate {
  id: string;
  score: number;
  vectorScore: number | null;
  keywordScore: number | null;
}

/**
 * Relative-score fusion, the HYBRID ranking every store adapter shares:
 * `score = alpha * norm(vector) + (1 - alpha) * norm(keyword)`, where each side is min-max normalised over its
 * own candidate list (all-equal scores normalise to 1), and a side that did not return a chunk contributes 0.
 * Best first; equal scores are ordered by chunk id (ascending, code-unit order) so pages are stable.
 * A chunk id repeated inside one list keeps its highest score. Pure: the inputs are not modified.
 *
 * @param alpha weight of the vector side in [0, 1]; throws BAD_USER_INPUT outside that range.
 */
export function relativeScoreFusion(
  vectorHits: readonly ScoredCandidate[],
  keywordHits: readonly ScoredCandidate[],
  alpha: number,
): FusedCandidate[] {
  if (!Number.isFinite(alpha) || alpha < 0 || alpha > 1) {
    throw badInput('alpha must be a number between 0 and 1.', { alpha: Number.isFinite(alpha) ? alpha : String(alpha) });
  }
  const vector = bestById(vectorHits);
  const keyword = bestById(keywordHits);
  const vectorNorm = minMax(vector);
  const keywordNorm = minMax(keyword);

  const fused = new Map<string, FusedCandidate>();
  for (const [id, raw] of vector) {
    fused.set(id, { id, score: alpha * vectorNorm(raw), vectorScore: raw, keywordScore: null });
  }
  for (const [id, raw] of keyword) {
    const part = (1 - alpha) * keywordNorm(raw);
    const hit = fused.get(id);
    if (hit) {
      hit.score += part;
      hit.keywordScore = raw;
    } else {
      fused.set(id, { id, score: part, vectorScore: null, keywordScore: raw });
    }
  }
  return [...fused.values()].sort(compareFused);
}

/** Best first, then chunk id ascending. */
export function compareFused(a: { id: string; score: number }, b: { id: string; score: number }): number {
  if (a.score !== b.score) return b.score - a.score;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function bestById(hits: readonly ScoredCandidate[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const { id, score } of hits) {
    const seen = out.get(id);
    if (seen === undefined || score > seen) out.set(id, score);
  }
  return out;
}

function minMax(scores: Map<string, number>): (raw: number) => number {
  let min = Infinity;
  let max = -Infinity;
  for (const s of scores.values()) {
    if (s < min) min = s;
    if (s > max) max = s;
  }
  const range = max - min;
  // All candidates equal (including a single candidate): each is as good as the best, so 1.
  if (!(range > 0)) return () => 1;
  return (raw) => (raw - min) / range;
}
