import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { HashEmbedder } from '../../src/adapters/embedders/hash.embedder';
import { ExtractiveSynthesizer } from '../../src/adapters/synthesizers/extractive.synthesizer';
import { createContext } from '../../src/app/context';
import { DEVELOPMENT_PRINCIPAL } from '../../src/modules/auth/principal';
import type { AnswerSynthesizer, Synthesis, SynthesisRequest } from '../../src/ports/answer-synthesizer.port';
import type { Embedder } from '../../src/ports/embedder.port';
import { createTestApp, dataOf, type TestApp } from '../helpers/test-app';

/** A provider stand-in: real vectors (the hash embedder), a fixed delay per call, every call recorded. */
class StubProvider implements Embedder {
  readonly inner = new HashEmbedder();
  readonly info = this.inner.info;
  calls: number[] = [];
  constructor(
    readonly maxBatchSize: number,
    private readonly delayMs = 20,
  ) {}
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.calls.push(texts.length);
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return this.inner.embed(texts);
  }
}

class CountingSynthesizer implements AnswerSynthesizer {
  readonly inner = new ExtractiveSynthesizer();
  readonly name = this.inner.name;
  calls = 0;
  synthesize(request: SynthesisRequest): Promise<Synthesis> {
    this.calls++;
    return this.inner.synthesize(request);
  }
}

const TOPICS = ['vacation', 'laptop', 'parking', 'badge', 'expense', 'travel', 'payroll', 'pension'];
const DOCS = TOPICS.map((topic, i) => ({
  id: topic,
  title: `${topic} policy`,
  content: `The ${topic} policy explains everything about ${topic} requests. Rule ${i + 1}: ${topic} questions go to the ${topic} desk within ${i + 2} days.`,
}));
const SEARCH = `query($q: String!) { search(collection: "kb", query: $q, mode: VECTOR, topK: 3) { hits { vectorScore chunk { id } } } }`;
const ASK = `query($q: String!) { ask(collection: "kb", question: $q) { answer abstained sources { document { externalId } } } }`;

describe('embedding batching across concurrent requests (real schema, in process)', () => {
  let t: TestApp;
  let small: TestApp;
  const provider = new StubProvider(2048);
  const limited = new StubProvider(16);
  const synthesizer = new CountingSynthesizer();
  let n = 0;

  const execute = async <T>(app: TestApp, query: string, variables: Record<string, unknown>) => {
    const response = await app.app.apollo.executeOperation(
      { query, variables },
      { contextValue: createContext(app.app.store, `req-${++n}`) },
    );
    if (response.body.kind !== 'single') throw new Error('expected a single result');
    return dataOf<T>(response.body.singleResult as never);
  };

  before(async () => {
    t = await createTestApp({}, { embedder: provider, synthesizer });
    small = await createTestApp({}, { embedder: limited });
    for (const app of [t, small]) {
      dataOf(await app.execute(`mutation { createCollection(input: { name: "kb" }) { id } }`));
    }
  });
  after(async () => {
    await t.close();
    await small.close();
  });

  it('embeds all chunks of one ingest request in one provider call', async () => {
    provider.calls = [];
    const result = dataOf<{ ingestDocuments: { indexed: number; results: { chunkCount: number }[] } }>(
      await t.execute(
        `mutation($docs: [DocumentInput!]!) { ingestDocuments(collection: "kb", documents: $docs) { indexed results { chunkCount } } }`,
        { docs: DOCS },
      ),
    );
    assert.equal(result.ingestDocuments.indexed, DOCS.length);
    assert.deepEqual(provider.calls, [result.ingestDocuments.results.reduce((sum, r) => sum + r.chunkCount, 0)]);
    dataOf(
      await small.execute(`mutation($docs: [DocumentInput!]!) { ingestDocuments(collection: "kb", documents: $docs) { indexed } }`, {
        docs: DOCS,
      }),
    );
  });

  it('turns 64 concurrent searches into exactly one provider call, each request getting its own vector', async () => {
    provider.calls = [];
    const queries = Array.from({ length: 64 }, (_, i) => `${TOPICS[i % TOPICS.length]} question number ${i}`);
    const results = await Promise.all(
      queries.map((q) => execute<{ search: { hits: { vectorScore: number; chunk: { id: string } }[] } }>(t, SEARCH, { q })),
    );
    assert.deepEqual(provider.calls, [64]);

    // Each response is what that query's own embedding finds (batching must not mix vectors up between requests).
    const collection = await t.app.services.collections.resolve('kb', DEVELOPMENT_PRINCIPAL);
    const direct = await provider.inner.embed(queries);
    for (let i = 0; i < queries.length; i++) {
      const expected = await t.app.store.search({
        collectionId: collection.id,
        mode: 'VECTOR',
        text: queries[i]!,
        vector: direct[i]!,
        alpha: 1,
        limit: 3,
        offset: 0,
      });
      assert.deepEqual(
        results[i]!.search.hits.map((h) => [h.chunk.id, h.vectorScore]),
        expected.map((h) => [h.chunk.id, h.vectorScore]),
        `query ${i}`,
      );
    }
  });

  it('turns 64 concurrent asks into one embedding call (and 64 syntheses: the questions differ)', async () => {
    provider.calls = [];
    const synth = synthesizer.calls;
    const questions = Array.from({ length: 64 }, (_, i) => `Where do ${TOPICS[i % TOPICS.length]} questions go, case ${i}?`);
    const answers = await Promise.all(
      questions.map((q) => execute<{ ask: { abstained: boolean; sources: { document: { externalId: string } }[] } }>(t, ASK, { q })),
    );
    assert.deepEqual(provider.calls, [64]);
    assert.equal(synthesizer.calls, synth + 64);
    answers.forEach((a, i) => assert.equal(a.ask.sources[0]?.document.externalId, TOPICS[i % TOPICS.length], `question ${i}`));
  });

  it('shares one embedding and one synthesis among identical concurrent asks', async () => {
    provider.calls = [];
    const synth = synthesizer.calls;
    const answers = await Promise.all(
      Array.from({ length: 32 }, () => execute<{ ask: unknown }>(t, ASK, { q: 'How fast are badge questions answered?' })),
    );
    assert.deepEqual(provider.calls, [1]);
    assert.equal(synthesizer.calls, synth + 1);
    for (const a of answers) assert.deepEqual(a, answers[0]);
  });

  it('splits a window at the provider limit: 64 texts, limit 16, four calls', async () => {
    limited.calls = [];
    const queries = Array.from({ length: 64 }, (_, i) => `split ${TOPICS[i % TOPICS.length]} ${i}`);
    await Promise.all(queries.map((q) => execute(small, SEARCH, { q })));
    assert.deepEqual(limited.calls, [16, 16, 16, 16]);
  });

  it('makes one call per window: requests in separate windows are separate calls', async () => {
    provider.calls = [];
    await Promise.all([execute(t, SEARCH, { q: 'window one a' }), execute(t, SEARCH, { q: 'window one b' })]);
    await Promise.all([execute(t, SEARCH, { q: 'window two a' }), execute(t, SEARCH, { q: 'window two b' })]);
    assert.deepEqual(provider.calls, [2, 2]);
    // An ask of a text already embedded (a different operation, so not a result-cache hit) uses the embedding cache.
    await Promise.all([execute(t, ASK, { q: 'window one a' }), execute(t, ASK, { q: 'window two b' })]);
    assert.deepEqual(provider.calls, [2, 2]);
  });
});
