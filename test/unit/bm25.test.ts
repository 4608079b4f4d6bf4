import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { porterStem } from '../../src/adapters/embedders/hash.embedder';
import { analyzeChunk, analyzeQuery, DEFAULT_BM25_PARAMS, feedbackQuery, idf, scoreBm25, type Bm25Stats } from '../../src/retrieval/bm25';

const stats = (df: Record<string, number>, chunkCount = 100, meanLength = 10): Bm25Stats => ({
  chunkCount,
  meanLength,
  documentFrequency: (t) => df[t.term] ?? 0,
});

describe('bm25', () => {
  it('drops stopwords from the query and stems like the index', () => {
    const terms = analyzeQuery('When is the coffee machine cleaned?', porterStem);
    assert.deepEqual(
      terms.map((t) => t.term),
      ['coffe', 'machin', 'clean'],
    );
    // A query of stopwords only keeps them (rather than matching nothing).
    assert.equal(analyzeQuery('who are you', porterStem).length, 3);
  });

  it('ranks a chunk whose title holds the term above one that does not', () => {
    const query = analyzeQuery('coffee machine', porterStem);
    const s = stats({ coffe: 2, machin: 2 });
    const idfs = query.map((t) => idf(s, t));
    const titled = analyzeChunk('It is cleaned every Friday.', 'Coffee machine', porterStem, 1);
    const untitled = analyzeChunk('It is cleaned every Friday.', 'Kitchen', porterStem, 1);
    assert.ok(scoreBm25(query, idfs, titled, 10, DEFAULT_BM25_PARAMS) > 0);
    assert.equal(scoreBm25(query, idfs, untitled, 10, DEFAULT_BM25_PARAMS), 0);
  });

  it('rare terms weigh more, and repeated ones saturate', () => {
    const s = stats({ rare: 1, common: 90 });
    assert.ok(idf(s, { term: 'rare', surface: 'rare', weight: 1 }) > idf(s, { term: 'common', surface: 'common', weight: 1 }));
    const q = [{ term: 'rare', surface: 'rare', weight: 1 }];
    const once = analyzeChunk('rare word here', null, (w) => w, 0);
    const many = analyzeChunk('rare rare rare', null, (w) => w, 0);
    const one = scoreBm25(q, [1], once, 3, DEFAULT_BM25_PARAMS);
    const three = scoreBm25(q, [1], many, 3, DEFAULT_BM25_PARAMS);
    assert.ok(three > one && three < 3 * one);
  });

  it('feedback adds the best chunks’ rare terms and keeps the query terms strongest', () => {
    const query = analyzeQuery('coffee machine', porterStem);
    const surfaces = new Map<string, string>();
    const chunk = analyzeChunk('The coffee machine descaling happens with descaling tablets.', null, porterStem, 0, surfaces);
    const s = stats({ coffe: 5, machin: 5, descal: 2, tablet: 3, happen: 60 });
    const expanded = feedbackQuery(query, [{ chunk, score: 3 }], s, { feedbackChunks: 5, feedbackTerms: 2, feedbackWeight: 0.4 }, surfaces);
    assert.equal(expanded.find((t) => t.term === 'descal')?.surface, 'descaling');
    const byTerm = new Map(expanded.map((t) => [t.term, t.weight]));
    assert.ok(byTerm.has('descal'), 'the rare repeated term is added');
    assert.ok(!byTerm.has('happen'), 'a common term is not');
    assert.ok(byTerm.get('coffe')! > byTerm.get('descal')!);
    const total = expanded.reduce((sum, t) => sum + t.weight, 0);
    assert.ok(Math.abs(total - 2) < 1e-9, 'the query keeps its total weight');
    assert.deepEqual(feedbackQuery(query, [], s, DEFAULT_BM25_PARAMS, surfaces), query);
  });
});
