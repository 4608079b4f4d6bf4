import type { LLM } from '@llamaindex/core/llms';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LlmSynthesizer, UNVERIFIED_REASON, createOllamaLlm, createOpenAiLlm } from '../../src/adapters/synthesizers/llm.synthesizer';
import { AppError } from '../../src/errors';
import { NOT_FOUND_REASON } from '../../src/retrieval/relevance';
import { QUESTION, SOURCES } from '../helpers/llm-fixtures';

const API_KEY = 'sk-test-secret-123';

/** What the stub does with the next request: reply with content, fail with a status, or never answer. */
type Behaviour = { reply: string } | { status: number } | { hang: true };

interface Recorded {
  path: string;
  authorization: string | undefined;
  body: Record<string, unknown>;
}

describe('LlmSynthesizer', () => {
  let server: Server;
  let baseUrl: string;
  let behaviour: Behaviour;
  let requests: Recorded[];

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
      req.on('end', () => {
        requests.push({ path: req.url ?? '', authorization: req.headers.authorization, body: JSON.parse(raw || '{}') });
        if ('hang' in behaviour) return;
        res.setHeader('content-type', 'application/json');
        if ('status' in behaviour) {
          res.statusCode = behaviour.status;
          res.end(JSON.stringify({ error: { message: 'boom', type: 'server_error' } }));
          return;
        }
        const body =
          req.url === '/api/chat'
            ? { model: 'stub', created_at: new Date(0).toISOString(), message: { role: 'assistant', content: behaviour.reply }, done: true }
            : {
                id: 'chatcmpl-1',
                object: 'chat.completion',
                created: 0,
                model: 'stub-model',
                choices: [{ index: 0, message: { role: 'assistant', content: behaviour.reply }, finish_reason: 'stop' }],
                usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
              };
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    requests = [];
    behaviour = { reply: '' };
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const openAi = (timeoutMs = 2000, minRelevance?: number, retries?: number): LlmSynthesizer =>
    new LlmSynthesizer({
      llm: createOpenAiLlm({ baseURL: `${baseUrl}/v1`, apiKey: API_KEY, model: 'stub-model', timeoutMs }),
      name: 'llm:openai:stub-model',
      timeoutMs,
      retryInitialDelayMs: 1,
      ...(minRelevance === undefined ? {} : { minRelevance }),
      ...(retries === undefined ? {} : { retries }),
    });

  it('keeps a correctly cited answer and sends numbered sources to /v1/chat/completions', async () => {
    behaviour = { reply: 'Robert Boyle showed that air is necessary for combustion [1].' };
    const result = await openAi().synthesize({ question: QUESTION, sources: SOURCES });
    assert.deepEqual(result, {
      answer: 'Robert Boyle showed that air is necessary for combustion [1].',
      abstained: false,
      abstentionReason: null,
      citations: [{ marker: 1, sentence: 'Robert Boyle showed that air is necessary for combustion [1].', supported: true }],
      unsupportedMarkers: [],
      usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 },
    });

    assert.equal(requests.length, 1);
    const [request] = requests;
    assert.equal(request!.path, '/v1/chat/completions');
    assert.equal(request!.authorization, `Bearer ${API_KEY}`);
    assert.equal(request!.body['model'], 'stub-model');
    assert.equal(request!.body['temperature'], 0);
    assert.notEqual(request!.body['stream'], true);
    const messages = request!.body['messages'] as { role: string; content: string }[];
    assert.deepEqual(
      messages.map((m) => m.role),
      ['system', 'user'],
    );
    assert.match(messages[0]!.content, /NOT_FOUND/);
    assert.match(messages[0]!.content, /\[1\]/);
    assert.ok(messages[1]!.content.includes(`[1] Combustion\n${SOURCES[0]!.chunk.text}`));
    assert.ok(messages[1]!.content.includes(`[2] Handbook\n${SOURCES[1]!.chunk.text}`));
    assert.ok(messages[1]!.content.includes(`Question: ${QUESTION}`));
  });

  it('removes a hallucinated [7] and an unsupported [2], and reports them', async () => {
    behaviour = { reply: 'Robert Boyle showed that air is necessary for combustion [1][7]. He was born in 1627 [2].' };
    const result = await openAi().synthesize({ question: QUESTION, sources: SOURCES });
    assert.equal(result.abstained, false);
    assert.equal(result.answer, 'Robert Boyle showed that air is necessary for combustion [1]. He was born in 1627.');
    assert.deepEqual(result.unsupportedMarkers, [7, 2]);
    assert.deepEqual(
      result.citations.map((c) => [c.marker, c.supported]),
      [
        [1, true],
        [2, false],
      ],
    );
  });

  it('abstains when the model replies NOT_FOUND', async () => {
    for (const reply of ['NOT_FOUND', ' NOT_FOUND.', 'The sources do not say. NOT_FOUND', '<think>hmm</think>\nNOT_FOUND']) {
      behaviour = { reply };
      const result = await openAi().synthesize({ question: QUESTION, sources: SOURCES });
      assert.deepEqual(
        [result.answer, result.abstained, result.abstentionReason],
        [null, true, NOT_FOUND_REASON],
        `reply ${JSON.stringify(reply)}`,
      );
    }
  });

  it('abstains when no sentence of the reply keeps a supported citation', async () => {
    behaviour = { reply: 'Antoine Lavoisier named oxygen in 1777 [7].' };
    const result = await openAi().synthesize({ question: QUESTION, sources: SOURCES });
    assert.equal(result.abstained, true);
    assert.equal(result.answer, null);
    assert.equal(result.abstentionReason, UNVERIFIED_REASON);
    assert.deepEqual(result.unsupportedMarkers, [7]);
  });

  it('abstains without calling the model when no source is relevant', async () => {
    behaviour = { reply: 'Should not be asked [1].' };
    const result = await openAi().synthesize({ question: 'What is the boiling point of mercury on Venus?', sources: SOURCES });
    assert.equal(result.abstained, true);
    assert.equal(result.abstentionReason, NOT_FOUND_REASON);
    assert.equal((await openAi().synthesize({ question: QUESTION, sources: [] })).abstained, true);
    assert.equal(requests.length, 0);
  });

  it('fails with UPSTREAM_TIMEOUT within the timeout when the server hangs', async () => {
    behaviour = { hang: true };
    const start = Date.now();
    await assert.rejects(openAi(300).synthesize({ question: QUESTION, sources: SOURCES }), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'UPSTREAM_TIMEOUT');
      assert.equal(error.details['provider'], 'openai');
      return true;
    });
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 250 && elapsed < 1500, `took ${elapsed} ms`);
    assert.equal(requests.length, 1);
  });

  it('enforces its own deadline on a model whose client has none', async () => {
    const neverAnswers = { chat: () => new Promise(() => undefined) } as unknown as LLM;
    const synth = new LlmSynthesizer({ llm: neverAnswers, name: 'llm:custom:x', timeoutMs: 100 });
    const start = Date.now();
    await assert.rejects(synth.synthesize({ question: QUESTION, sources: SOURCES }), {
      code: 'UPSTREAM_TIMEOUT',
      details: { provider: 'custom', timeoutMs: 100 },
    });
    assert.ok(Date.now() - start < 1000);
  });

  it('fails with UPSTREAM_UNAVAILABLE on a 500, naming the provider and never the key', async () => {
    behaviour = { status: 500 };
    await assert.rejects(openAi(2000, undefined, 0).synthesize({ question: QUESTION, sources: SOURCES }), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'UPSTREAM_UNAVAILABLE');
      assert.deepEqual(error.details, { provider: 'openai', upstreamStatus: 500 });
      assert.ok(!`${error.message} ${JSON.stringify(error.details)}`.includes(API_KEY));
      return true;
    });
    assert.equal(requests.length, 1, 'no retry with retries: 0');
    requests = [];
    await assert.rejects(openAi().synthesize({ question: QUESTION, sources: SOURCES }), { code: 'UPSTREAM_UNAVAILABLE' });
    assert.equal(requests.length, 3, 'a persistent 500 is tried 1 + 2 times by default');
  });

  it('fails with UPSTREAM_UNAVAILABLE when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const synth = new LlmSynthesizer({
      llm: createOpenAiLlm({ baseURL: `http://127.0.0.1:${port}/v1`, model: 'm', timeoutMs: 2000 }),
      name: 'llm:openai:m',
    });
    await assert.rejects(synth.synthesize({ question: QUESTION, sources: SOURCES }), { code: 'UPSTREAM_UNAVAILABLE' });
  });

  it('rejects with the caller’s reason when the caller aborts', async () => {
    behaviour = { hang: true };
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('client went away')), 50);
    await assert.rejects(openAi(5000).synthesize({ question: QUESTION, sources: SOURCES }, controller.signal), /client went away/);
  });

  it('works over Ollama too, with its own timeout', async () => {
    const ollama = (timeoutMs: number): LlmSynthesizer =>
      new LlmSynthesizer({
        llm: createOllamaLlm({ host: baseUrl, model: 'stub', timeoutMs }),
        name: 'llm:ollama:stub',
        timeoutMs,
      });
    behaviour = { reply: 'Robert Boyle showed that air is necessary for combustion [1].' };
    const result = await ollama(2000).synthesize({ question: QUESTION, sources: SOURCES });
    assert.equal(result.answer, 'Robert Boyle showed that air is necessary for combustion [1].');
    assert.equal(requests[0]!.path, '/api/chat');

    behaviour = { hang: true };
    await assert.rejects(ollama(200).synthesize({ question: QUESTION, sources: SOURCES }), {
      code: 'UPSTREAM_TIMEOUT',
      details: { provider: 'ollama', timeoutMs: 200 },
    });
    behaviour = { status: 503 };
    await assert.rejects(ollama(2000).synthesize({ question: QUESTION, sources: SOURCES }), {
      code: 'UPSTREAM_UNAVAILABLE',
      details: { provider: 'ollama', upstreamStatus: 503 },
    });
  });
});
