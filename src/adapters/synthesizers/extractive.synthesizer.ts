import type { AnswerSynthesizer, Synthesis, SynthesisEvent, SynthesisRequest } from '../../ports/answer-synthesizer.port';
import { answerSpan } from '../../retrieval/answer-span';
import { DEFAULT_MIN_SUPPORT, splitAnswerSentences, stripMarkers, verifyCitations } from '../../retrieval/citations';
import {
  NOT_FOUND_REASON,
  analyzeRelevance,
  answerKind,
  answerability,
  answerabilityFeatures,
  answerTypeAgrees,
  bestCoverage,
  contradiction,
  holdsAnswer,
  keyCoverage,
  sentenceRelevance,
  type AnswerabilityFeatures,
  type CandidateSentence,
  type RelevanceAnalysis,
} from '../../retrieval/relevance';

export interface ExtractiveSynthesizerOptions {
  /**
   * Most sentences in an answer (the best one plus the most relevant others, within `maxWords`). With 1, a question
   * asking for a number, a person or a place is answered with the shortest clause run of the best sentence that holds
   * one, a "What…" or "Which…" question with the clauses holding its terms and a little context ({@link answerSpan});
   * the source highlight keeps the whole sentence.
   * @default 1
   */
  maxSentences?: number;
  /**
   * With `maxSentences` 1: answer a question asking for a number, a person or a place, or a "What…" or "Which…"
   * question, with the shortest clause run of the best sentence that answers it ({@link answerSpan}), rather than
   * the whole sentence.
   * @default true
   */
  clauseAnswers?: boolean;
  /**
   * Most words in an answer made of several sentences: a further sentence is added only if the answer stays within
   * it (the best sentence alone is never cut).
   * @default 70
   */
  maxWords?: number;
  /**
   * Least relevance needed to answer at all: the best candidate sentence's IDF-weighted share of the question's content
   * terms, in [0, 1]. A floor under the answerability score (off-topic questions); see
   * {@link DEFAULT_EXTRACTIVE_MIN_RELEVANCE}.
   * @default 0.25
   */
  minRelevance?: number;
  /**
   * Least {@link answerability} (the calibrated logistic score of the best sentence, in [0, 1]) needed to answer
   * rather than abstain. 0 turns it off. See {@link DEFAULT_MIN_ANSWERABILITY}.
   * @default DEFAULT_MIN_ANSWERABILITY
   */
  minAnswerability?: number;
  /**
   * Least share of the question's key terms (IDF-weighted, question-frame words excluded) that the chosen sentence and
   * its neighbours in the same chunk must state; below it the synthesizer abstains. 0 turns the check off (the
   * answerability score already weighs it).
   * @default DEFAULT_MIN_KEY_COVERAGE
   */
  minKeyCoverage?: number;
  /**
   * Abstain when the chosen sentence cannot hold the kind of answer the wh-word asks for (no number for "When…" or
   * "How many…", no new name for "Who…").
   * @default DEFAULT_CHECK_ANSWER_TYPE
   */
  checkAnswerType?: boolean;
  /**
   * Abstain when the answer's sentences contradict the question: a number the question states that they do not, a
   * negated question answered by a sentence that is not, or a word whose opposite they use instead.
   * @default DEFAULT_CHECK_CONTRADICTION
   */
  checkContradiction?: boolean;
  /**
   * Least new question-term coverage (IDF-weighted share, [0, 1]) an extra sentence must add to be included.
   * @default 0
   */
  minGain?: number;
  /**
   * Least relevance of an extra sentence relative to the best sentence's relevance, in [0, 1].
   * @default 0.5
   */
  minScoreRatio?: number;
  /**
   * Citation support threshold handed to `verifyCitations` (extracted sentences support themselves, so this
   * only matters for answers split differently than their chunk).
   * @default 0.5
   */
  minSupport?: number;
}

/**
 * Defaults of the extractive synthesizer's abstention, calibrated end to end on SQuAD 2 with the offline defaults
 * (`bench/answers-squad2.bench.ts`: 232 paragraphs ingested, HYBRID top-5 retrieval, hash embedder). Questions are
 * split in two halves by a hash of their id; the {@link ANSWERABILITY_MODEL} was fitted and the threshold chosen on the
 * calibration half only (the model before one-sentence answers; refitting it now moves no coefficient by more than
 * 0.7 and AUC by less than 0.002). The bench's rule for the threshold (most answerable questions answered with gold
 * while at least half of the unanswerable ones abstain on the calibration half) picks 0.375: 69.2% / 52.2% there,
 * 64.6% / 52.3% held out. 0.425 is kept (with the shipped model: 67.3% / 62.3% calibration, 60.0% / 64.6% held out) because at 0.375 the
 * everyday set's fail-safe fails: handbook questions whose key term the handbook never states ("windows", "intern",
 * "shower", "maternity") get answered with a sentence about something else. Lower thresholds trade abstentions for
 * answers (0.3: 70.8% / 40.0% held out; no model: 75.4% / 21.5%); docs/benchmarks.md, "Answer quality".
 * The relevance floor keeps off-topic questions out (SciFact claims asked of the SQuAD collection: 100% abstain).
 */
export const DEFAULT_EXTRACTIVE_MIN_RELEVANCE = 0.25;
/** @see DEFAULT_EXTRACTIVE_MIN_RELEVANCE and ExtractiveSynthesizerOptions.minAnswerability */
export const DEFAULT_MIN_ANSWERABILITY = 0.425;
/** @see DEFAULT_EXTRACTIVE_MIN_RELEVANCE and ExtractiveSynthesizerOptions.minKeyCoverage (0: off, the score weighs it) */
export const DEFAULT_MIN_KEY_COVERAGE = 0;
/** @see DEFAULT_EXTRACTIVE_MIN_RELEVANCE and ExtractiveSynthesizerOptions.checkAnswerType (off: the score weighs it) */
export const DEFAULT_CHECK_ANSWER_TYPE = false;
/**
 * On: a number the question states that the answer's window does not, or an opposite word, is rare on SQuAD 2 but
 * never wrong there (calibration half: no change; held-out half: +6 points of unanswerable abstained, no answer lost).
 * @see DEFAULT_EXTRACTIVE_MIN_RELEVANCE and ExtractiveSynthesizerOptions.checkContradiction
 */
export const DEFAULT_CHECK_CONTRADICTION = true;

/** The synthesizer's view of a request before it decides: the best sentence and its answerability. */
export interface ExtractiveAssessment {
  /** Best {@link sentenceRelevance} of any candidate. */
  relevance: number;
  best: CandidateSentence;
  features: AnswerabilityFeatures;
  /** {@link answerability} of `features` under the shipped model. */
  answerability: number;
}

/** Weight of the share of the question's adjacent term pairs found adjacent in the sentence. */
const BIGRAM_WEIGHT = 0.15;
/** Boost for a sentence holding a number when the question asks for one ("When…", "How many…"). */
const NUMBER_WEIGHT = 0.05;
/** Boost for a sentence holding a person or a place when the question asks "Who…" or "Where…". */
const KIND_WEIGHT = 0.05;
/** Boost for the best-ranked source, decaying as 1/(1+rank). */
const RANK_WEIGHT = 0.05;
/** Sentences shorter than this many tokens are penalised (fragments, headings). */
const SHORT_TOKENS = 5;
const SHORT_PENALTY = 0.1;
/** Sentences longer than this many tokens are penalised progressively (run-ons, tables, lists). */
const LONG_TOKENS = 50;
const LONG_PENALTY_PER_TOKEN = 0.003;
const LONG_PENALTY_MAX = 0.15;

/**
 * The default synthesizer, no LLM: answers with the source sentences that best match the question, each ending with
 * its source's `[n]`, and abstains when no sentence covers enough of the question. Deterministic and synchronous
 * (well under 2 ms for 8 sources of 1,500 characters).
 */
export class ExtractiveSynthesizer implements AnswerSynthesizer {
  readonly name = 'extractive';
  private readonly maxSentences: number;
  private readonly clauseAnswers: boolean;
  private readonly maxWords: number;
  private readonly minRelevance: number;
  private readonly minAnswerability: number;
  private readonly minGain: number;
  private readonly minScoreRatio: number;
  private readonly minSupport: number;
  private readonly minKeyCoverage: number;
  private readonly checkAnswerType: boolean;
  private readonly checkContradiction: boolean;

  constructor(options: ExtractiveSynthesizerOptions = {}) {
    this.checkContradiction = options.checkContradiction ?? DEFAULT_CHECK_CONTRADICTION;
    this.minKeyCoverage = options.minKeyCoverage ?? DEFAULT_MIN_KEY_COVERAGE;
    this.checkAnswerType = options.checkAnswerType ?? DEFAULT_CHECK_ANSWER_TYPE;
    this.maxSentences = Math.max(1, Math.floor(options.maxSentences ?? 1));
    this.clauseAnswers = options.clauseAnswers ?? true;
    this.maxWords = options.maxWords ?? 70;
    this.minRelevance = options.minRelevance ?? DEFAULT_EXTRACTIVE_MIN_RELEVANCE;
    this.minAnswerability = options.minAnswerability ?? DEFAULT_MIN_ANSWERABILITY;
    this.minGain = options.minGain ?? 0;
    this.minScoreRatio = options.minScoreRatio ?? 0.5;
    this.minSupport = options.minSupport ?? DEFAULT_MIN_SUPPORT;
  }

  async synthesize(request: SynthesisRequest, signal?: AbortSignal): Promise<Synthesis> {
    signal?.throwIfAborted();
    return this.synthesizeSync(request);
  }

  /**
   * The answer sentence by sentence (each delta one sentence with its marker, the whitespace before it included, so
   * the deltas join to the answer), then the synthesis. Abstentions yield no delta. Checks `signal` between sentences.
   */
  async *stream(request: SynthesisRequest, signal?: AbortSignal): AsyncGenerator<SynthesisEvent> {
    signal?.throwIfAborted();
    const synthesis = this.synthesizeSync(request);
    if (synthesis.answer) {
      let previousEnd = 0;
      for (const sentence of splitAnswerSentences(synthesis.answer)) {
        signal?.throwIfAborted();
        yield { type: 'delta', text: synthesis.answer.slice(previousEnd, sentence.end) };
        previousEnd = sentence.end;
      }
      if (previousEnd < synthesis.answer.length) yield { type: 'delta', text: synthesis.answer.slice(previousEnd) };
    }
    signal?.throwIfAborted();
    yield { type: 'done', synthesis };
  }

  /** The same as {@link synthesize}, synchronously (benchmarks, tests). */
  synthesizeSync({ question, sources }: SynthesisRequest): Synthesis {
    if (sources.length === 0) return abstain();
    const analysis = analyzeRelevance(question, sources);
    if (analysis.candidates.length === 0 || bestCoverage(analysis) < this.minRelevance) return abstain();

    const best = this.best(question, analysis);
    if (!best || !this.supportsQuestion(question, analysis, [best])) return abstain();
    if (this.minAnswerability > 0 && answerability(answerabilityFeatures(question, analysis, best)) < this.minAnswerability)
      return abstain();
    const picked = this.extend(analysis, best);
    picked.sort((a, b) => a.sourceIndex - b.sourceIndex || a.position - b.position);
    if (picked.length === 1 && this.clauseAnswers) picked[0] = { ...best, text: answerSpan(question, analysis, best.text) };

    const draft = picked.map((c) => withMarker(c.text, c.n)).join(' ');
    const verified = verifyCitations(draft, sources, { minSupport: this.minSupport });
    if (!verified.answer) return abstain();
    return {
      answer: verified.answer,
      abstained: false,
      abstentionReason: null,
      citations: verified.citations,
      unsupportedMarkers: verified.unsupportedMarkers,
    };
  }

  /**
   * The picked sentences really answer the question: the best one can hold the kind of answer asked for, and
   * together with their neighbours in their chunks they state enough of the question's key terms.
   */
  private supportsQuestion(question: string, analysis: RelevanceAnalysis, picked: readonly CandidateSentence[]): boolean {
    if (this.checkAnswerType && !answerTypeAgrees(question, analysis, picked[0]!)) return false;
    const window = new Set<string>();
    const texts: string[] = [];
    for (const c of analysis.candidates) {
      if (!picked.some((p) => c.sourceIndex === p.sourceIndex && Math.abs(c.position - p.position) <= 1)) continue;
      for (const t of c.termSet) window.add(t);
      texts.push(c.text);
    }
    if (this.checkContradiction && contradiction(question, analysis, picked[0]!, texts.join('\n')) !== null) return false;
    return this.minKeyCoverage <= 0 || keyCoverage(analysis, window) >= this.minKeyCoverage;
  }

  /**
   * The best sentence and its answerability, or null when no sentence shares a term with the question (benchmarks fit
   * and check the answerability model with it).
   */
  assess({ question, sources }: SynthesisRequest): ExtractiveAssessment | null {
    const analysis = analyzeRelevance(question, sources);
    const best = this.best(question, analysis);
    if (!best) return null;
    const features = answerabilityFeatures(question, analysis, best);
    return { relevance: bestCoverage(analysis), best, features, answerability: answerability(features) };
  }

  /** The best-scoring sentence (relevance plus phrase, number, rank and length terms). */
  private best(question: string, analysis: RelevanceAnalysis): CandidateSentence | undefined {
    let best: CandidateSentence | undefined;
    let bestScore = -Infinity;
    for (const c of analysis.candidates) {
      // A question in the sources (an FAQ heading) is never the answer; the sentence under it may be.
      if (c.text.endsWith('?')) continue;
      const cov = sentenceRelevance(analysis, c);
      if (cov <= 0) continue;
      const s = score(analysis, c, cov, question);
      // Strict: ties keep source rank and position order.
      if (s > bestScore) [best, bestScore] = [c, s];
    }
    return best;
  }

  /**
   * The best sentence plus the most relevant others (anywhere in the sources), while they reach `minScoreRatio` of its
   * relevance, add `minGain` new question-term coverage and keep the answer within `maxWords`: the answer sentence's
   * neighbour often holds the answer itself ("…was founded by X. It opened in 1990.").
   */
  private extend(analysis: RelevanceAnalysis, best: CandidateSentence): CandidateSentence[] {
    const picked = [best];
    if (this.maxSentences <= 1) return picked;
    const bestRelevance = sentenceRelevance(analysis, best);
    const others = analysis.candidates
      .filter((c) => c !== best)
      .map((c) => ({ c, relevance: sentenceRelevance(analysis, c) }))
      .sort((a, b) => b.relevance - a.relevance);
    const covered = new Set(analysis.questionTerms.filter((t) => best.termSet.has(t)));
    let words = wordCount(best.text);
    for (const { c, relevance } of others) {
      if (picked.length >= this.maxSentences || relevance <= 0 || relevance < this.minScoreRatio * bestRelevance) break;
      const length = wordCount(c.text);
      if (words + length > this.maxWords) continue;
      let gain = 0;
      for (const [term, weight] of analysis.weights) if (!covered.has(term) && c.termSet.has(term)) gain += weight;
      if (analysis.totalWeight > 0 && gain / analysis.totalWeight < this.minGain) continue;
      picked.push(c);
      words += length;
      for (const t of analysis.questionTerms) if (c.termSet.has(t)) covered.add(t);
    }
    return picked;
  }
}

const wordCount = (text: string): number => text.split(/\s+/).filter(Boolean).length;

function score(analysis: RelevanceAnalysis, c: CandidateSentence, cov: number, question: string): number {
  let bigramShare = 0;
  if (analysis.questionBigrams.length > 0) {
    const bigrams = new Set<string>();
    for (let i = 1; i < c.terms.length; i++) bigrams.add(`${c.terms[i - 1]} ${c.terms[i]}`);
    let found = 0;
    for (const b of analysis.questionBigrams) if (bigrams.has(b)) found++;
    bigramShare = found / analysis.questionBigrams.length;
  }
  let penalty = 0;
  if (c.tokenCount < SHORT_TOKENS) penalty = SHORT_PENALTY;
  else if (c.tokenCount > LONG_TOKENS) penalty = Math.min(LONG_PENALTY_MAX, (c.tokenCount - LONG_TOKENS) * LONG_PENALTY_PER_TOKEN);
  const number = analysis.wantsNumber && c.hasNumber ? NUMBER_WEIGHT : 0;
  const kind = answerKind(question);
  const holds = (kind === 'person' || kind === 'place') && holdsAnswer(kind, question, c.text) ? KIND_WEIGHT : 0;
  return cov + BIGRAM_WEIGHT * bigramShare + number + holds + RANK_WEIGHT / (1 + c.sourceIndex) - penalty;
}

/**
 * The sentence, its own footnote markers removed and whitespace collapsed, with `[n]` before its final
 * punctuation (`… combustion [1].`), or after a closing quote, or followed by a period when it had none.
 */
function withMarker(sentence: string, n: number): string {
  const text = stripMarkers(sentence).replace(/\s+/g, ' ').trim();
  const end = /[.!?]+$/.exec(text);
  if (end) return `${text.slice(0, end.index).trimEnd()} [${n}]${end[0]}`;
  if (/[.!?]["'”’)\]]+$/.test(text)) return `${text} [${n}]`;
  return `${text.replace(/[,;:\s]+$/, '')} [${n}].`;
}

function abstain(): Synthesis {
  return { answer: null, abstained: true, abstentionReason: NOT_FOUND_REASON, citations: [], unsupportedMarkers: [] };
}
