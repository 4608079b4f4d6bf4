import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerSpan, splitClauses } from '../../src/retrieval/answer-span';
import { analyzeRelevance, answerKind, holdsAnswer } from '../../src/retrieval/relevance';
import type { AnswerSource } from '../../src/ports/answer-synthesizer.port';
import { abstentionLine } from '../../src/cli/query';

const source = (text: string): AnswerSource => ({ n: 1, chunk: { text }, document: { title: null } }) as unknown as AnswerSource;
const span = (question: string, sentence: string): string => answerSpan(question, analyzeRelevance(question, [source(sentence)]), sentence);

describe('answer spans', () => {
  it('knows what kind of answer a question asks for', () => {
    assert.equal(answerKind('When is the coffee machine cleaned?'), 'number');
    assert.equal(answerKind('How many days of holiday do I get?'), 'number');
    assert.equal(answerKind('Who gives new hires a tour?'), 'person');
    assert.equal(answerKind('Where is the office?'), 'place');
    assert.equal(answerKind('In which city is the office?'), 'place');
    assert.equal(answerKind('Why is the sky blue?'), null);
  });

  it('answers "When…" with a weekday and "Who…" with a team, not only with numbers and names', () => {
    const q1 = 'When is the coffee machine cleaned?';
    assert.equal(holdsAnswer('number', q1, 'It is cleaned every Friday afternoon.'), true);
    assert.equal(holdsAnswer('number', q1, 'It is cleaned by the facilities team.'), false);
    const q2 = 'Who cleans the coffee machine?';
    assert.equal(holdsAnswer('person', q2, 'The coffee machine is cleaned by the facilities team.'), true);
    assert.equal(holdsAnswer('person', q2, 'The coffee machine is cleaned often.'), false);
  });

  it('keeps the clause that holds the answer and the question’s terms, and drops the rest', () => {
    assert.equal(
      span('Where is the office?', 'The office is at Rua Augusta 120, in the centre of Lisbon.'),
      'The office is at Rua Augusta 120',
    );
    const year = span(
      'In what year did Boyle show that air is necessary for combustion?',
      'Robert Boyle showed in 1660 that air is necessary for combustion, a result later refined by John Mayow, who was English.',
    );
    assert.equal(year, 'Robert Boyle showed in 1660 that air is necessary for combustion');
  });

  it('keeps the whole sentence when no shorter span holds the answer, or the question wants more than a fact', () => {
    const sentence = 'Maria Lopez, our office manager, gives new hires a tour of the office.';
    // The name is in the first clause, the question's terms in the last: only the whole sentence holds both.
    assert.equal(span('Who gives new hires a tour of the office?', sentence), sentence);
    const why = 'The sky is blue, because air scatters blue light more than red light.';
    assert.equal(span('Why is the sky blue?', why), why);
  });

  it('answers "What…" with the clauses holding the question’s terms and a few words of context on each side', () => {
    const sentence =
      'The Rhine emerges from Lake Constance, flows generally westward, as the Hochrhein, passes the Rhine Falls, and is joined by its major tributary, the river Aare.';
    assert.equal(
      span('What is the major tributary of the Rhine?', sentence),
      'flows generally westward, as the Hochrhein, passes the Rhine Falls, and is joined by its major tributary, the river Aare.',
    );
    // "however" alone is not context: the span reaches the clause that names the lake.
    assert.equal(
      span(
        'What did the Zuider Zee brackish lagoon change into?',
        'Built in 1932, the dam closed the bay, which was formerly the Zuider Zee brackish lagoon; however, since then, a freshwater lake, and it is now a nature reserve, popular with birds.',
      ),
      'the dam closed the bay, which was formerly the Zuider Zee brackish lagoon; however, since then, a freshwater lake',
    );
  });

  it('keeps a quotation with the clause that introduces it', () => {
    const text = 'He sent an email to the councillors stating, "Wise up or die."';
    assert.deepEqual(
      splitClauses(text).map((c) => text.slice(c.start, c.end)),
      ['He sent an email to the councillors stating, "Wise up or die."'],
    );
  });

  it('splits clauses at punctuation and subordinating words, never inside a number', () => {
    const text = 'It discharges 2,290 m3/s; which is a lot, although less than before.';
    const clauses = splitClauses(text).map((c) => text.slice(c.start, c.end));
    assert.deepEqual(clauses, ['It discharges 2,290 m3/s', 'which is a lot', 'although less than before.']);
  });
});

describe('CLI abstention line', () => {
  it('says it once, with a reason only when the reason adds something', () => {
    assert.equal(abstentionLine('not found in the knowledge base'), 'Not found in the knowledge base.');
    assert.equal(abstentionLine(null), 'Not found in the knowledge base.');
    assert.equal(abstentionLine('answer budget exceeded'), 'Not found in the knowledge base (answer budget exceeded).');
  });
});
