import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LlmSynthesizer, createOpenAiLlm, visibleText } from '../../src/adapters/synthesizers/llm.synthesizer';
import { NOT_FOUND_REASON } from '../../src/retrieval/relevance';
import { OpenAiStub } from '../helpers/openai-stub';
import { QUESTION, REPLY, SOURCES, collectSynthesis } from '../helpers/llm-fixtures';

describe('LlmSynthesizer against an OpenAI-compatible stub: streaming, retries, breaker, aborts', () => {
  let stub: OpenAiStub;
  before(async () => {
    stub = await OpenAiStub.start({ chatReply: REPLY });
  });
  beforeEach(() => {
    stub.reset();
    stub.chatReply = REPLY;
    stub.tokenDelayMs = 0;
  });
  after(() => stub.close());

  const synth = (options: Partial<ConstructorParameters<typeof LlmSynthesizer>[0]> = {}): LlmSynthesizer =>
    new LlmSynthesizer({
      llm: createOpenAiLlm({ baseURL: stub.baseUrl, model: 'stub-chat', timeoutMs: 5000 }),
      name: 'llm:openai:stub-chat',
      timeoutMs: 2000,
      retryInitialDelayMs: 1,
      retryMaxDelayMs: 5,
      streamChatOptions: { stream_options: { include_usage: true } },
      ...options,
    });

  it('streams token deltas that join to the reply, then the verified synthesis with usage', async () => {
    const { deltas, synthesis } = await collectSynthesis(synth().stream({ question: QUESTION, sources: SOURCES }));
    assert.ok(deltas.length >= 10, `token deltas, got ${deltas.length}`);
    assert.equal(deltas.join(''), REPLY);
    assert.equal(synthesis.answer, REPLY);
    assert.deepEqual(synthesis.unsupportedMarkers, []);
    assert.equal(synthesis.usage?.completionTokens, REPLY.split(' ').length);
    const [request] = stub.requests;
    assert.equal(request!.stream, true);
    assert.equal(request!.completed, true);
  });

  it('streams a hallucinated marker but the final answer drops and reports it', async () => {
    stub.chatReply = 'Robert Boyle showed that air is necessary for combustion [1][4].';
    const { deltas, synthesis } = await collectSynthesis(synth().stream({ question: QUESTION, sources: SOURCES }));
    assert.match(deltas.join(''), /\[1\]\[4\]/);
    assert.equal(synthesis.answer, 'Robert Boyle showed that air is necessary for combustion [1].');
    assert.deepEqual(synthesis.unsupportedMarkers, [4]);
  });

  it('holds back a NOT_FOUND reply and a reasoning block: no delta, an abstention', async () => {
    stub.chatReply = '<think>the sources say nothing</think> NOT_FOUND';
    const { deltas, synthesis } = await collectSynthesis(synth().stream({ question: QUESTION, sources: SOURCES }));
    assert.deepEqual(deltas, []);
    assert.equal(synthesis.abstained, true);
    assert.equal(synthesis.abstentionReason, NOT_FOUND_REASON);
    assert.equal(visibleText('<think>x</think> Boyle <thi'), 'Boyle ');
    assert.equal(visibleText('NOT_F'), '');
  });

  it('retries transient failures (503, 429, a reset connection) with backoff, streaming and not', async () => {
    stub.failNext(503, 1).failNext(429, 1);
    const answered = await synth().synthesize({ question: QUESTION, sources: SOURCES });
    assert.equal(answered.answer, REPLY);
    assert.equal(stub.count('chat'), 3);

    stub.reset();
    stub.resetNext(1).failNext(502, 1);
    const { synthesis } = await collectSynthesis(synth().stream({ question: QUESTION, sources: SOURCES }));
    assert.equal(synthesis.answer, REPLY);
    assert.equal(stub.count('chat'), 3);
  });

  it('does not retry a 400 or a timed-out attempt', async () => {
    stub.failNext(400, 1);
    await assert.rejects(synth().synthesize({ question: QUESTION, sources: SOURCES }), {
      code: 'UPSTREAM_UNAVAILABLE',
      details: { provider: 'openai', upstreamStatus: 400 },
    });
    assert.equal(stub.count('chat'), 1);

    stub.reset();
    stub.hangNext(1);
    await assert.rejects(synth({ timeoutMs: 150 }).synthesize({ question: QUESTION, sources: SOURCES }), { code: 'UPSTREAM_TIMEOUT' });
    assert.equal(stub.count('chat'), 1);
    await stub.waitForIdle(2000);
    assert.equal(stub.aborted, 1, 'the timed-out request was closed');
  });

  it('opens the circuit after consecutive failures and then fails fast without calling the provider', async () => {
    const s = synth({ retries: 0, breakerThreshold: 2, breakerHalfOpenAfterMs: 60_000 });
    stub.failNext(500, 2);
    for (let i = 0; i < 2; i++)
      await assert.rejects(s.synthesize({ question: QUESTION, sources: SOURCES }), { code: 'UPSTREAM_UNAVAILABLE' });
    assert.equal(s.circuit, 'open');
    await assert.rejects(s.synthesize({ question: QUESTION, sources: SOURCES }), {
      code: 'UPSTREAM_UNAVAILABLE',
      details: { provider: 'openai', circuit: 'open' },
    });
    await assert.rejects(collectSynthesis(s.stream({ question: QUESTION, sources: SOURCES })), { code: 'UPSTREAM_UNAVAILABLE' });
    assert.equal(stub.count('chat'), 2, 'no call while the circuit is open');
  });

  it('times out a stream that stalls between tokens, and closes the provider request', async () => {
    stub.hangNext(1, { afterTokens: 3 });
    const deltas: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of synth({ timeoutMs: 200 }).stream({ question: QUESTION, sources: SOURCES }))
          if (e.type === 'delta') deltas.push(e.text);
      })(),
      { code: 'UPSTREAM_TIMEOUT' },
    );
    assert.equal(deltas.join(''), 'Robert Boyle showed');
    await stub.waitForIdle(2000);
    assert.equal(stub.aborted, 1);
  });

  it('ending the iteration early aborts the provider request (no call continues)', async () => {
    stub.tokenDelayMs = 20;
    const iterator = synth().stream({ question: QUESTION, sources: SOURCES })[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);
    assert.equal(stub.inFlight, 1);
    await iterator.return?.(undefined);
    await stub.waitForIdle(2000);
    assert.equal(stub.inFlight, 0);
    assert.equal(stub.aborted, 1);
    assert.ok(stub.requests[0]!.tokensSent < REPLY.split(' ').length, 'the reply was cut short');
  });

  it('aborting the caller’s signal mid-stream rejects with its reason and closes the request', async () => {
    stub.hangNext(1, { afterTokens: 2 });
    const controller = new AbortController();
    const run = (async () => {
      for await (const e of synth({ timeoutMs: 10_000 }).stream({ question: QUESTION, sources: SOURCES }, controller.signal)) {
        if (e.type === 'delta') controller.abort(new Error('client went away'));
      }
    })();
    await assert.rejects(run, /client went away/);
    await stub.waitForIdle(2000);
    assert.equal(stub.aborted, 1);
  });
});
