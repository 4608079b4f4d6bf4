/**
 * The highlight of a source: the sentence of its chunk a reader should look at. For a cited source, the chunk
 * sentence that best supports the answer sentences citing it; otherwise the one that best covers the question.
 * Offsets are into the chunk's text; add the chunk's `startOffset` (when known, i.e. ≥ 0) for document offsets.
 */
import type { AnswerSource } from '../ports/answer-synthesizer.port';
import { stripMarkers } from './citations';
import { analyzeRelevance, chunkSentences, sentenceRelevance, stemmedTerms } from './relevance';

export interface Highlight {
  text: string;
  /** Offsets of `text` in the chunk's text. */
  startOffset: number;
  endOffset: number;
}

/**
 * Sentences of `text` with their offsets: the relevance splitter's sentences (so index i is candidate i of
 * `analyzeRelevance`), located in order; -1 offsets for one that cannot be found verbatim (not expected).
 */
export function locatedSentences(text: string): Highlight[] {
  let cursor = 0;
  return chunkSentences(text).map((sentence) => {
    const at = text.indexOf(sentence, cursor);
    if (at < 0) return { text: sentence, startOffset: -1, endOffset: -1 };
    cursor = at + sentence.length;
    return { text: sentence, startOffset: at, endOffset: at + sentence.length };
  });
}

/**
 * The highlight of every source (null for an empty chunk). `citedSentences` maps a source's `n` to the answer
 * sentences that cite it with support.
 */
export function highlightSources(
  question: string,
  sources: readonly AnswerSource[],
  citedSentences: ReadonlyMap<number, readonly string[]> = new Map(),
): (Highlight | null)[] {
  return sources.map((source) => {
    const sentences = locatedSentences(source.chunk.text);
    if (sentences.length === 0) return null;
    const cited = citedSentences.get(source.n);
    if (cited && cited.length > 0) {
      const claim = new Set(cited.flatMap((s) => stemmedTerms(stripMarkers(s))));
      let best = sentences[0]!;
      let bestShare = -1;
      for (const s of sentences) {
        const terms = new Set(stemmedTerms(s.text));
        let found = 0;
        for (const t of claim) if (terms.has(t)) found++;
        const share = claim.size ? found / claim.size : 0;
        if (share > bestShare) [best, bestShare] = [s, share];
      }
      return best;
    }
    const analysis = analyzeRelevance(question, [source]);
    let best = 0;
    let bestScore = -1;
    analysis.candidates.forEach((c, i) => {
      const score = sentenceRelevance(analysis, c);
      if (score > bestScore) [best, bestScore] = [i, score];
    });
    return sentences[best] ?? sentences[0]!;
  });
}
