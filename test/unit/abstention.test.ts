import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExtractiveSynthesizer } from '../../src/adapters/synthesizers/extractive.synthesizer';
import { analyzeRelevance, answerTypeAgrees, contradiction, keyCoverage } from '../../src/modules/query/relevance';
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

  it('each check can be turned off', () => {
    const lenient = new ExtractiveSynthesizer({ minKeyCoverage: 0, checkAnswerType: false, checkContradiction: false });
    assert.equal(lenient.synthesizeSync({ question: 'Who ordered the southern canal to be rebuilt?', sources: [PARAGRAPH] }).abstained, false);
  });
});
