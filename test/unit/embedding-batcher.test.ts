import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EmbeddingBatcher } from '../../src/modules/ingestion/embedding-batcher';
import type { Embedder } from '../../src/ports/embedder.port';

/** Records every provider call; a text's vector is [its length, its first char code]. */
class RecordingEmbedder implements Embedder {
  readonly info = { name: 'recording', dimensions: 2 };
  calls: string[][] = [];
  failWhen: (texts: readonly string[]) => boolean = () => false;

  constructor(readonly maxBatchSize: number) {}

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.calls.push([...texts]);
    await new Promise((resolve) => setTimeout(resolve, 1));
    if (this.failWhen(texts)) throw new Error('provider exploded');
    return texts.map((t) => Float32Array.of(t.length, t.charCodeAt(0)));
  }
}

describe('EmbeddingBatcher', () => {
  it('turns 64 concurrent embed() calls into exactly one provider call', async () => {
    const embedder = new RecordingEmbedder(256);
    const batches: number[] = [];
    const batcher = new EmbeddingBatcher(embedder, { onBatch: (size) => batches.push(size) });
    const texts = Array.from({ length: 64 }, (_, i) => `text number ${i}`);
    const vectors = await Promise.all(texts.map((t) => batcher.embed(t)));
    assert.equal(embedder.calls.length, 1);
    assert.equal(embedder.calls[0]!.length, 64);
    assert.deepEqual(batches, [64]);
    vectors.forEach((v, i) => assert.deepEqual([...v], [texts[i]!.length, texts[i]!.charCodeAt(0)]));
  });

  it('collects calls made within the window, not only within one tick', async () => {
    const embedder = new RecordingEmbedder(256);
    const batcher = new EmbeddingBatcher(embedder, { windowMs: 20 });
    const first = batcher.embed('early');
    await new Promise((resolve) => setImmediate(resolve));
    const second = batcher.embed('a bit later');
    await Promise.all([first, second]);
    assert.deepEqual(embedder.calls, [['early', 'a bit later']]);
  });

  it('splits 300 texts at maxBatchSize 128 into 3 provider calls, results in order', async () => {
    const embedder = new RecordingEmbedder(128);
    const batcher = new EmbeddingBatcher(embedder);
    const texts = Array.from({ length: 300 }, (_, i) => `t${i}`);
    const vectors = await batcher.embedMany(texts);
    assert.deepEqual(
      embedder.calls.map((c) => c.length),
      [128, 128, 44],
    );
    assert.equal(vectors.length, 300);
    vectors.forEach((v, i) => assert.equal(v[0], texts[i]!.length));
  });

  it('rejects only the callers of the batch whose provider call failed', async () => {
    const embedder = new RecordingEmbedder(2);
    embedder.failWhen = (texts) => texts.includes('poison');
    const batcher = new EmbeddingBatcher(embedder);
    const results = await Promise.allSettled(['a', 'b', 'poison', 'c', 'd', 'e'].map((t) => batcher.embed(t)));
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled'],
    );
    const rejected = results[2] as PromiseRejectedResult;
    assert.match(String(rejected.reason), /provider exploded/);
    await assert.rejects(batcher.embedMany(['x', 'poison']), /provider exploded/);
  });

  it('sends identical texts once per batch and gives every caller the vector', async () => {
    const embedder = new RecordingEmbedder(256);
    const batcher = new EmbeddingBatcher(embedder);
    const vectors = await Promise.all([batcher.embed('same'), batcher.embed('same'), batcher.embedMany(['other', 'same', 'other'])]);
    assert.deepEqual(embedder.calls, [['same', 'other']]);
    assert.deepEqual([...vectors[0]], [4, 's'.charCodeAt(0)]);
    assert.deepEqual([...vectors[1]], [4, 's'.charCodeAt(0)]);
    assert.deepEqual(
      vectors[2].map((v) => v[0]),
      [5, 4, 5],
    );
  });

  it('does not cache between batches and survives a throwing metrics hook', async () => {
    const embedder = new RecordingEmbedder(256);
    const batcher = new EmbeddingBatcher(embedder, {
      onBatch: () => {
        throw new Error('metrics down');
      },
    });
    await batcher.embed('again');
    await batcher.embed('again');
    assert.equal(embedder.calls.length, 2);
  });
});
