import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { OllamaEmbedder } from '../../src/adapters/embedders/ollama.embedder';
import { LlmSynthesizer, createOllamaLlm } from '../../src/adapters/synthesizers/llm.synthesizer';
import { AppError } from '../../src/errors';
import { OpenAiStub, chatTokens, stubEmbedding } from '../helpers/openai-stub';
import { QUESTION, REPLY, SOURCES, collectSynthesis } from '../helpers/llm-fixtures';

describe('LlmSynthesizer over Ollama (createOllamaLlm) against the stub’s /api/chat', () => {
  let stub: OpenAiStub;
  before(async () => {
    stub = await OpenAiStub.start({ chatReply: REPLY, models: ['llama3.2'] });
  });
  beforeEach(() => {
    stub.reset();
    stub.chatReply = REPLY;
    stub.tokenDelayMs = 0;
  });
  after(() => stub.close());

  const synth = (options: Partial<ConstructorParameters<typeof LlmSynthesizer>[0]> & { httpTimeoutMs?: number } = {}): LlmSynthesizer =>
    new LlmSynthesizer({
      llm: createOllamaLlm({ host: stub.origin, model: 'llama3.2', timeoutMs: options.httpTimeoutMs ?? 5000 }),
      name: 'llm:ollama:llama3.2',
      timeoutMs: 2000,
      retryInitialDelayMs: 1,
      retryMaxDelayMs: 5,
      ...options,
    });

  it('streams NDJSON tokens as deltas in order; the final answer keeps verified citations and eval-count usage', async () => {
    const { deltas, synthesis } = await collectSynthesis(synth().stream({ question: QUESTION, sources: SOURCES }));
    assert.deepEqual(deltas, chatTokens(REPLY), 'one delta per streamed token, in order');
    assert.equal(synthesis.answer, REPLY);
    assert.equal(synthesis.abstained, false);
    assert.ok(synthesis.citations.length >= 1 && synthesis.citations.every((c) => c.supported));
    assert.deepEqual(synthesis.unsupportedMarkers, []);
    const [request] = stub.requests;
    assert.equal(request!.route, 'ollama-chat');
    assert.equal(request!.stream, true);
    assert.equal(request!.completed, true);
    assert.equal(request!.body['model'], 'llama3.2');
    assert.equal((request!.body['options'] as { temperature?: number }).temperature, 0);
    const messages = request!.body['messages'] as { role: string; content: string }[];
    assert.deepEqual(
      messages.map((m) => m.role),
      ['system', 'user'],
    );
    assert.match(messages[1]!.content, /\[1\] Combustion/);
    // Usage is what the stub's final line reported: eval_count is the number of streamed tokens.
    assert.equal(synthesis.usage?.completionTokens, chatTokens(REPLY).length);
    assert.ok((synthesis.usage?.promptTokens ?? 0) > 0);
    assert.equal(synthesis.usage?.totalTokens, synthesis.usage.promptTokens + synthesis.usage.completionTokens);
  });

  it('answers without streaming (stream: false, one JSON object) with usage from eval counts', async () => {
    stub.chatReply = 'Robert Boyle showed that air is necessary for combustion [1][4].';
    const synthesis = await synth().synthesize({ question: QUESTION, sources: SOURCES });
    assert.equal(synthesis.answer, 'Robert Boyle showed that air is necessary for combustion [1].');
    assert.deepEqual(synthesis.unsupportedMarkers, [4]);
    assert.equal(synthesis.usage?.completionTokens, chatTokens(stub.chatReply).length);
    assert.equal(stub.requests[0]!.stream, false);
    assert.equal(stub.requests[0]!.completed, true);
  });

  it('a caller abort mid-stream closes the HTTP request, rejects with its reason and is not retried', async () => {
    stub.hangNext(1, { afterTokens: 2 });
    const controller = new AbortController();
    const deltas: string[] = [];
    const run = (async () => {
      for await (const e of synth({ timeoutMs: 10_000 }).stream({ question: QUESTION, sources: SOURCES }, controller.signal)) {
        if (e.type === 'delta') {
          deltas.push(e.text);
          if (deltas.length === 2) controller.abort(new Error('client went away'));
        }
      }
    })();
    await assert.rejects(run, /client went away/);
    await stub.waitForIdle(2000);
    assert.equal(stub.aborted, 1, 'the stub saw the request closed');
    assert.equal(stub.count('ollama-chat'), 1, 'no retry after the caller left');
    assert.equal(deltas.join(''), 'Robert Boyle');
  });

  it('ending the iteration early aborts the HTTP request', async () => {
    stub.tokenDelayMs = 20;
    const iterator = synth().stream({ question: QUESTION, sources: SOURCES })[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).done, false);
    await iterator.return?.(undefined);
    await stub.waitForIdle(2000);
    assert.equal(stub.aborted, 1);
    assert.ok(stub.requests[0]!.tokensSent < chatTokens(REPLY).length, 'the reply was cut short');
    assert.equal(stub.count('ollama-chat'), 1);
  });

  it('retries HTTP 500 (ResponseError status_code) and succeeds, streaming and not', async () => {
    stub.failNext(500, 2, { routes: ['ollama-chat'] });
    const { synthesis } = await collectSynthesis(synth().stream({ question: QUESTION, sources: SOURCES }));
    assert.equal(synthesis.answer, REPLY);
    assert.equal(stub.count('ollama-chat'), 3);

    stub.reset();
    stub.failNext(503, 1);
    assert.equal((await synth().synthesize({ question: QUESTION, sources: SOURCES })).answer, REPLY);
    assert.equal(stub.count('ollama-chat'), 2);
  });

  it('HTTP 500 is retried, then the breaker opens: UPSTREAM_UNAVAILABLE fast without calling Ollama', async () => {
    const s = synth({ retries: 1, breakerThreshold: 2, breakerHalfOpenAfterMs: 60_000 });
    stub.failNext(500, 10);
    await assert.rejects(collectSynthesis(s.stream({ question: QUESTION, sources: SOURCES })), {
      code: 'UPSTREAM_UNAVAILABLE',
      details: { provider: 'ollama', upstreamStatus: 500 },
    });
    assert.equal(stub.count('ollama-chat'), 2, 'first attempt and one retry');
    assert.equal(s.circuit, 'open');
    await assert.rejects(collectSynthesis(s.stream({ question: QUESTION, sources: SOURCES })), {
      code: 'UPSTREAM_UNAVAILABLE',
      details: { provider: 'ollama', circuit: 'open' },
    });
    await assert.rejects(s.synthesize({ question: QUESTION, sources: SOURCES }), {
      code: 'UPSTREAM_UNAVAILABLE',
      details: { provider: 'ollama', circuit: 'open' },
    });
    assert.equal(stub.count('ollama-chat'), 2, 'no call while the circuit is open');
  });

  it('a hang before the first token or between tokens → UPSTREAM_TIMEOUT, the request closed, no retry', async () => {
    stub.hangNext(1);
    await assert.rejects(collectSynthesis(synth({ timeoutMs: 150 }).stream({ question: QUESTION, sources: SOURCES })), {
      code: 'UPSTREAM_TIMEOUT',
      details: { provider: 'ollama', timeoutMs: 150 },
    });
    await stub.waitForIdle(2000);
    assert.equal(stub.count('ollama-chat'), 1);
    assert.equal(stub.aborted, 1);

    stub.reset();
    stub.hangNext(1, { afterTokens: 3 });
    const deltas: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of synth({ timeoutMs: 150 }).stream({ question: QUESTION, sources: SOURCES }))
          if (e.type === 'delta') deltas.push(e.text);
      })(),
      { code: 'UPSTREAM_TIMEOUT' },
    );
    assert.equal(deltas.join(''), 'Robert Boyle showed');
    await stub.waitForIdle(2000);
    assert.equal(stub.aborted, 1);

    stub.reset();
    stub.hangNext(1);
    await assert.rejects(synth({ timeoutMs: 150 }).synthesize({ question: QUESTION, sources: SOURCES }), { code: 'UPSTREAM_TIMEOUT' });
    await stub.waitForIdle(2000);
    assert.equal(stub.aborted, 1);
  });

  it('the HTTP timeout bounds the wait for a response, not a stream that keeps producing tokens', async () => {
    // 16 tokens 40 ms apart: the whole reply takes ~600 ms, longer than the 300 ms HTTP timeout, but no gap does.
    stub.tokenDelayMs = 40;
    const { synthesis } = await collectSynthesis(
      synth({ httpTimeoutMs: 300, timeoutMs: 2000 }).stream({ question: QUESTION, sources: SOURCES }),
    );
    assert.equal(synthesis.answer, REPLY);
    assert.equal(stub.requests[0]!.completed, true);
  });

  it('the HTTP timeout still aborts a server that never answers', async () => {
    stub.hangNext(1);
    await assert.rejects(
      synth({ httpTimeoutMs: 150, timeoutMs: 10_000, retries: 0 }).synthesize({ question: QUESTION, sources: SOURCES }),
      {
        code: 'UPSTREAM_TIMEOUT',
      },
    );
    await stub.waitForIdle(2000);
    assert.equal(stub.aborted, 1);
  });

  it('aborted and failed streams are not kept by the Ollama client', async () => {
    const llm = createOllamaLlm({ host: stub.origin, model: 'llama3.2', timeoutMs: 5000 });
    const s = new LlmSynthesizer({ llm, name: 'llm:ollama:llama3.2', timeoutMs: 150, retries: 0 });
    stub.hangNext(1, { afterTokens: 2 });
    await assert.rejects(collectSynthesis(s.stream({ question: QUESTION, sources: SOURCES })), { code: 'UPSTREAM_TIMEOUT' });
    const iterator = s.stream({ question: QUESTION, sources: SOURCES })[Symbol.asyncIterator]();
    await iterator.next();
    await iterator.return?.(undefined);
    await collectSynthesis(s.stream({ question: QUESTION, sources: SOURCES }));
    await stub.waitForIdle(2000);
    const client = (llm as unknown as { ollama: { ongoingStreamedRequests: unknown[] } }).ollama;
    assert.equal(client.ongoingStreamedRequests.length, 0);
  });
});

describe('OllamaEmbedder against the stub’s Ollama routes', () => {
  let stub: OpenAiStub;
  before(async () => {
    stub = await OpenAiStub.start({ dimensions: 8 });
  });
  beforeEach(() => stub.reset());
  after(() => stub.close());

  it('splits a call into batches of maxBatchSize, one request per text, vectors in input order', async () => {
    const embedder = new OllamaEmbedder({
      host: stub.origin,
      model: 'nomic-embed-text',
      dimensions: 8,
      maxBatchSize: 2,
      concurrency: 2,
      timeoutMs: 2000,
    });
    const texts = ['alpha beta', 'gamma', 'delta epsilon', 'zeta', 'eta theta'];
    const vectors = await embedder.embed(texts);
    assert.equal(vectors.length, texts.length);
    vectors.forEach((v, i) =>
      assert.deepEqual(
        Array.from(v),
        Array.from(stubEmbedding(texts[i]!, 8)).map((x) => Math.fround(x)),
        texts[i],
      ),
    );
    // The LlamaIndex client posts one prompt per request to /api/embeddings (not the batch endpoint /api/embed).
    assert.equal(stub.count('ollama-embeddings'), texts.length);
    assert.deepEqual(
      stub.requests.map((r) => r.body['prompt']),
      texts,
      'batches run in order',
    );
    assert.equal(stub.inFlight, 0);
  });

  it('refuses vectors whose length differs from the configured dimensions', async () => {
    const embedder = new OllamaEmbedder({ host: stub.origin, model: 'nomic-embed-text', dimensions: 16, timeoutMs: 2000 });
    const error = await embedder.embed(['x']).then(
      () => assert.fail('expected a dimension error'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'UPSTREAM_UNAVAILABLE');
    assert.deepEqual([error.details['expectedDimensions'], error.details['receivedDimensions']], [16, 8]);
  });

  it('retries a 500 of /api/embeddings within the call', async () => {
    stub.failNext(500, 1, { routes: ['ollama-embeddings'] });
    const embedder = new OllamaEmbedder({
      host: stub.origin,
      model: 'nomic-embed-text',
      dimensions: 8,
      timeoutMs: 2000,
      resilience: { retryInitialDelayMs: 1, retryMaxDelayMs: 5 },
    });
    const [v] = await embedder.embed(['alpha']);
    assert.equal(v!.length, 8);
    assert.equal(stub.count('ollama-embeddings'), 2);
  });

  it('the stub’s /api/embed and /api/tags answer like Ollama', async () => {
    const embed = (await (
      await fetch(`${stub.origin}/api/embed`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', input: ['a b', 'c'] }),
        signal: AbortSignal.timeout(2000),
      })
    ).json()) as {
      embeddings: number[][];
    };
    assert.equal(embed.embeddings.length, 2);
    assert.equal(embed.embeddings[0]!.length, 8);
    const tags = (await (await fetch(`${stub.origin}/api/tags`, { signal: AbortSignal.timeout(2000) })).json()) as {
      models: { name: string }[];
    };
    assert.deepEqual(
      tags.models.map((m) => m.name),
      ['stub-chat', 'stub-embed'],
    );
    assert.deepEqual([stub.count('ollama-embed'), stub.count('ollama-tags')], [1, 1]);
  });
});
