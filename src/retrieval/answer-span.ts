/**
 * The shortest span of an answer sentence that still answers: for a question asking for a number or date, a person
 * or a place, the fewest adjacent clauses of the sentence that hold such an answer and most of the question's terms
 * the sentence holds. Linear in the sentence (clauses are few; runs are bounded).
 */
import { answerKind, coverage, holdsAnswer, holdsName, stemmedTerms, type RelevanceAnalysis } from './relevance';

/** Clause boundaries: punctuation that separates clauses, and the words that open a subordinate clause. */
const BOUNDARY = /,\s+|[;:]\s+|\s+[–—-]\s+|\s+(?=(?:which|while|whereas|although|though|but|because|after|before|when)\s)/g;
/** Adjacent clauses a span joins at most. */
const MAX_RUN = 3;
/** Share of the sentence's question-term coverage a span must keep. */
const KEEP_COVERAGE = 0.75;
/** Fewest words in a span (a bare "in 1990" answers nothing on its own). */
const MIN_WORDS = 4;

/**
 * The span of `sentence` to answer `question` with: a run of its clauses when the question asks for a number, a
 * person or a place and a shorter run holds it with most of the question's terms; otherwise the sentence itself.
 */
export function answerSpan(question: string, analysis: RelevanceAnalysis, sentence: string): string {
  const kind = answerKind(question);
  if (kind === null) return sentence;
  const clauses = splitClauses(sentence);
  if (clauses.length < 2) return sentence;
  const full = coverage(analysis, new Set(stemmedTerms(sentence)));
  // A name, when the sentence gives one, is the answer: a span with only "our manager" would drop it.
  const asked = new Set(question.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
  const namesOnly = kind !== 'number' && holdsName(asked, sentence);
  let best = sentence;
  let bestWords = wordCount(sentence);
  for (let i = 0; i < clauses.length; i++) {
    for (let j = i; j < Math.min(clauses.length, i + MAX_RUN); j++) {
      const text = balanced(sentence.slice(clauses[i]!.start, clauses[j]!.end).trim());
      const words = wordCount(text);
      if (words < MIN_WORDS || words >= bestWords) continue;
      if (!holdsAnswer(kind, question, text, namesOnly)) continue;
      if (coverage(analysis, new Set(stemmedTerms(text))) < KEEP_COVERAGE * full - 1e-9) continue;
      [best, bestWords] = [text, words];
    }
  }
  return best;
}

/** The sentence's clauses as offsets (the boundary text left out). */
export function splitClauses(sentence: string): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let start = 0;
  for (const match of sentence.matchAll(BOUNDARY)) {
    if (match.index > start) out.push({ start, end: match.index });
    start = match.index + match[0].length;
  }
  if (start < sentence.length) out.push({ start, end: sentence.length });
  return out;
}

/** Closes a bracket the span opened but cut before its end. */
function balanced(text: string): string {
  const open = (text.match(/\(/g) ?? []).length - (text.match(/\)/g) ?? []).length;
  return open > 0 ? `${text}${')'.repeat(open)}` : text;
}

const wordCount = (text: string): number => text.split(/\s+/).filter(Boolean).length;
