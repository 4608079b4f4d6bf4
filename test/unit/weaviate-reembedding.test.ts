import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WeaviateKnowledgeStore } from '../../src/adapters/weaviate/weaviate.knowledge-store';
import { sha256Hex } from '../../src/ids';
import type { DocumentWrite } from '../../src/ports/knowledge-store.port';
import { FakeWeaviate } from '../helpers/fake-weaviate';

const A = { name: 'emb-a', dimensions: 4 };
const B = { name: 'emb-b', dimensions: 3 };

function unitVector(text: string, dims: number): Float32Array {
  const h = sha256Hex(`${dims}:${text}`);
  const v = Float32Array.from({ length: dims }, (_, i) => parseInt(h.slice(i * 4, i * 4 + 4), 16) / 0xffff - 0.5);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

function doc(externalId: string, texts: string[]): DocumentWrite {
  return {
    externalId,
    title: null,
    source: null,
    contentType: 'TEXT',
    metadata: {},
    contentHash: sha256Hex(texts.join('\n')),
    charCount: texts.join('\n').length,
    chunks: texts.map((text, index) => ({ index, text, startOffset: 0, endOffset: text.length, vector: unitVector(text, A.dimensions) })),
  };
}

async function setUp() {
  const fake = new FakeWeaviate();
  const store = new WeaviateKnowledgeStore(
    { url: 'http://weaviate.test:8080', timeoutMs: 500, insertTimeoutMs: 500, initTimeoutMs: 500, retries: 0, breakerThreshold: 100 },
    { connect: fake.connect },
  );
  await store.init();
  const c = await store.createCollection({
    name: 'reembed',
    description: null,
    chunking: { strategy: 'SENTENCE', chunkSize: 100, chunkOverlap: 10 },
    embedder: A,
  });
  await store.upsertDocument(c.id, doc('one', ['alpha beta', 'gamma delta']));
  await store.upsertDocument(c.id, doc('two', ['epsilon zeta']));
  const base = `KbqlChunks_${c.id.replace(/-/g, '')}`;
  const fill = async () => {
    for (;;) {
      const pending = await store.reembedding.pendingChunks(c.id, 2);
      if (pending.length === 0) return;
      await store.reembedding.writeSecondaryVectors(
        c.id,
        B,
        pending.map((p) => ({ chunkId: p.id, vector: unitVector(p.text, B.dimensions) })),
      );
    }
  };
  return { fake, store, c, base, fill };
}

describe('Weaviate re-embedding at the client boundary', () => {
  it('builds a shadow chunk collection of copies with the new vectors', async () => {
    const { fake, store, c, base, fill } = await setUp();
    await store.reembedding.startSecondary(c.id, B);
    const shadow = fake.collectionNames().find((n) => n.startsWith(`${base}_`));
    assert.ok(shadow, 'a shadow collection named after the base one');
    await fill();
    const copies = fake.objects(shadow);
    assert.deepEqual(
      copies.map((o) => o.id).sort(),
      fake
        .objects(base)
        .map((o) => o.id)
        .sort(),
      'same chunk ids',
    );
    assert.ok(copies.every((o) => o.vector?.length === B.dimensions));
    await store.close();
  });

  it('switches with one write of the embedding state; searches then go to the shadow collection', async () => {
    const { fake, store, c, base, fill } = await setUp();
    await store.reembedding.startSecondary(c.id, B);
    await fill();
    const shadow = fake.collectionNames().find((n) => n.startsWith(`${base}_`))!;
    const before = fake.calls.length;
    await store.reembedding.swapEmbedding(c.id, new Date(Date.now() + 60_000));
    const writes = fake.calls.slice(before).filter((call) => call.method === 'insertMany');
    assert.equal(writes.length, 2, 'the state object, then the version bump');
    const [stateWrite] = writes[0]!.args as [{ properties: Record<string, unknown> }[]];
    assert.equal(stateWrite[0]!.properties['kind'], 'embedding', 'the switch itself is the first, single-object write');
    assert.equal(stateWrite.length, 1);

    const nearBase = fake.count('nearVector', base) - fake.count('nearVector', `${base}_`);
    const hits = await store.search({
      collectionId: c.id,
      mode: 'VECTOR',
      text: '',
      vector: unitVector('alpha beta', 3),
      embedder: B,
      alpha: 1,
      limit: 3,
      offset: 0,
    });
    assert.equal(hits[0]!.chunk.text, 'alpha beta');
    assert.equal(fake.count('nearVector', shadow), 1, 'searched the shadow collection');
    assert.equal(fake.count('nearVector', base) - fake.count('nearVector', `${base}_`), nearBase, 'not the old one');
    assert.deepEqual((await store.getCollection(c.id))!.embedder, B);
    await store.close();
  });

  it('rollback, drop and delete leave no chunk collection behind', async () => {
    const { fake, store, c, base, fill } = await setUp();
    await store.reembedding.startSecondary(c.id, B);
    await fill();
    await store.reembedding.swapEmbedding(c.id, new Date(Date.now() + 60_000));
    await store.reembedding.swapEmbedding(c.id, null);
    assert.deepEqual((await store.getCollection(c.id))!.embedder, A);
    // The replaced shadow is retired, not deleted at once (a search may still read it), then dropped.
    assert.equal(fake.collectionNames().filter((n) => n.startsWith(`${base}_`)).length, 1);
    await store.reembedding.dropSecondary(c.id);
    assert.equal(fake.collectionNames().filter((n) => n.startsWith(`${base}_`)).length, 0);
    await store.reembedding.startSecondary(c.id, B);
    await store.deleteCollection(c.id);
    assert.deepEqual(
      fake.collectionNames().filter((n) => n.startsWith(base)),
      [],
    );
    await store.close();
  });
});
