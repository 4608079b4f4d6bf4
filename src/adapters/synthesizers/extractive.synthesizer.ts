import type { AnswerSynthesizer, Synthesis, SynthesisEvent, SynthesisRequest } from '../../ports/answer-synthesizer.port';
import { DEFAULT_MIN_SUPPORT, splitAnswerSentences, stripMarkers, verifyCitations } from '../../modules/query/citations';
import {
  NOT_FOUND_REASON,
  analyzeRelevance,
  answerTypeAgrees,
  bestCoverage,
  contradiction,
  keyCoverage,
  sentenceRelevance,
  type CandidateSentence,
  type RelevanceAnalysis,
} from '../../modules/query/relevance';

export interface ExtractiveSynthesizerOptions {
  /**
   * Most sentences in an answer (the best one plus those that add question-term coverage).
   * @default 3
   */
  maxSentences?: number;
  /**
   * Least relevance needed to answer rather than abstain: the best candidate sentence's IDF-weighted share of the
   * question's content terms, in [0, 1]. Calibrated on SQuAD 2 (see {@link DEFAULT_EXTRACTIVE_MIN_RELEVANCE}).
   * @default 0.45
   */
  minRelevance?: number;
  /**
   * Least share of the question's key terms (IDF-weighted, question-frame words excluded) that the chosen sentence and
   * its neighbours in the same chunk must state; below it the synthesizer abstains. 0 turns the check off.
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
   * @default 0.1
   */
  minGain?: number;
  /**
   * Least score of an extra sentence relative to the best sentence's score, in [0, 1].
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
 * split in two halves by a hash of their id; on the calibration half the grid minRelevance 0.2–0.5 × key coverage
 * 0–0.7 × answer-type check × contradiction check was searched for the best mean of "answerable: contains gold" and
 * "unanswerable: abstained" with at least 70% answerable answered with gold: 0.45 / 0.6 / on / on gave 71.2% and
 * 59.4% there, and 63.1% and 58.5% on the held-out half (without the contradiction check: 64.6% and 50.8%). The lexical features separate SQuAD 2's adversarial unanswerable questions only
 * weakly (relevance AUC 0.63), so the two targets trade against each other: 0.25 / 0 / off answers 86.5% / 84.6%
 * (calibration / held-out) with gold but abstains on only 8.7% / 9.2% of unanswerable ones. Off-topic questions (SciFact
 * claims asked of the SQuAD collection) abstain 99.5% of the time at any of these settings.
 */
export const DEFAULT_EXTRACTIVE_MIN_RELEVANCE = 0.45;
/** @see DEFAULT_EXTRACTIVE_MIN_RELEVANCE and ExtractiveSynthesizerOptions.minKeyCoverage */
export const DEFAULT_MIN_KEY_COVERAGE = 0.6;
/** @see DEFAULT_EXTRACTIVE_MIN_RELEVANCE and ExtractiveSynthesizerOptions.checkAnswerType */
export const DEFAULT_CHECK_ANSWER_TYPE = true;
/** @see DEFAULT_EXTRACTIVE_MIN_RELEVANCE and ExtractiveSynthesizerOptions.checkContradiction */
export const DEFAULT_CHECK_CONTRADICTION = true;

/** Weight of the share of the question's adjacent term pairs found adjacent in the sentence. */
const BIGRAM_WEIGHT = 0.15;
/** Boost for a sentence holding a number when the question asks for one ("When…", "How many…"). */
const NUMBER_WEIGHT = 0.05;
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
  private readonly minRelevance: number;
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
    this.maxSentences = Math.max(1, Math.floor(options.maxSentences ?? 3));
    this.minRelevance = options.minRelevance ?? DEFAULT_EXTRACTIVE_MIN_RELEVANCE;
    this.minGain = options.minGain ?? 0.1;
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

    const picked = this.pick(analysis);
    if (picked.length === 0 || !this.supportsQuestion(question, analysis, picked)) return abstain();
    picked.sort((a, b) => a.sourceIndex - b.sourceIndex || a.position - b.position);

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

  /** The best-scoring sentence, then further ones that add enough new question-term coverage. */
  private pick(analysis: RelevanceAnalysis): CandidateSentence[] {
    const scored = analysis.candidates
      .map((c) => ({ c, cov: sentenceRelevance(analysis, c), score: 0 }))
      .filter((s) => s.cov > 0);
    for (const s of scored) s.score = score(analysis, s.c, s.cov);
    // Stable sort: ties keep source rank and position order.
    scored.sort((a, b) => b.score - a.score);
    const best = scored[0];
    if (!best) return [];

    const picked = [best.c];
    const covered = new Set(analysis.questionTerms.filter((t) => best.c.termSet.has(t)));
    for (const s of scored.slice(1)) {
      if (picked.length >= this.maxSentences) break;
      if (s.score < this.minScoreRatio * best.score) break;
      let gain = 0;
      for (const [term, weight] of analysis.weights) if (!covered.has(term) && s.c.termSet.has(term)) gain += weight;
      if (gain / analysis.totalWeight < this.minGain) continue;
      picked.push(s.c);
      for (const t of analysis.questionTerms) if (s.c.termSet.has(t)) covered.add(t);
    }
    return picked;
  }
}

function score(analysis: RelevanceAnalysis, c: CandidateSentence, cov: number): number {
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
  else if (c.tokenCount > LONG_TOKENS)
    penalty = Math.min(LONG_PENALTY_MAX, (c.tokenCount - LONG_TOKENS) * LONG_PENALTY_PER_TOKEN);
  const number = analysis.wantsNumber && c.hasNumber ? NUMBER_WEIGHT : 0;
  return cov + BIGRAM_WEIGHT * bigramShare + number + RANK_WEIGHT / (1 + c.sourceIndex) - penalty;
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
