/**
 * Extractive synthesizer on SQuAD 2 (251 questions, `../shared/data/squad2`): each question gets its own paragraph
 * as one source plus two other (seeded random) paragraphs, in shuffled positions. Prints answer containment and
 * token F1 on answerable questions, abstention on both kinds, a `minRelevance` sweep, a `maxSentences` sweep, the
 * citation-support calibration behind `minSupport`, and latency on 8 sources of ~1,500 characters.
 *
 * The sweeps vary one option and keep the other defaults (key coverage 0.6, answer-type and contradiction checks on);
 * the end-to-end calibration of those defaults, through ingestion and retrieval, is `bench/answers-squad2.bench.ts`.
 *
 * Run from the project root after `tsc`: `node dist/bench/synthesizer-squad2.bench.js`.
 * `KBQL_DATA_SHARED` overrides the `shared/data` directory (see `shared-data.ts`). Never copies data into the repository.
 */
import { performance } from 'node:perf_hooks';
import { ExtractiveSynthesizer, type ExtractiveSynthesizerOptions } from '../src/adapters/synthesizers/extractive.synthesizer';
import { sourceTerms, stripMarkers, supportScore } from '../src/retrieval/citations';
import { analyzeRelevance, bestCoverage, chunkSentences } from '../src/retrieval/relevance';
import type { AnswerSource } from '../src/ports/answer-synthesizer.port';
import { answerSource as makeSource, mulberry32 as rng } from '../test/helpers/fixtures';
import { containsGold, loadSquad2, tokenF1, type SquadQuery, type SquadTruth } from './shared-data';

type Query = SquadQuery;
type Truth = SquadTruth;

const { queries, truth, contexts } = loadSquad2();
interface Case {
  q: Query;
  truth: Truth;
  sources: AnswerSource[];
  ownN: number;
  /** Three paragraphs other than the question's own: the "not in the knowledge base" case. */
  offTopic: AnswerSource[];
}
const random = rng(20240601);
const cases: Case[] = queries.map((q) => {
  const others: string[] = [];
  while (others.length < 3) {
    const c = contexts[Math.floor(random() * contexts.length)]!;
    if (c !== q.context && !others.includes(c)) others.push(c);
  }
  const texts = [q.context, ...others.slice(0, 2)];
  for (let i = texts.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [texts[i], texts[j]] = [texts[j]!, texts[i]!];
  }
  return {
    q,
    truth: truth[q.id]!,
    sources: texts.map((t, i) => makeSource(i + 1, t)),
    ownN: texts.indexOf(q.context) + 1,
    offTopic: others.map((t, i) => makeSource(i + 1, t)),
  };
});

interface Row {
  containsGold: number;
  meanF1: number;
  citesOwn: number;
  answerableAbstained: number;
  unanswerableAbstained: number;
  offTopicAbstained: number;
  meanSentences: number;
}
function evaluate(options: ExtractiveSynthesizerOptions): Row {
  const synth = new ExtractiveSynthesizer(options);
  let answerable = 0;
  let contains = 0;
  let f1Sum = 0;
  let citesOwn = 0;
  let ansAbstained = 0;
  let unanswerable = 0;
  let unAbstained = 0;
  let sentences = 0;
  let answered = 0;
  let offTopicAbstained = 0;
  for (const c of cases) {
    if (synth.synthesizeSync({ question: c.q.question, sources: c.offTopic }).abstained) offTopicAbstained++;
    const result = synth.synthesizeSync({ question: c.q.question, sources: c.sources });
    if (c.truth.is_impossible) {
      unanswerable++;
      if (result.abstained) unAbstained++;
      continue;
    }
    answerable++;
    if (result.abstained || result.answer === null) {
      ansAbstained++;
      continue;
    }
    answered++;
    sentences += new Set(result.citations.map((x) => x.sentence)).size;
    const text = stripMarkers(result.answer);
    const golds = c.truth.answers.filter((a) => a.trim() !== '');
    if (containsGold(text, golds)) contains++;
    f1Sum += Math.max(0, ...golds.map((g) => tokenF1(text, g)));
    if (result.citations.some((x) => x.marker === c.ownN)) citesOwn++;
  }
  return {
    containsGold: contains / answerable,
    meanF1: f1Sum / answerable,
    citesOwn: citesOwn / answerable,
    answerableAbstained: ansAbstained / answerable,
    unanswerableAbstained: unAbstained / unanswerable,
    offTopicAbstained: offTopicAbstained / cases.length,
    meanSentences: answered ? sentences / answered : 0,
  };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
function printRows(label: string, rows: [string, Row][]): void {
  console.log(`\n${label}`);
  console.log(
    '| setting | contains gold | token F1 | cites own paragraph | answerable abstained | unanswerable abstained | off-topic abstained | sentences/answer |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [name, r] of rows) {
    console.log(
      `| ${name} | ${pct(r.containsGold)} | ${r.meanF1.toFixed(3)} | ${pct(r.citesOwn)} | ${pct(r.answerableAbstained)} | ` +
        `${pct(r.unanswerableAbstained)} | ${pct(r.offTopicAbstained)} | ${r.meanSentences.toFixed(2)} |`,
    );
  }
}

const answerableCount = cases.filter((c) => !c.truth.is_impossible).length;
console.log(
  `SQuAD 2 sample: ${cases.length} questions (${answerableCount} answerable, ${cases.length - answerableCount} not), ` +
    `3 sources each (own paragraph + 2 seeded random ones, shuffled). Contains gold / F1 count abstentions as misses. ` +
    `Off-topic: every question asked of 3 paragraphs that are not its own (should abstain).`,
);

// Relevance distributions: how separable are the two kinds at all?
const relevance = (kind: boolean): number[] =>
  cases
    .filter((c) => c.truth.is_impossible === kind)
    .map((c) => bestCoverage(analyzeRelevance(c.q.question, c.sources)))
    .sort((a, b) => a - b);
const quantiles = (xs: number[]): string =>
  [0.1, 0.25, 0.5, 0.75, 0.9].map((q) => xs[Math.floor(q * (xs.length - 1))]!.toFixed(2)).join(' / ');
const offTopicRelevance = cases.map((c) => bestCoverage(analyzeRelevance(c.q.question, c.offTopic))).sort((a, b) => a - b);
console.log(
  `relevance p10/p25/p50/p75/p90: answerable ${quantiles(relevance(false))}; unanswerable ${quantiles(relevance(true))}; ` +
    `off-topic ${quantiles(offTopicRelevance)}`,
);
/** Probability that a random positive scores above a random negative (ties count half): 0.5 = no separation. */
function auc(positives: number[], negatives: number[]): number {
  let wins = 0;
  for (const p of positives) for (const n of negatives) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (positives.length * negatives.length);
}
console.log(
  `relevance AUC, answerable vs unanswerable: ${auc(relevance(false), relevance(true)).toFixed(3)}; ` +
    `answerable vs off-topic: ${auc(relevance(false), offTopicRelevance).toFixed(3)}`,
);

printRows(
  'minRelevance sweep (maxSentences 3)',
  [0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8].map((v) => [`minRelevance ${v}`, evaluate({ minRelevance: v })]),
);
printRows(
  'maxSentences sweep (default minRelevance, other defaults)',
  [1, 2, 3, 4].map((v) => [`maxSentences ${v}`, evaluate({ maxSentences: v })]),
);

// Citation support: a sentence against its own paragraph, a crude paraphrase of it, a random other paragraph and
// the most similar other paragraph (same article, usually: the realistic wrong citation).
{
  const r = rng(7);
  const vocabulary = [...new Set(contexts.flatMap((c) => c.split(/\s+/)))];
  const termSets = contexts.map((c) => sourceTerms(makeSource(1, c)));
  const own: number[] = [];
  const paraphrased: number[] = [];
  const other: number[] = [];
  const similar: number[] = [];
  for (const [i, context] of contexts.entries()) {
    const terms = termSets[i]!;
    const otherTerms = termSets[(i + 1 + Math.floor(r() * (contexts.length - 1))) % contexts.length]!;
    let nearest = -1;
    let nearestOverlap = -1;
    for (const [j, t] of termSets.entries()) {
      if (j === i || contexts[j] === context) continue;
      let overlap = 0;
      for (const term of t) if (terms.has(term)) overlap++;
      if (overlap / t.size > nearestOverlap) [nearest, nearestOverlap] = [j, overlap / t.size];
    }
    for (const sentence of chunkSentences(context)) {
      own.push(supportScore(sentence, terms));
      other.push(supportScore(sentence, otherTerms));
      similar.push(supportScore(sentence, termSets[nearest]!));
      // A third of the words swapped for random corpus words: a loose paraphrase or a partly invented claim.
      const words = sentence.split(/\s+/).map((w) => (r() < 0.33 ? vocabulary[Math.floor(r() * vocabulary.length)]! : w));
      paraphrased.push(supportScore(words.join(' '), terms));
    }
  }
  const share = (xs: number[], t: number): string => pct(xs.filter((x) => x >= t).length / xs.length);
  console.log(`\nCitation support (share of a sentence's content terms found in the cited source), ${own.length} sentences`);
  console.log('| minSupport | own paragraph | own, 1/3 of words replaced | most similar other paragraph | random other paragraph |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const t of [0.3, 0.4, 0.5, 0.6, 0.7])
    console.log(`| ${t} | ${share(own, t)} | ${share(paraphrased, t)} | ${share(similar, t)} | ${share(other, t)} |`);
  console.log('(share of sentences whose citation counts as supported at that threshold)');
}

// Latency: 8 sources of ~1,500 characters each.
{
  const texts: string[] = [];
  let k = 0;
  for (let i = 0; i < 8; i++) {
    let t = '';
    while (t.length < 1500) t += `${contexts[k++ % contexts.length]!} `;
    texts.push(t.slice(0, 1500));
  }
  const sources = texts.map((t, i) => makeSource(i + 1, t));
  const synth = new ExtractiveSynthesizer();
  const times: number[] = [];
  for (let i = 0; i < 600; i++) {
    const q = queries[i % queries.length]!.question;
    const t0 = performance.now();
    synth.synthesizeSync({ question: q, sources });
    times.push(performance.now() - t0);
  }
  const warm = times.slice(100).sort((a, b) => a - b);
  console.log(
    `\nLatency, 8 sources × 1,500 chars, 500 warm runs: p50 ${warm[Math.floor(warm.length / 2)]!.toFixed(3)} ms, ` +
      `p99 ${warm[Math.floor(warm.length * 0.99)]!.toFixed(3)} ms`,
  );
}
