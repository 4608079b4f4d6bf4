import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HashEmbedder, porterStem } from '../../src/adapters/embedders/hash.embedder';

const cosine = (a: Float32Array, b: Float32Array): number => a.reduce((sum, x, i) => sum + x * b[i]!, 0);
const norm = (v: Float32Array): number => Math.sqrt(cosine(v, v));

describe('HashEmbedder', () => {
  const embedder = new HashEmbedder();

  it('describes itself and defaults to 1024 dimensions', () => {
    assert.deepEqual(embedder.info, { name: 'kbql-hash-v1', dimensions: 1024 });
    assert.equal(embedder.maxBatchSize, 2048);
    assert.deepEqual(new HashEmbedder({ dimensions: 256 }).info, { name: 'kbql-hash-v1', dimensions: 256 });
    assert.equal(new HashEmbedder({}, { bigram: 0 }).info.name, 'kbql-hash-v1+custom');
    assert.throws(() => new HashEmbedder({ dimensions: 1.5 }), RangeError);
    assert.throws(() => new HashEmbedder({ dimensions: 0 }), RangeError);
  });

  it('is deterministic across calls and instances', async () => {
    const text = 'Insulin resistance in skeletal muscle precedes type 2 diabetes.';
    const [a] = await embedder.embed([text]);
    const [b] = await new HashEmbedder().embed([text]);
    assert.deepEqual(a, b);
    assert.deepEqual(embedder.embedSync(text), a);
  });

  it('returns one L2-normalised vector of the configured length per text, in order', async () => {
    const small = new HashEmbedder({ dimensions: 64 });
    const texts = ['alpha beta', '', '?!…', 'Ünïcödé wörds and 3.14 numbers', 'x'.repeat(5000), 'alpha beta'];
    const vectors = await small.embed(texts);
    assert.equal(vectors.length, texts.length);
    for (const v of vectors) {
      assert.ok(v instanceof Float32Array);
      assert.equal(v.length, 64);
      assert.ok(Math.abs(norm(v) - 1) < 1e-5, `norm ${norm(v)}`);
    }
    assert.deepEqual(vectors[0], vectors[5]);
    assert.notDeepEqual(vectors[0], vectors[3]);
    // Texts without words share one fixed vector.
    assert.deepEqual(vectors[1], vectors[2]);
  });

  it('ranks similar texts above unrelated ones', () => {
    const query = embedder.embedSync('effects of aspirin on heart attack risk');
    const related = embedder.embedSync('Aspirin lowers the risk of a heart attack in older adults.');
    const unrelated = embedder.embedSync('The medieval castle was rebuilt in stone after the fire.');
    assert.ok(cosine(query, related) > 0.3, `related ${cosine(query, related)}`);
    assert.ok(Math.abs(cosine(query, unrelated)) < 0.15, `unrelated ${cosine(query, unrelated)}`);
  });

  it('matches a paraphrase through shared stems and word pieces, not only identical words', () => {
    const query = embedder.embedSync('vaccination reduced infections among children');
    const paraphrase = embedder.embedSync('Vaccinated children were infected less often.');
    const unrelated = embedder.embedSync('Glaciers retreated quickly during the warm decade.');
    const sameTopicOtherWords = embedder.embedSync('Kids who got their shots fell ill less.');
    assert.ok(cosine(query, paraphrase) > cosine(query, unrelated) + 0.2);
    assert.ok(cosine(query, paraphrase) > cosine(query, sameTopicOtherWords));
  });

  it('weighs rare topic words above common academic filler', () => {
    const query = embedder.embedSync('results of the study on mitochondria');
    const topic = embedder.embedSync('Mitochondria produce energy.');
    const filler = embedder.embedSync('The results of the study were reported.');
    assert.ok(cosine(query, topic) > cosine(query, filler), `${cosine(query, topic)} vs ${cosine(query, filler)}`);
  });

  it('honours an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await assert.rejects(embedder.embed(['text'], controller.signal), /stop/);
  });
});

describe('porterStem', () => {
  it('stems like the reference Porter algorithm', () => {
    const expected: Record<string, string> = {
      caresses: 'caress',
      ponies: 'poni',
      cats: 'cat',
      agreed: 'agre',
      plastered: 'plaster',
      motoring: 'motor',
      hopping: 'hop',
      filing: 'file',
      happy: 'happi',
      relational: 'relat',
      conditional: 'condit',
      generalization: 'gener',
      connections: 'connect',
      vaccination: 'vaccin',
      vaccinated: 'vaccin',
      infections: 'infect',
      infected: 'infect',
    };
    for (const [word, stem] of Object.entries(expected)) assert.equal(porterStem(word), stem, word);
    assert.equal(porterStem('p53'), 'p53');
    assert.equal(porterStem('is'), 'is');
  });
});
