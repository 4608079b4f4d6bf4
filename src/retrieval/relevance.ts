/**
 * The one notion of "how relevant are these sources to the question", shared by every synthesizer so the extractive
 * and the LLM ones abstain on the same inputs. Pure and synchronous; no vendor imports.
 *
 * Terms are the shared tokenizer's tokens minus its STOPWORDS and negations, light-stemmed with {@link stem}. A
 * question term's weight is its IDF over the candidate sentences of the request (rare words count more; a word found
 * nowhere counts most), times a small factor for question-frame and generic words ("year", "many", "make"…) that
 * answers rarely repeat. A sentence's coverage is the weighted share of the question's terms it contains, in [0, 1],
 * scaled down when the question is negated and the sentence is not; the request's relevance is the best coverage of
 * any candidate sentence.
 */
import type { AnswerSource } from '../ports/answer-synthesizer.port';
import { STOPWORDS, splitSentences, tokenize } from './tokenize';

/** The abstention reason every synthesizer uses when the sources do not hold the answer. */
export const NOT_FOUND_REASON = 'not found in the knowledge base';

/**
 * Default least relevance for the LLM synthesizer to ask its model at all (the extractive synthesizer has its own
 * floor, `DEFAULT_EXTRACTIVE_MIN_RELEVANCE`, under a calibrated answerability score: {@link ANSWERABILITY_MODEL}). Calibrated on SQuAD 2
 * (`bench/synthesizer-squad2.bench.ts`): at 0.35, 99.6% of questions asked of unrelated paragraphs abstain, as do
 * 13.7% of answerable and 26.1% of unanswerable ones. Higher values trade answerable answers for abstentions on
 * SQuAD's adversarial unanswerable questions about one for one (relevance AUC there is only 0.63, against 0.99 for
 * answerable versus unrelated).
 */
export const DEFAULT_MIN_RELEVANCE = 0.35;

/**
 * Light English stemmer (plural and -ed/-ing endings, final e), so "developed"/"develops"/"developing",
 * "created"/"create" and "cities"/"city" meet. Deliberately weaker than Porter: no derivational suffixes (tried on
 * the bench: +1 answer in 117, not worth merging unrelated domain words).
 */
export function stem(term: string): string {
  if (term.length <= 3 || /\d/.test(term)) return term;
  let t = term;
  if (t.endsWith('ies') && t.length > 4) t = `${t.slice(0, -3)}y`;
  else if (t.endsWith('sses')) t = t.slice(0, -2);
  else if (/(?:[sxz]|ch|sh)es$/.test(t) && t.length > 4) t = t.slice(0, -2);
  else if (t.endsWith('s') && !/(?:ss|us|is)$/.test(t)) t = t.slice(0, -1);

  if (t.endsWith('ied') && t.length > 4) t = `${t.slice(0, -3)}y`;
  else if (t.endsWith('ing') && t.length >= 6) t = undouble(t.slice(0, -3));
  else if (t.endsWith('ed') && t.length >= 5) t = undouble(t.slice(0, -2));

  if (t.endsWith('e') && t.length > 4) t = t.slice(0, -1);
  return t;
}

function undouble(t: string): string {
  const last = t[t.length - 1];
  return t.length > 3 && last === t[t.length - 2] && /[bcdfgkmnprt]/.test(last!) ? t.slice(0, -1) : t;
}

/** Stemmed content terms of `text`, in order (duplicates kept; negations and contractions dropped). */
export function stemmedTerms(text: string): string[] {
  return factsOf(tokenize(text)).terms;
}

/**
 * Question-frame and generic words: asked about or used loosely, rarely repeated by the answer ("What year…" →
 * "In 1990…", "What caused X to happen?" → "X followed Y"). They still count, at a fraction of their IDF. Stemmed.
 */
const FRAME_WORDS: ReadonlySet<string> = new Set(
  (
    'year many much name call type kind number percent percentage amount long often far big large old date time ' +
    'term word refer mean known make happen become cause take get go went use need able part first see give come ' +
    'include main several various thing way one two three new well like'
  )
    .split(' ')
    .map(stem),
);
const FRAME_WEIGHT = 0.3;

/** Negation words (contractions such as "wasn't" are recognised by their ending). */
const NEGATIONS: ReadonlySet<string> = new Set(['not', 'no', 'never', 'nor', 'cannot', 'without', 'none', 'neither']);
const isNegation = (token: string): boolean =>
  NEGATIONS.has(token) || (token.charCodeAt(token.length - 1) === 116 && /n['’]t$/.test(token));
/**
 * Factor applied to a sentence's coverage when the question is negated ("What is not…") and the sentence is not:
 * such a sentence rarely answers it (on SQuAD 2, 19 of 134 unanswerable questions are negated, 3 of 117 answerable).
 */
const NEGATION_MISMATCH_FACTOR = 0.6;

interface TokenFacts {
  /** Stemmed content terms: stopwords, negations and contractions dropped (the shared list keeps "wasn't"). */
  terms: string[];
  negated: boolean;
  hasNumber: boolean;
}

/** One pass over a token list (this is the hot loop of a request). */
function factsOf(tokens: readonly string[]): TokenFacts {
  const terms: string[] = [];
  let negated = false;
  let hasNumber = false;
  for (const token of tokens) {
    if (STOPWORDS.has(token)) {
      if (token === 'not' || token === 'no' || token === 'nor') negated = true;
      continue;
    }
    if (isNegation(token)) {
      negated = true;
      continue;
    }
    const first = token.charCodeAt(0);
    if (first >= 48 && first <= 57) hasNumber = true;
    let stemmed = stemCache.get(token);
    if (stemmed === undefined) {
      if (stemCache.size >= STEM_CACHE_SIZE) stemCache.clear();
      stemCache.set(token, (stemmed = stem(token)));
    }
    terms.push(stemmed);
  }
  return { terms, negated, hasNumber };
}

/** Stemming is half the cost of analysing a request; vocabularies repeat, so memoise (bounded, cleared when full). */
const STEM_CACHE_SIZE = 50_000;
const stemCache = new Map<string, string>();

/** A sentence of a source chunk, ready to be scored against the question. */
export interface CandidateSentence {
  /** Index of the source in the request's `sources` (its retrieval rank, 0 = best). */
  sourceIndex: number;
  /** The source's citation number. */
  n: number;
  /** 0-based position of the sentence in its chunk. */
  position: number;
  text: string;
  /** Stemmed content terms in order (bigram matching). */
  terms: string[];
  termSet: ReadonlySet<string>;
  /** All word tokens (length penalty). */
  tokenCount: number;
  /** The sentence states a negation. */
  negated: boolean;
  /** The sentence holds a number token (answers to "when", "how many"…). */
  hasNumber: boolean;
}

export interface RelevanceAnalysis {
  /** Unique stemmed question content terms, in question order. */
  questionTerms: string[];
  /** Adjacent question-term pairs (`a b`), for phrase matches. */
  questionBigrams: string[];
  /** Weight of each question term (IDF over the candidates × frame factor). */
  weights: ReadonlyMap<string, number>;
  totalWeight: number;
  /** The question is negated ("What is not…", "Who wasn't…"). */
  negated: boolean;
  /** The question asks for a number, date or year ("When…", "How many…", "What year…"). */
  wantsNumber: boolean;
  candidates: CandidateSentence[];
}

const WANTS_NUMBER =
  /^\s*(?:when\b|how (?:many|much|old|long|far|large|big|often|soon|tall|high)\b|(?:in |by |since |until |within |at )?(?:what|which|how many) (?:year|century|decade|date|month|day|days|percentage|percent|number|age|time|hour)\b)/i;

/** Splits sentences further before list items and headings on their own line (chunks of Markdown or plain lists). */
const LINE_START = /\n(?=[ \t]*(?:[-*+#>|]|\d+[.)][ \t]))/;

/** Sentences of a chunk: the shared splitter, refined at line-level list items and headings. */
export function chunkSentences(text: string): string[] {
  const out: string[] = [];
  for (const span of splitSentences(text)) {
    for (const part of span.text.split(LINE_START)) {
      const trimmed = part.trim();
      if (trimmed) out.push(trimmed);
    }
  }
  return out;
}

/** Splits every source into candidate sentences and weights the question's terms over them. */
export function analyzeRelevance(question: string, sources: readonly AnswerSource[]): RelevanceAnalysis {
  const candidates: CandidateSentence[] = [];
  sources.forEach((source, sourceIndex) => {
    chunkSentences(source.chunk.text).forEach((text, position) => {
      const tokens = tokenize(text);
      const { terms, negated, hasNumber } = factsOf(tokens);
      candidates.push({
        sourceIndex,
        n: source.n,
        position,
        text,
        terms,
        termSet: new Set(terms),
        tokenCount: tokens.length,
        negated,
        hasNumber,
      });
    });
  });

  const questionFacts = factsOf(tokenize(question));
  const questionStems = questionFacts.terms;
  const questionTerms = [...new Set(questionStems)];
  const questionBigrams: string[] = [];
  for (let i = 1; i < questionStems.length; i++) questionBigrams.push(`${questionStems[i - 1]} ${questionStems[i]}`);

  const count = candidates.length;
  const weights = new Map<string, number>();
  let totalWeight = 0;
  for (const term of questionTerms) {
    let df = 0;
    for (const c of candidates) if (c.termSet.has(term)) df++;
    // BM25-style IDF, kept positive; a term present nowhere gets the largest weight, which is what lowers the
    // relevance of questions about something the sources never mention.
    const idf = Math.log(1 + (count - df + 0.5) / (df + 0.5));
    const weight = idf * (FRAME_WORDS.has(term) ? FRAME_WEIGHT : 1);
    weights.set(term, weight);
    totalWeight += weight;
  }
  return {
    questionTerms,
    questionBigrams: [...new Set(questionBigrams)],
    weights,
    totalWeight,
    negated: questionFacts.negated,
    wantsNumber: WANTS_NUMBER.test(question),
    candidates,
  };
}

/** Weighted share of the question's terms found in `terms`, in [0, 1]; 0 when the question has no content terms. */
export function coverage(analysis: RelevanceAnalysis, terms: ReadonlySet<string>): number {
  if (analysis.totalWeight <= 0) return 0;
  let found = 0;
  for (const [term, weight] of analysis.weights) if (terms.has(term)) found += weight;
  return found / analysis.totalWeight;
}

/** A sentence's relevance: its coverage, reduced when the question is negated and the sentence is not. */
export function sentenceRelevance(analysis: RelevanceAnalysis, sentence: CandidateSentence): number {
  const cov = coverage(analysis, sentence.termSet);
  return analysis.negated && !sentence.negated ? cov * NEGATION_MISMATCH_FACTOR : cov;
}

/** The request's relevance: the best {@link sentenceRelevance} of any candidate (0 without sources or terms). */
export function bestCoverage(analysis: RelevanceAnalysis): number {
  let best = 0;
  for (const c of analysis.candidates) best = Math.max(best, sentenceRelevance(analysis, c));
  return best;
}

/**
 * Weighted share of the question's key terms (content terms other than question-frame words) found in `terms`, in
 * [0, 1]; 1 when the question has no key terms. Used on the chosen answer sentence and its neighbours: SQuAD 2's
 * unanswerable questions are written against the very paragraph retrieved, often by swapping in one key term the
 * paragraph never states in that place.
 */
export function keyCoverage(analysis: RelevanceAnalysis, terms: ReadonlySet<string>): number {
  let found = 0;
  let total = 0;
  for (const [term, weight] of analysis.weights) {
    if (FRAME_WORDS.has(term)) continue;
    total += weight;
    if (terms.has(term)) found += weight;
  }
  return total <= 0 ? 1 : found / total;
}

const WANTS_PERSON = /^\s*(?:who|whom|whose)\b/i;

/** Words that answer "When…", "How many…": numbers in words, units of time, months, weekdays, times of day. */
const NUMBER_OR_TIME =
  /\b(?:century|centuries|decade|decades|years?|months?|weeks?|days?|hours?|minutes?|hundred|thousand|million|billion|dozen|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|half|once|twice|daily|weekly|monthly|yearly|annually|quarterly|morning|mornings|afternoon|afternoons|evening|evenings|night|nights|noon|midnight|weekend|weekends|weekdays|am|pm|o'clock|January|February|March|April|May|June|July|August|September|October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|Mondays|Tuesdays|Wednesdays|Thursdays|Fridays|Saturdays|Sundays|spring|summer|autumn|fall|winter)\b/i;

/** Nouns naming who does something when no person's name is given ("the facilities team", "your line manager"). */
const PERSON_NOUNS: ReadonlySet<string> = new Set(
  (
    'team teams staff department helpdesk manager managers lead leader head director officer assistant ' +
    'colleague colleagues buddy mentor reception receptionist hr payroll administrator admin coordinator committee ' +
    'board council secretary supervisor owner founder employee employees person people someone everyone government ' +
    'company police doctor nurse teacher king queen president minister group'
  ).split(' '),
);
/** Agent nouns by suffix ("cleaner", "inventor", "chemist", "librarian"), minus common words that only look like one. */
const AGENT_SUFFIX = /^[a-z]{3,}(?:er|or|ist|ian|ant)s?$/;
const NOT_AGENTS: ReadonlySet<string> = new Set(
  (
    'after other under water number order never however together whether either over later rather paper matter center ' +
    'centre letter power summer winter another further neither ever per upper lower outer inner every river major minor ' +
    'factor error color colour honor floor door important significant relevant constant instant distant'
  ).split(' '),
);

/** The kind of answer a question asks for, when it asks for a short one: a number or date, a person, a place. */
export type AnswerKind = 'number' | 'person' | 'place';

const WANTS_PLACE =
  /^\s*(?:where\b|(?:in |at |from |to )?(?:what|which) (?:city|cities|country|countries|place|state|region|river|town|continent|street|building|location|island|county|province|room|floor|area|address)\b)/i;

/** What the question asks for, or null for anything longer (how, why, what is…). */
export function answerKind(question: string): AnswerKind | null {
  if (WANTS_NUMBER.test(question)) return 'number';
  if (WANTS_PERSON.test(question)) return 'person';
  if (WANTS_PLACE.test(question)) return 'place';
  return null;
}

/** A place phrase: a preposition of place before a name, a number or a noun phrase ("at Rua Augusta 120", "in the basement"). */
const PLACE_PHRASE =
  /\b(?:at|in|on|near|next to|behind|across|opposite|inside|outside|beside|above|below|under|into|from)\s+(?:the\s+|a\s+|an\s+|your\s+|our\s+|their\s+)?[\p{L}\p{N}]/iu;

/**
 * Whether `text` (a sentence or a clause of one) holds an answer of `kind` the question does not already state: a
 * number or time word; a name (a capitalised word past the first) or, unless `namesOnly`, a word naming a person or
 * group; a place phrase.
 */
export function holdsAnswer(kind: AnswerKind, question: string, text: string, namesOnly = false): boolean {
  const asked = new Set(question.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
  if (kind === 'place') return PLACE_PHRASE.test(text) && (!namesOnly || holdsName(asked, text));
  if (kind === 'person' && namesOnly) return holdsName(asked, text);
  const words = text.match(/[\p{L}\p{N}]+(?:[.,:]\p{N}+)*/gu) ?? [];
  return words.some((w, i) => {
    const lower = w.toLowerCase();
    if (asked.has(lower)) return false;
    if (kind === 'number') return /\p{N}/u.test(w) || NUMBER_OR_TIME.test(w);
    if (i > 0 && /^\p{Lu}/u.test(w)) return true;
    return PERSON_NOUNS.has(lower) || (AGENT_SUFFIX.test(lower) && !NOT_AGENTS.has(lower));
  });
}

/** A capitalised word the question does not contain, past the text's first word. */
export function holdsName(asked: ReadonlySet<string>, text: string): boolean {
  const words = text.match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.some((w, i) => i > 0 && /^\p{Lu}/u.test(w) && !asked.has(w.toLowerCase()) && !NUMBER_OR_TIME.test(w));
}

/**
 * Whether `sentence` can hold the kind of answer the question's wh-word asks for: a number, date or unit of time for
 * "When…", "How many…", "What year…"; for "Who…" a name (a capitalised word the question does not contain) or a word
 * naming a person or group ("the facilities team", "your manager", "a chemist") the question does not contain.
 * Other questions always agree.
 */
export function answerTypeAgrees(question: string, analysis: RelevanceAnalysis, sentence: CandidateSentence): boolean {
  if (analysis.wantsNumber) return sentence.hasNumber || NUMBER_OR_TIME.test(sentence.text);
  if (WANTS_PERSON.test(question)) {
    const asked = new Set(question.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
    const words = sentence.text.match(/[\p{L}\p{N}]+/gu) ?? [];
    return words.some((w, i) => {
      const lower = w.toLowerCase();
      if (asked.has(lower)) return false;
      if (i > 0 && /^\p{Lu}/u.test(w)) return true;
      return PERSON_NOUNS.has(lower) || (AGENT_SUFFIX.test(lower) && !NOT_AGENTS.has(lower));
    });
  }
  return true;
}

/** Word pairs of opposite meaning: a question using one where the answer's sentences use only the other is a swap. */
const ANTONYM_PAIRS: readonly (readonly [string, string])[] = (
  'first:last before:after early:late earlier:later earliest:latest largest:smallest larger:smaller most:least highest:lowest ' +
  'higher:lower more:less increase:decrease increased:decreased north:south northern:southern east:west eastern:western ' +
  'maximum:minimum major:minor above:below inside:outside begin:end start:end won:lost win:lose oldest:newest older:younger ' +
  'longest:shortest longer:shorter biggest:smallest bigger:smaller best:worst better:worse positive:negative public:private ' +
  'internal:external upper:lower rise:fall gain:loss include:exclude success:failure cheaper:expensive first:second'
)
  .split(' ')
  .map((pair) => pair.split(':') as [string, string]);
const ANTONYMS = new Map<string, string[]>();
for (const [a, b] of ANTONYM_PAIRS) {
  ANTONYMS.set(a, [...(ANTONYMS.get(a) ?? []), b]);
  ANTONYMS.set(b, [...(ANTONYMS.get(b) ?? []), a]);
}

/**
 * Why the answer's sentences (`windowText`: the picked sentences and their neighbours) contradict the question, or
 * null: the question states a number (a year, a quantity) they do not; it is negated and the best sentence is not;
 * or it uses a word whose opposite they use instead ("first" / "last", "northern" / "southern"). These are the edits
 * SQuAD 2's unanswerable questions are made of.
 */
export function contradiction(question: string, analysis: RelevanceAnalysis, best: CandidateSentence, windowText: string): string | null {
  const asked = question.toLowerCase().match(/[\p{L}\p{N}]+(?:[.,]\d+)*/gu) ?? [];
  const stated = new Set(windowText.toLowerCase().match(/[\p{L}\p{N}]+(?:[.,]\d+)*/gu) ?? []);
  for (const token of asked) if (/\d/.test(token) && !stated.has(token)) return 'number';
  if (analysis.negated && !best.negated) return 'negation';
  for (const token of asked) {
    if (stated.has(token)) continue;
    if (ANTONYMS.get(token)?.some((opposite) => stated.has(opposite))) return 'antonym';
  }
  return null;
}

/** Shorthand: `bestCoverage(analyzeRelevance(question, sources))`. */
export function assessRelevance(question: string, sources: readonly AnswerSource[]): number {
  return bestCoverage(analyzeRelevance(question, sources));
}

/**
 * What the answerability score looks at, for the best answer sentence of a request. Each is cheap and lexical; none
 * alone separates answerable questions from SQuAD 2's adversarial unanswerable ones well (AUC 0.53–0.65), together
 * they do better (see {@link ANSWERABILITY_MODEL}).
 */
export interface AnswerabilityFeatures {
  /** {@link keyCoverage} of the best sentence and its neighbours in the same chunk, [0, 1]. */
  windowKeyCoverage: number;
  /**
   * {@link keyCoverage} of the best sentence's whole chunk, [0, 1]. One minus it is the rare-term mismatch (key terms
   * the retrieved paragraph never states); its excess over `windowKeyCoverage` is how scattered the question's terms
   * are over the paragraph — questions written by reusing words from all over a paragraph tend to be unanswerable.
   */
  chunkKeyCoverage: number;
  /** Best minus second-best {@link sentenceRelevance} among the candidates: one clear answer sentence, or none. */
  relevanceGap: number;
  /** 1 when {@link answerTypeAgrees} for the best sentence, else 0. */
  answerType: number;
  /** 1 when the question is negated and the best sentence is not, else 0. */
  negationMismatch: number;
  /** 1 when a capitalised question word (a name, after the first word) is absent from the best sentence's window. */
  missingName: number;
}

/**
 * Logistic model over {@link AnswerabilityFeatures}: answerability = σ(intercept + Σ weight × feature), the estimated
 * probability that the best sentence answers the question. Fitted by `bench/answers-squad2.bench.ts` on the
 * calibration half of the SQuAD 2 questions only (label: answerable or not; plain gradient descent on standardised
 * features, L2 0.01, 5,000 steps, then mapped back to raw features), with the offline defaults (hash embedder, HYBRID
 * top 5). AUC 0.736 on the calibration half and 0.691 on the held-out half, against 0.666 / 0.605 for the best
 * sentence's relevance alone (with the answer types and one-sentence answers of now: 0.721 / 0.686). Read with the signs: given the window's key coverage, key terms found elsewhere in the
 * paragraph count against (SQuAD 2's unanswerable questions reuse words from all over their paragraph). Refit: build
 * (`npx tsc -p tsconfig.json --outDir dist`), run `node dist/bench/answers-squad2.bench.js`, paste its "Fitted on
 * the calibration half" line here, and set `DEFAULT_MIN_ANSWERABILITY` to the threshold it reports as chosen.
 */
export const ANSWERABILITY_MODEL: Readonly<{ intercept: number; weights: Readonly<AnswerabilityFeatures> }> = Object.freeze({
  intercept: -2.803,
  weights: Object.freeze({
    windowKeyCoverage: 4.557,
    chunkKeyCoverage: -3.118,
    relevanceGap: 0.907,
    answerType: 1.528,
    negationMismatch: -1.538,
    missingName: -0.68,
  }),
});

/** The {@link AnswerabilityFeatures} of `best`, the chosen answer sentence (one of `analysis.candidates`). */
export function answerabilityFeatures(question: string, analysis: RelevanceAnalysis, best: CandidateSentence): AnswerabilityFeatures {
  const windowTerms = new Set<string>();
  const chunkTerms = new Set<string>();
  const windowTexts: string[] = [];
  let top = 0;
  let second = 0;
  for (const c of analysis.candidates) {
    const relevance = sentenceRelevance(analysis, c);
    if (relevance > top) [top, second] = [relevance, top];
    else if (relevance > second) second = relevance;
    if (c.sourceIndex !== best.sourceIndex) continue;
    for (const t of c.termSet) chunkTerms.add(t);
    if (Math.abs(c.position - best.position) > 1) continue;
    for (const t of c.termSet) windowTerms.add(t);
    windowTexts.push(c.text);
  }
  const windowText = windowTexts.join(' ').toLowerCase();
  const words = question.match(/[\p{L}\p{N}]+/gu) ?? [];
  const missingName = words.some((w, i) => i > 0 && /^\p{Lu}/u.test(w) && !windowText.includes(w.toLowerCase()));
  return {
    windowKeyCoverage: keyCoverage(analysis, windowTerms),
    chunkKeyCoverage: keyCoverage(analysis, chunkTerms),
    relevanceGap: top - second,
    answerType: answerTypeAgrees(question, analysis, best) ? 1 : 0,
    negationMismatch: analysis.negated && !best.negated ? 1 : 0,
    missingName: missingName ? 1 : 0,
  };
}

/** The model's probability, in (0, 1), that the features describe an answerable question. */
export function answerability(features: AnswerabilityFeatures, model = ANSWERABILITY_MODEL): number {
  let z = model.intercept;
  for (const key of Object.keys(model.weights) as (keyof AnswerabilityFeatures)[]) z += model.weights[key] * features[key];
  return 1 / (1 + Math.exp(-z));
}
