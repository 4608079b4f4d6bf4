import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMarkers, splitAnswerSentences, stripMarkers, supportScore, verifyCitations } from '../../src/retrieval/citations';
import { analyzeRelevance, assessRelevance, bestCoverage, stem, stemmedTerms } from '../../src/retrieval/relevance';
import { answerSource as source } from '../helpers/fixtures';

const PARIS = source(1, 'Paris is the capital and largest city of France. It hosts the Louvre museum.');
const BOYLE = source(2, 'Robert Boyle showed in the 1660s that air is necessary for combustion.');
const markersOf = (text: string): number[] => parseMarkers(text).flatMap((m) => m.numbers);

describe('parseMarkers', () => {
  it('reads single, grouped, adjacent, ranged and labelled markers', () => {
    assert.deepEqual(markersOf('a [1] b [2, 3] c [4][5] d [6-8] e [Source 9] f [10; 11]'), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(
      parseMarkers('x [12]').map(({ start, end }) => [start, end]),
      [[2, 6]],
    );
  });

  it('ignores bracketed text that is not a citation', () => {
    assert.deepEqual(markersOf('see [citation needed], [2019], [a], [10-90], [3-1] and arr[]'), []);
  });
});

describe('splitAnswerSentences', () => {
  const texts = (answer: string): string[] => splitAnswerSentences(answer).map((s) => s.text);

  it('keeps each marker with the sentence it closes', () => {
    assert.deepEqual(texts('Paris is big [1]. Boyle studied air [2].'), ['Paris is big [1].', 'Boyle studied air [2].']);
    assert.deepEqual(texts('Paris is big.[1] Boyle studied air.[2]'), ['Paris is big.[1]', 'Boyle studied air.[2]']);
    assert.deepEqual(texts('He said "Go." [1] Then he left [2].'), ['He said "Go." [1]', 'Then he left [2].']);
    assert.deepEqual(texts('Paris is big [1]. iPhones are small [2].'), ['Paris is big [1].', 'iPhones are small [2].']);
    assert.deepEqual(texts('Setup guide [1] Install the tool [2].'), ['Setup guide [1]', 'Install the tool [2].']);
    assert.deepEqual(texts('- first item [1]\n- second item [2]'), ['- first item [1]', '- second item [2]']);
  });

  it('does not split at markers inside a sentence', () => {
    assert.deepEqual(texts('Studies [1] and [2] show that air feeds fire [3].'), ['Studies [1] and [2] show that air feeds fire [3].']);
  });

  it('reports offsets into the answer', () => {
    const answer = 'One thing [1].  Two things [2].';
    for (const s of splitAnswerSentences(answer)) assert.equal(answer.slice(s.start, s.end), s.text);
  });
});

describe('verifyCitations', () => {
  it('keeps a supported marker and reports the citation with its sentence', () => {
    const answer = 'Paris is the capital of France [1]. Boyle showed that air is necessary for combustion [2].';
    const result = verifyCitations(answer, [PARIS, BOYLE]);
    assert.equal(result.answer, answer);
    assert.deepEqual(result.unsupportedMarkers, []);
    assert.deepEqual(result.citations, [
      { marker: 1, sentence: 'Paris is the capital of France [1].', supported: true },
      { marker: 2, sentence: 'Boyle showed that air is necessary for combustion [2].', supported: true },
    ]);
  });

  it('removes a marker naming no source and tidies the space it leaves', () => {
    const result = verifyCitations('Paris is the capital of France [7]. It hosts the Louvre [1][7].', [PARIS]);
    assert.equal(result.answer, 'Paris is the capital of France. It hosts the Louvre [1].');
    assert.deepEqual(result.unsupportedMarkers, [7]);
    assert.deepEqual(
      result.citations.map((c) => [c.marker, c.supported]),
      [[1, true]],
    );
  });

  it('removes a marker whose source does not support the sentence, and reports it', () => {
    const result = verifyCitations('Paris is the capital of France [1, 2].', [PARIS, BOYLE]);
    assert.equal(result.answer, 'Paris is the capital of France [1].');
    assert.deepEqual(result.unsupportedMarkers, [2]);
    assert.deepEqual(
      result.citations.map((c) => [c.marker, c.supported, c.sentence]),
      [
        [1, true, 'Paris is the capital of France [1].'],
        [2, false, 'Paris is the capital of France [1].'],
      ],
    );
  });

  it('checks each marker against its own sentence (swapped citations both fail)', () => {
    const result = verifyCitations('Paris is the capital of France [2]. Boyle showed that air feeds combustion [1].', [PARIS, BOYLE]);
    assert.equal(result.answer, 'Paris is the capital of France. Boyle showed that air feeds combustion.');
    assert.deepEqual(result.unsupportedMarkers, [2, 1]);
  });

  it('counts the document title as support and honours minSupport', () => {
    const titled = source(3, 'The museum opened in 1793.', 'Louvre Paris');
    assert.equal(verifyCitations('The Louvre museum in Paris opened in 1793 [3].', [titled]).unsupportedMarkers.length, 0);
    const partial = 'Paris is the capital of France and of fashion, wine and cheese [1].';
    assert.equal(verifyCitations(partial, [PARIS], { minSupport: 0.4 }).unsupportedMarkers.length, 0);
    assert.deepEqual(verifyCitations(partial, [PARIS], { minSupport: 0.9 }).unsupportedMarkers, [1]);
  });

  it('never lets a marker naming a missing source survive, over many random answers', () => {
    let seed = 42;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const words = 'paris capital france boyle air combustion museum louvre city largest showed necessary 1660s'.split(' ');
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    for (let i = 0; i < 500; i++) {
      const sources = [PARIS, BOYLE, source(5, 'The Louvre museum is in Paris.')].filter(() => random() < 0.7);
      const sentences: string[] = [];
      for (let s = 0; s < 1 + Math.floor(random() * 4); s++) {
        const body = Array.from({ length: 2 + Math.floor(random() * 6) }, () => pick(words)).join(' ');
        const markers = Array.from({ length: Math.floor(random() * 3) }, () => `[${1 + Math.floor(random() * 7)}]`);
        const group = `[${[1, 2, 9].slice(0, 1 + Math.floor(random() * 3)).join(', ')}]`;
        const text = `${body[0]!.toUpperCase()}${body.slice(1)}`;
        sentences.push(pick([`${text} ${markers.join('')}.`, `${text}.${markers.join(' ')}`, `${text} ${group}.`]));
      }
      const answer = sentences.join(pick([' ', '\n', '  ']));
      const result = verifyCitations(answer, sources);
      const known = new Set(sources.map((s) => s.n));
      for (const n of markersOf(result.answer)) assert.ok(known.has(n), `[${n}] survived in ${JSON.stringify(result.answer)}`);
      for (const c of result.citations) {
        assert.ok(known.has(c.marker));
        assert.ok(result.answer.includes(c.sentence), `${JSON.stringify(c.sentence)} not in the answer`);
        if (!c.supported) assert.ok(result.unsupportedMarkers.includes(c.marker));
      }
      for (const n of markersOf(answer)) if (!known.has(n)) assert.ok(result.unsupportedMarkers.includes(n));
      // Only markers and whitespace change: the words are the answer's.
      const prose = (text: string): string => stripMarkers(text).replace(/\s+/g, '');
      assert.equal(prose(result.answer), prose(answer));
    }
  });
});

describe('support and relevance helpers', () => {
  it('light-stems plurals and -ed/-ing forms together, without touching numbers', () => {
    assert.equal(stem('developed'), stem('develops'));
    assert.equal(stem('cities'), stem('city'));
    assert.equal(stem('running'), stem('run'));
    assert.equal(stem('created'), stem('create'));
    assert.equal(stem('1660s'), '1660s');
    assert.deepEqual(stemmedTerms("The boxes weren't opened"), [stem('box'), stem('open')]);
  });

  it('scores support as the share of content terms found, ignoring markers', () => {
    const terms = new Set(stemmedTerms('Paris is the capital of France.'));
    assert.equal(supportScore('Paris is the capital [1].', terms), 1);
    assert.equal(supportScore('Paris has many bakeries [1].', terms), 1 / 3);
    assert.equal(supportScore('It is [1].', terms), 1);
  });

  it('rates an on-topic source far above an unrelated one', () => {
    assert.ok(assessRelevance('Who showed that air is necessary for combustion?', [BOYLE]) > 0.9);
    assert.ok(assessRelevance('Who showed that air is necessary for combustion?', [PARIS]) < 0.1);
    assert.equal(assessRelevance('Who is he?', [PARIS]), 0);
    assert.equal(assessRelevance('What is the capital of France?', []), 0);
  });

  it('lowers relevance when the question is negated and the sentence is not', () => {
    const plain = bestCoverage(analyzeRelevance('What is the capital of France?', [PARIS]));
    const negated = bestCoverage(analyzeRelevance('What is not the capital of France?', [PARIS]));
    assert.ok(negated < plain * 0.8, `${negated} vs ${plain}`);
  });
});
