import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DEVELOPMENT_PRINCIPAL as caller } from '../../src/modules/auth/principal';
import { NOT_FOUND_REASON } from '../../src/retrieval/relevance';
import { METRICS } from '../../src/observability/metrics';
import { OpenAiStub } from '../helpers/openai-stub';
import { createTestApp, dataOf, type TestApp } from '../helpers/test-app';

/** Fixed fixtures: two documents, a supported and an unsupported answer, and abstentions, through the real schema. */
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

const ASK = `query($q: String!) { ask(collection: "kb", question: $q) {
  answer abstained abstentionReason unsupportedMarkers synthesizer
  usage { promptTokens completionTokens totalTokens }
  citations { marker sentence supported source { n document { externalId } } }
  sources { n document { externalId title } chunk { startOffset endOffset text } highlight { text startOffset endOffset } }
} }`;

interface AskData {
  ask: {
    answer: string | null;
    abstained: boolean;
    abstentionReason: string | null;
    unsupportedMarkers: number[];
    synthesizer: string;
    usage: { promptTokens: number; completionTokens: number; totalTokens: number } | null;
    citations: { marker: number; sentence: string; supported: boolean; source: { n: number; document: { externalId: string } } }[];
    sources: {
      n: number;
      document: { externalId: string; title: string | null };
      chunk: { startOffset: number; endOffset: number; text: string };
      highlight: { text: string; startOffset: number; endOffset: number } | null;
    }[];
  };
}

async function seed(t: TestApp): Promise<void> {
  await t.app.services.collections.create({ name: 'kb' }, caller);
  const result = await t.app.services.ingestion.ingest(
    'kb',
    DOCS.map((d) => ({ ...d, contentType: 'TEXT' as const })),
    caller,
  );
  assert.equal(result.failed, 0);
}

/** The value of one sample of a counter in the app's registry (0 when absent). */
async function counter(t: TestApp, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await t.app.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const sample = metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return Number(sample?.value ?? 0);
}

/** The citation number the prompt gave the document titled `title` (the stub answers per request). */
function numberOf(body: Record<string, unknown>, title: string): number {
  const messages = body['messages'] as { content: string }[];
  const match = new RegExp(`\\[(\\d+)\\] ${title}\\n`).exec(messages[1]!.content);
  if (!match) throw new Error(`no source titled ${title} in the prompt`);
  return Number(match[1]);
}

describe('answers with an LLM (stub): verified citations on fixed fixtures', () => {
  let stub: OpenAiStub;
  let t: TestApp;
  before(async () => {
    stub = await OpenAiStub.start();
    t = await createTestApp({
      KBQL_SYNTHESIZER: 'openai',
      KBQL_LLM_MODEL: 'stub-chat',
      OPENAI_BASE_URL: stub.baseUrl,
      KBQL_PROVIDER_TIMEOUT_MS: '5000',
      KBQL_CACHE_RESULT_TTL_SECONDS: '0',
    });
    await seed(t);
  });
  beforeEach(() => stub.reset());
  after(async () => {
    await t.close();
    await stub.close();
  });

  it('a supported answer keeps its citation, points at the source and highlights the supporting sentence', async () => {
    stub.chatReply = (body) => `Robert Boyle showed in the 1660s that air is necessary for combustion [${numberOf(body, 'Combustion')}].`;
    const { ask } = dataOf<AskData>(await t.execute(ASK, { q: 'Who showed that air is necessary for combustion?' }));
    assert.equal(ask.abstained, false);
    assert.match(ask.answer!, /^Robert Boyle showed in the 1660s that air is necessary for combustion \[\d\]\.$/);
    assert.deepEqual(ask.unsupportedMarkers, []);
    assert.equal(ask.citations.length, 1);
    const [citation] = ask.citations;
    assert.equal(citation!.supported, true);
    assert.equal(citation!.source.document.externalId, 'combustion');
    const cited = ask.sources.find((s) => s.n === citation!.marker)!;
    assert.equal(cited.highlight?.text, 'Robert Boyle showed in the 1660s that air is necessary for combustion.');
    assert.equal(cited.chunk.text.slice(cited.highlight.startOffset, cited.highlight.endOffset), cited.highlight.text);
    assert.ok(cited.chunk.startOffset >= 0 && cited.chunk.endOffset > cited.chunk.startOffset);
    assert.equal(ask.synthesizer, 'llm:openai:stub-chat');
    assert.ok(ask.usage && ask.usage.totalTokens > 0, 'usage reported by the model');
  });

  it('an unsupported answer: the unsupported and the invented markers are removed, reported and counted', async () => {
    const supportedBefore = await counter(t, METRICS.answerCitations, { result: 'supported' });
    const unsupportedBefore = await counter(t, METRICS.answerCitations, { result: 'unsupported' });
    stub.chatReply = (body) => {
      const fire = numberOf(body, 'Combustion');
      const handbook = numberOf(body, 'Handbook');
      return `Robert Boyle showed that air is necessary for combustion [${fire}]. Boyle also invented the steam engine in 1712 [${handbook}][9].`;
    };
    const { ask } = dataOf<AskData>(await t.execute(ASK, { q: 'Who showed that air is necessary for combustion?' }));
    assert.equal(ask.abstained, false);
    assert.match(
      ask.answer!,
      /^Robert Boyle showed that air is necessary for combustion \[\d\]\. Boyle also invented the steam engine in 1712\.$/,
    );
    const handbook = ask.sources.find((s) => s.document.externalId === 'handbook')!.n;
    assert.deepEqual(ask.unsupportedMarkers, [handbook, 9]);
    assert.deepEqual(
      ask.citations.map((c) => [c.source.document.externalId, c.supported]),
      [
        ['combustion', true],
        ['handbook', false],
      ],
    );
    assert.equal((await counter(t, METRICS.answerCitations, { result: 'supported' })) - supportedBefore, 1);
    assert.equal((await counter(t, METRICS.answerCitations, { result: 'unsupported' })) - unsupportedBefore, 2);
  });

  it('an answer no source supports abstains as unverified, with the closest sources, and is counted', async () => {
    const before = await counter(t, METRICS.answerAbstentions, { reason: 'unverified' });
    stub.chatReply = (body) => `Antoine Lavoisier named oxygen in 1777 [${numberOf(body, 'Handbook')}].`;
    const { ask } = dataOf<AskData>(await t.execute(ASK, { q: 'Who showed that air is necessary for combustion?' }));
    assert.equal(ask.abstained, true);
    assert.equal(ask.answer, null);
    assert.ok(ask.sources.length > 0, 'the closest sources are returned');
    assert.equal((await counter(t, METRICS.answerAbstentions, { reason: 'unverified' })) - before, 1);
  });
});

describe('abstention with the offline defaults (extractive) on fixed fixtures', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ KBQL_CACHE_RESULT_TTL_SECONDS: '0' });
    await seed(t);
  });
  after(() => t.close());

  it('answers an answerable question with the sentence that holds the answer', async () => {
    const { ask } = dataOf<AskData>(await t.execute(ASK, { q: 'Who showed that air is necessary for combustion?' }));
    assert.equal(ask.abstained, false);
    assert.match(ask.answer!, /Robert Boyle showed in the 1660s that air is necessary for combustion \[\d\]\./);
    assert.ok(ask.citations.every((c) => c.supported));
    assert.equal(ask.usage, null);
  });

  it('abstains with answer null, a reason and the closest sources when the collection does not know', async () => {
    const before = await counter(t, METRICS.answerAbstentions, { synthesizer: 'extractive', reason: 'not_found' });
    const { ask } = dataOf<AskData>(await t.execute(ASK, { q: 'What is the boiling point of mercury on Venus?' }));
    assert.deepEqual([ask.answer, ask.abstained, ask.abstentionReason, ask.citations], [null, true, NOT_FOUND_REASON, []]);
    assert.ok(ask.sources.length > 0 && ask.sources.every((s) => s.highlight !== null), 'closest sources, highlighted');
    assert.equal((await counter(t, METRICS.answerAbstentions, { synthesizer: 'extractive', reason: 'not_found' })) - before, 1);
  });

  it('abstains on SQuAD-2-style questions written against the retrieved paragraph', async () => {
    // Key terms swapped for ones the paragraph never states there ("1880s", "nitrogen"), and a "when" that no
    // sentence answers with a date. (A single swapped term, e.g. "…combustion on Venus?", still answers: its key
    // coverage is 0.65, above the calibrated 0.6.)
    for (const q of [
      'What chemist showed in the 1880s that nitrogen is necessary for combustion?',
      'When did Joseph Priestley refine the work of Mayow?',
    ]) {
      const { ask } = dataOf<AskData>(await t.execute(ASK, { q }));
      assert.equal(ask.abstained, true, `abstains on ${q}: ${ask.answer}`);
    }
  });
});
