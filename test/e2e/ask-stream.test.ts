import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { DEVELOPMENT_PRINCIPAL as caller } from '../../src/modules/auth/principal';
import { METRICS } from '../../src/observability/metrics';
import { OpenAiStub } from '../helpers/openai-stub';
import { JWT_ENV, tokenFor } from '../helpers/security';
import { createTestApp, type TestApp } from '../helpers/test-app';

/** askStream over a real WebSocket (graphql-ws on the app's own HTTP port), with both synthesizers. */

const DOCS = [
  {
    id: 'combustion',
    title: 'Combustion',
    content:
      'Oxygen was discovered independently by Carl Wilhelm Scheele and Joseph Priestley. ' +
      'Robert Boyle showed in the 1660s that air is necessary for combustion. ' +
      'English chemist John Mayow refined this work by showing that fire requires only a part of air.',
  },
  {
    id: 'handbook',
    title: 'Handbook',
    content: 'Full-time employees receive 25 vacation days per year. Unused vacation days can be carried over until March.',
  },
];

const STREAM = `subscription Ask($c: String!, $q: String!) { askStream(collection: $c, question: $q) {
  __typename
  ... on RetrievalDone { latencyMs sources { n document { externalId } highlight { text } } }
  ... on AnswerDelta { text }
  ... on Citation { marker sentence supported source { n document { externalId } } }
  ... on Completed { answer { answer abstained unsupportedMarkers citations { marker } } usage { totalTokens } timings { retrievalMs firstDeltaMs synthesisMs totalMs } }
  ... on Failed { code message }
} }`;

type Event = { __typename: string } & Record<string, unknown>;

async function seed(t: TestApp): Promise<void> {
  await t.app.services.collections.create({ name: 'kb' }, caller);
  const result = await t.app.services.ingestion.ingest(
    'kb',
    DOCS.map((d) => ({ ...d, contentType: 'TEXT' as const })),
    caller,
  );
  assert.equal(result.failed, 0);
}

function wsClient(httpUrl: string, token?: string): Client {
  return createClient({
    url: `${httpUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: token ? { authorization: `Bearer ${token}` } : undefined,
  });
}

/** Every event of one askStream until it completes (errors reject). */
async function collect(client: Client, question: string, collection = 'kb'): Promise<Event[]> {
  const events: Event[] = [];
  const subscription = client.iterate<{ askStream: Event }>({
    query: STREAM,
    variables: { c: collection, q: question },
    operationName: 'Ask',
  });
  for await (const result of subscription) {
    if (result.errors?.length) throw new Error(JSON.stringify(result.errors));
    events.push(result.data!.askStream);
  }
  return events;
}

/** The event types in order with repeats folded: e.g. RetrievalDone, AnswerDelta+, Citation+, Completed. */
function shape(events: readonly Event[]): string {
  const out: string[] = [];
  for (const e of events) {
    const last = out[out.length - 1];
    if (last === e.__typename || last === `${e.__typename}+`) out[out.length - 1] = `${e.__typename}+`;
    else out.push(e.__typename);
  }
  return out.join(', ');
}

async function sample(t: TestApp, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await t.app.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const found = metric?.values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)) ?? [];
  return found.reduce((sum, v) => sum + Number(v.value), 0);
}

describe('askStream over WebSocket, extractive synthesizer', () => {
  let t: TestApp, url: string;
  let client: Client;
  before(async () => {
    t = await createTestApp();
    await seed(t);
    url = await t.app.listen(0, '127.0.0.1');
    client = wsClient(url);
  });
  after(async () => {
    await client.dispose();
    await t.close();
  });

  it('streams RetrievalDone, the answer sentence by sentence, its citations, then Completed', async () => {
    // The extractive default answers with one sentence (issue 20): one delta, one citation.
    const events = await collect(client, 'Who showed that air is necessary for combustion, and how did Mayow refine this work?');
    assert.equal(shape(events), 'RetrievalDone, AnswerDelta, Citation, Completed');
    const retrieval = events[0]!;
    assert.ok((retrieval['sources'] as unknown[]).length > 0);
    const deltas = events.filter((e) => e.__typename === 'AnswerDelta').map((e) => String(e['text']));
    const completed = events.at(-1)!['answer'] as { answer: string; abstained: boolean };
    assert.equal(completed.abstained, false);
    assert.equal(deltas.join(''), completed.answer, 'the deltas join to the final answer');
    assert.equal(deltas.length, 1, 'one delta per sentence');
    const citations = events.filter((e) => e.__typename === 'Citation');
    assert.ok(
      citations.every(
        (c) => c['supported'] === true && (c['source'] as { document: { externalId: string } }).document.externalId === 'combustion',
      ),
    );
    const timings = events.at(-1)!['timings'] as { totalMs: number; retrievalMs: number };
    assert.ok(timings.totalMs >= timings.retrievalMs);
  });

  it('an abstention: RetrievalDone then Completed with answer null, and it is counted', async () => {
    const before = await sample(t, METRICS.answerAbstentions, { reason: 'not_found' });
    const events = await collect(client, 'What is the boiling point of mercury on Venus?');
    assert.equal(shape(events), 'RetrievalDone, Completed');
    assert.deepEqual(
      [(events[1]!['answer'] as { answer: null }).answer, (events[1]!['answer'] as { abstained: boolean }).abstained],
      [null, true],
    );
    assert.equal((await sample(t, METRICS.answerAbstentions, { reason: 'not_found' })) - before, 1);
  });

  it('ends with Failed and a code for an unknown collection or an empty question', async () => {
    const missing = await collect(client, 'Who showed it?', 'no-such-collection');
    assert.equal(shape(missing), 'Failed');
    assert.equal(missing[0]!['code'], 'NOT_FOUND');
    const empty = await collect(client, '   ');
    assert.equal(empty[0]!['code'], 'BAD_USER_INPUT');
  });
});

describe('askStream over WebSocket, LLM synthesizer (OpenAI-compatible stub)', () => {
  let stub: OpenAiStub;
  let t: TestApp, url: string;
  const REPLY = (n: number) =>
    `Robert Boyle showed in the 1660s that air is necessary for combustion [${n}]. He also showed that air is needed [${n}][7].`;
  before(async () => {
    stub = await OpenAiStub.start({
      chatReply: (body) => {
        const prompt = (body['messages'] as { content: string }[])[1]!.content;
        return REPLY(Number(/\[(\d+)\] Combustion\n/.exec(prompt)![1]));
      },
    });
    t = await createTestApp({
      KBQL_SYNTHESIZER: 'openai',
      KBQL_LLM_MODEL: 'stub-chat',
      OPENAI_BASE_URL: stub.baseUrl,
      KBQL_PROVIDER_TIMEOUT_MS: '10000',
    });
    await seed(t);
    url = await t.app.listen(0, '127.0.0.1');
  });
  after(async () => {
    await t.close();
    await stub.close();
  });

  it('streams token deltas, the verified citations, then Completed with usage', async () => {
    stub.reset();
    stub.tokenDelayMs = 0;
    const client = wsClient(url);
    try {
      const events = await collect(client, 'Who showed that air is necessary for combustion?');
      assert.equal(shape(events), 'RetrievalDone, AnswerDelta+, Citation+, Completed');
      const deltas = events.filter((e) => e.__typename === 'AnswerDelta').map((e) => String(e['text']));
      assert.ok(deltas.length > 10, `token deltas (${deltas.length})`);
      const final = events.at(-1)!;
      const answer = final['answer'] as { answer: string; unsupportedMarkers: number[] };
      assert.match(deltas.join(''), /\[7\]/, 'the raw tokens carry the invented marker');
      assert.doesNotMatch(answer.answer, /\[7\]/, 'the final answer does not');
      assert.deepEqual(answer.unsupportedMarkers, [7]);
      assert.ok((final['usage'] as { totalTokens: number }).totalTokens > 0);
      assert.equal(stub.requests[0]!.stream, true);
      assert.equal(stub.requests[0]!.completed, true);
    } finally {
      await client.dispose();
    }
  });

  it('a client that disconnects mid-stream stops the work: the provider request is aborted, none continues', async () => {
    stub.reset();
    stub.tokenDelayMs = 50; // ~1 s for the whole reply: the disconnect comes long before
    const client = wsClient(url);
    const received: Event[] = [];
    try {
      const subscription = client.iterate<{ askStream: Event }>({
        query: STREAM,
        variables: { c: 'kb', q: 'Who showed that air is necessary for combustion?' },
        operationName: 'Ask',
      });
      for await (const result of subscription) {
        received.push(result.data!.askStream);
        if (result.data!.askStream.__typename === 'AnswerDelta') break; // the first token: leave
      }
    } finally {
      await client.dispose(); // closes the socket
    }
    assert.equal(shape(received), 'RetrievalDone, AnswerDelta');
    await stub.waitForIdle(5000);
    assert.equal(stub.inFlight, 0);
    assert.equal(stub.aborted, 1, 'the provider request was aborted');
    const total = REPLY(1).split(' ').length;
    assert.ok(stub.requests[0]!.tokensSent < total, `cut short: ${stub.requests[0]!.tokensSent} of ${total} tokens`);
    assert.equal(stub.count('chat'), 1, 'and not retried');
  });

  it('a failing provider ends the stream with Failed UPSTREAM_UNAVAILABLE after the retries', async () => {
    stub.reset();
    stub.tokenDelayMs = 0;
    stub.failNext(503, 3, { routes: ['chat'] });
    const client = wsClient(url);
    try {
      const events = await collect(client, 'Who showed that air is necessary for combustion?');
      assert.equal(shape(events), 'RetrievalDone, Failed');
      assert.equal(events[1]!['code'], 'UPSTREAM_UNAVAILABLE');
      assert.equal(stub.count('chat'), 3, '1 + 2 retries');
    } finally {
      await client.dispose();
    }
  });
});

describe('askStream over WebSocket with JWT auth', () => {
  let t: TestApp, url: string;
  before(async () => {
    t = await createTestApp(JWT_ENV);
    await t.app.services.collections.create({ name: 'kb' }, { tenant: 'acme' });
    await t.app.services.ingestion.ingest(
      'kb',
      DOCS.map((d) => ({ ...d, contentType: 'TEXT' as const })),
      { tenant: 'acme' },
    );
    url = await t.app.listen(0, '127.0.0.1');
  });
  after(() => t.close());

  it("needs a READER token, and another tenant's collection is NOT_FOUND", async () => {
    const anonymous = wsClient(url);
    try {
      await assert.rejects(collect(anonymous, 'Who showed that air is necessary for combustion?'), /UNAUTHENTICATED/);
    } finally {
      await anonymous.dispose();
    }
    const reader = wsClient(url, await tokenFor('READER', 'acme'));
    const stranger = wsClient(url, await tokenFor('READER', 'other'));
    try {
      const events = await collect(reader, 'Who showed that air is necessary for combustion?');
      assert.equal(events.at(-1)!.__typename, 'Completed');
      const foreign = await collect(stranger, 'Who showed that air is necessary for combustion?');
      assert.deepEqual([foreign[0]!.__typename, foreign[0]!['code']], ['Failed', 'NOT_FOUND']);
    } finally {
      await reader.dispose();
      await stranger.dispose();
    }
  });
});
