/**
 * The shortest span of an answer sentence that still answers: for a question asking for a number or date, a person
 * or a place, the fewest adjacent clauses of the sentence that hold such an answer and most of the question's terms
 * the sentence holds; for a "What…" or "Which…" question, the clauses that hold all of them with a clause of context
 * on either side (the thing asked for is said next to them, before or after). Linear in the sentence (clauses are
 * few; runs are bounded).
 */
import { answerKind, coverage, holdsAnswer, holdsName, stemmedTerms, type RelevanceAnalysis } from './relevance';

/** Clause boundaries: punctuation that separates clauses, and the words that open a subordinate clause. */
const BOUNDARY = /,\s+(?!["“])|[;:]\s+|\s+[–—-]\s+|\s+(?=(?:which|while|whereas|although|though|but|because|after|before|when)\s)/g;
/** Adjacent clauses a span joins at most. */
const MAX_RUN = 3;
/** Share of the sentence's question-term coverage a span must keep. */
const KEEP_COVERAGE = 0.75;
/** Fewest words in a span (a bare "in 1990" answers nothing on its own). */
const MIN_WORDS = 4;
/** "What…" and "Which…" questions (after a preposition or a leading phrase): they ask for a thing, a term, a name. */
const ASKS_FOR_THING = /^\s*(?:(?:in|at|on|from|to|by|for|of|with|along with [^,?]+,)\s+)?(?:what|which)\b/i;
/** Content terms a "What…" span must state that the question does not (the answer, not the question restated). */
const THING_NEW_TERMS = 2;

/**
 * The span of `sentence` to answer `question` with: a run of its clauses when the question asks for a number, a
 * person or a place and a shorter run holds it with most of the question's terms; for "What…" and "Which…", a run
 * holding all of the question's terms the sentence holds, widened by a few words of context on each side, when that
 * states something new and is shorter; otherwise the sentence itself. A quotation stays with the clause before it.
 */
export function answerSpan(question: string, analysis: RelevanceAnalysis, sentence: string): string {
  const kind = answerKind(question) ?? (ASKS_FOR_THING.test(question) ? 'thing' : null);
  if (kind === null) return sentence;
  const clauses = splitClauses(sentence);
  if (clauses.length < 2) return sentence;
  const full = coverage(analysis, new Set(stemmedTerms(sentence)));
  // A name, when the sentence gives one, is the answer: a span with only "our manager" would drop it.
  const asked = new Set(question.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
  const namesOnly = kind !== 'number' && kind !== 'thing' && holdsName(asked, sentence);
  let best = sentence;
  let bestWords = wordCount(sentence);
  for (let i = 0; i < clauses.length; i++) {
    for (let j = i; j < Math.min(clauses.length, i + MAX_RUN); j++) {
      const core = sentence.slice(clauses[i]!.start, clauses[j]!.end);
      // Nothing says where a thing is named relative to the question's terms: the span keeps context on both sides.
      const [from, to] = kind === 'thing' ? widen(sentence, clauses, i, j) : [i, j];
      const text = balanced(sentence.slice(clauses[from]!.start, clauses[to]!.end).trim());
      const words = wordCount(text);
      if (words < MIN_WORDS || words >= bestWords) continue;
      if (kind === 'thing' ? !statesNewTerms(analysis, text) : !holdsAnswer(kind, question, text, namesOnly)) continue;
      const keep = kind === 'thing' ? 1 : KEEP_COVERAGE;
      if (coverage(analysis, new Set(stemmedTerms(core))) < keep * full - 1e-9) continue;
      [best, bestWords] = [text, words];
    }
  }
  return best;
}

/** Clause run `i..j` widened on each side by clauses holding at least MIN_WORDS words together ("however" is not one). */
function widen(sentence: string, clauses: readonly { start: number; end: number }[], i: number, j: number): [number, number] {
  const size = (k: number) => wordCount(sentence.slice(clauses[k]!.start, clauses[k]!.end));
  let from = i;
  for (let words = 0; from > 0 && words < MIN_WORDS;) words += size(--from);
  let to = j;
  for (let words = 0; to < clauses.length - 1 && words < MIN_WORDS;) words += size(++to);
  return [from, to];
}

/** Whether `text` states THING_NEW_TERMS content terms the question does not. */
function statesNewTerms(analysis: RelevanceAnalysis, text: string): boolean {
  return new Set(stemmedTerms(text).filter((t) => !analysis.weights.has(t))).size >= THING_NEW_TERMS;
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
