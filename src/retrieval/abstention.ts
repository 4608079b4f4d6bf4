/**
 * Calibrated abstention floors that depend on the embedder: the cosine similarity of the best retrieved chunk below
 * which `ask` abstains before synthesis (VECTOR and HYBRID modes; KEYWORD has no similarity and relies on the
 * synthesizer's lexical relevance, which does not depend on the embedder). Measured by `bench/answers-squad2.bench.ts`.
 */

/**
 * Default `KBQL_ABSTAIN_MIN_SIMILARITY` per embedder kind. `hash` (1024 dimensions, HYBRID top 5, SQuAD 2 paragraphs):
 * the best similarity of the 251 SQuAD questions has p1 0.053 and p5 0.18, that of 200 off-topic SciFact claims asked
 * of the same collection p5 0.093 / p50 0.142 / p95 0.225 — the two overlap, so the floor only cuts the clearly
 * unrelated (0.05 drops one SQuAD question of 251); the synthesizer's lexical relevance does the rest (99.5% of the
 * off-topic claims abstain). `openai`/`ollama`: 0 (off), their scale depends on the model and none can run here.
 */
export const DEFAULT_MIN_SIMILARITY: Readonly<Record<string, number>> = Object.freeze({
  hash: 0.05,
  openai: 0,
  ollama: 0,
});

export function defaultMinSimilarity(embedderKind: string): number {
  return DEFAULT_MIN_SIMILARITY[embedderKind] ?? 0;
}
