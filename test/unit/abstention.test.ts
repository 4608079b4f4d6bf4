import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MIN_ANSWERABILITY, ExtractiveSynthesizer } from '../../src/adapters/synthesizers/extractive.synthesizer';
import {
  ANSWERABILITY_MODEL,
  analyzeRelevance,
  answerability,
  answerabilityFeatures,
  answerTypeAgrees,
  contradiction,
  keyCoverage,
} from '../../src/retrieval/relevance';
import { answerSource as source } from '../helpers/fixtures';

/** The checks behind the extractive synthesizer's abstention, on fixed SQuAD-2-style fixtures. */

const PARAGRAPH = source(
  1,
  'The Yuan government used woodblocks to print paper money, but switched to bronze plates in 1275. ' +
    'Kublai Khan ordered the northern canal to be rebuilt. ' +
    'Both innate and adaptive immunity depend on the ability of the immune system to distinguish between self and non-self molecules.',
);
const synth = new ExtractiveSynthesizer();
const sentence = (question: string, text: string) => {
  const analysis = analyzeRelevance(question, [PARAGRAPH]);
  const candidate = analysis.candidates.find((c) => c.text.startsWith(text))!;
  return { analysis, candidate };
};

describe('abstention checks', () => {
  it('contradiction: a number, a negation or an opposite word the answer sentences do not share', () => {
    const cases: [string, string, string | null][] = [
      ['When did the Yuan switch to bronze plates?', 'The Yuan', null],
      ['What did the Yuan switch to in 1290?', 'The Yuan', 'number'],
      ['What does not depend on the ability of the immune system to distinguish self?', 'Both innate', 'negation'],
      ['Who ordered the southern canal to be rebuilt?', 'Kublai', 'antonym'],
    ];
    for (const [question, start, expected] of cases) {
      const { analysis, candidate } = sentence(question, start);
      assert.equal(contradiction(question, analysis, candidate, candidate.text), expected, question);
    }
  });

  it('answer type: "when" needs a number or date, "who" a name the question does not contain', () => {
    const when = sentence('When did Kublai Khan order the canal rebuilt?', 'Kublai');
    assert.equal(answerTypeAgrees('When did Kublai Khan order the canal rebuilt?', when.analysis, when.candidate), false);
    const who = sentence('Who ordered the northern canal to be rebuilt?', 'Kublai');
    assert.equal(answerTypeAgrees('Who ordered the northern canal to be rebuilt?', who.analysis, who.candidate), true);
    const whoNamed = sentence('Who did Kublai Khan order to rebuild the canal?', 'Kublai');
    assert.equal(answerTypeAgrees('Who did Kublai Khan order to rebuild the canal?', whoNamed.analysis, whoNamed.candidate), false);
  });

  it('key coverage: the weighted share of key terms (question-frame words excluded)', () => {
    const analysis = analyzeRelevance('What year did the Yuan switch to bronze plates?', [PARAGRAPH]);
    assert.equal(keyCoverage(analysis, new Set(analysis.questionTerms)), 1);
    assert.ok(keyCoverage(analysis, new Set(['yuan'])) < 0.5);
    assert.equal(keyCoverage(analyzeRelevance('What year?', [PARAGRAPH]), new Set()), 1, 'no key terms: nothing to miss');
  });

  it('the synthesizer answers the answerable question and abstains on each adversarial edit of it', () => {
    const ask = (question: string) => synth.synthesizeSync({ question, sources: [PARAGRAPH] });
    assert.match(ask('When did the Yuan government switch to bronze plates?').answer ?? '', /switched to bronze plates in 1275 \[1\]/);
    for (const question of [
      'When did the Yuan government switch to gold plates in 1290?',
      'When did the Yuan government switch to bronze plates in 1290?',
      'Who ordered the southern canal to be rebuilt?',
      'What does not depend on the ability of the immune system to distinguish between self and non-self molecules?',
    ]) {
      assert.equal(ask(question).abstained, true, question);
    }
  });

  it('answerability: a supported question scores above the default threshold, a swapped name or a negation below it', () => {
    const assess = (question: string) => {
      const analysis = analyzeRelevance(question, [PARAGRAPH]);
      const best = analysis.candidates.find((c) => c.text.startsWith(question.includes('immune') ? 'Both innate' : 'The Yuan'))!;
      const features = answerabilityFeatures(question, analysis, best);
      return { features, score: answerability(features) };
    };
    const supported = assess('When did the Yuan government switch to bronze plates?');
    assert.deepEqual(supported.features, {
      windowKeyCoverage: 1,
      chunkKeyCoverage: 1,
      relevanceGap: 1,
      answerType: 1,
      negationMismatch: 0,
      missingName: 0,
    });
    assert.ok(supported.score >= DEFAULT_MIN_ANSWERABILITY, `supported: ${supported.score}`);

    const swapped = assess('When did the Ming government switch to bronze plates?');
    assert.equal(swapped.features.missingName, 1, 'the rare term "Ming" occurs nowhere in the paragraph');
    assert.ok(swapped.features.windowKeyCoverage < 0.7);
    assert.ok(swapped.score < DEFAULT_MIN_ANSWERABILITY, `swapped name: ${swapped.score}`);

    const negated = assess('What does not depend on the ability of the immune system to distinguish between self and non-self molecules?');
    assert.equal(negated.features.negationMismatch, 1);
    assert.ok(negated.score < DEFAULT_MIN_ANSWERABILITY, `negated: ${negated.score}`);

    // The synthesizer applies it: the swapped-name question abstains by default and is answered with the model off.
    const question = 'When did the Ming government switch to bronze plates?';
    assert.equal(synth.synthesizeSync({ question, sources: [PARAGRAPH] }).abstained, true);
    assert.equal(new ExtractiveSynthesizer({ minAnswerability: 0 }).synthesizeSync({ question, sources: [PARAGRAPH] }).abstained, false);
  });

  it('answerability is the logistic of the shipped model: more key coverage scores higher, a missing name lower', () => {
    const base = { windowKeyCoverage: 0.8, chunkKeyCoverage: 0.8, relevanceGap: 0.3, answerType: 1, negationMismatch: 0, missingName: 0 };
    const z =
      ANSWERABILITY_MODEL.intercept +
      0.8 * ANSWERABILITY_MODEL.weights.windowKeyCoverage +
      0.8 * ANSWERABILITY_MODEL.weights.chunkKeyCoverage +
      0.3 * ANSWERABILITY_MODEL.weights.relevanceGap +
      ANSWERABILITY_MODEL.weights.answerType;
    assert.ok(Math.abs(answerability(base) - 1 / (1 + Math.exp(-z))) < 1e-12);
    assert.ok(answerability({ ...base, windowKeyCoverage: 1 }) > answerability(base));
    assert.ok(answerability({ ...base, missingName: 1 }) < answerability(base));
    assert.ok(answerability({ ...base, negationMismatch: 1 }) < answerability(base));
    assert.ok(
      answerability(base, {
        intercept: 0,
        weights: { ...base, windowKeyCoverage: 0, chunkKeyCoverage: 0, relevanceGap: 0, answerType: 0 },
      }) === 0.5,
    );
  });

  it('each check can be turned off', () => {
    const lenient = new ExtractiveSynthesizer({
      minKeyCoverage: 0,
      checkAnswerType: false,
      checkContradiction: false,
      minAnswerability: 0,
    });
    assert.equal(
      lenient.synthesizeSync({ question: 'Who ordered the southern canal to be rebuilt?', sources: [PARAGRAPH] }).abstained,
      false,
    );
  });
});
