import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEVELOPMENT_PRINCIPAL as caller } from '../../src/modules/auth/principal';
import type { AskEvent } from '../../src/modules/query/query.service';
import type { AnswerSynthesizer, Synthesis, SynthesisEvent, SynthesisRequest } from '../../src/ports/answer-synthesizer.port';
import { createTestApp, type TestApp } from '../helpers/test-app';

/** QueryService.askStream in process, with synthesizers whose behaviour the test controls. */

const DOC = {
  id: 'combustion',
  title: 'Combustion',
  content: 'Robert Boyle showed in the 1660s that air is necessary for combustion. John Mayow refined this work.',
  contentType: 'TEXT' as const,
};
const QUESTION = 'Who showed that air is necessary for combustion?';

/** Streams one delta, then waits for the signal (a model that stalls); records what happened to it. */
class StallingSynthesizer implements AnswerSynthesizer {
  readonly name = 'stalling';
  aborted = 0;
  finished = 0;
  async synthesize(): Promise<Synthesis> {
    throw new Error('not used');
  }
  async *stream(_request: SynthesisRequest, signal?: AbortSignal): AsyncGenerator<SynthesisEvent> {
    try {
      yield { type: 'delta', text: 'Robert Boyle' };
      await new Promise<void>((_, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    } finally {
      if (signal?.aborted) this.aborted++;
      this.finished++;
    }
  }
}

/** A synthesizer without `stream`: askStream sends its finished answer as one delta. */
const plain: AnswerSynthesizer = {
  name: 'plain',
  async synthesize({ sources }: SynthesisRequest): Promise<Synthesis> {
    const sentence = `Robert Boyle showed in the 1660s that air is necessary for combustion [${sources[0]!.n}].`;
    return {
      answer: sentence,
      abstained: false,
      abstentionReason: null,
      citations: [{ marker: sources[0]!.n, sentence, supported: true }],
      unsupportedMarkers: [],
    };
  },
};

async function appWith(synthesizer: AnswerSynthesizer): Promise<TestApp> {
  const t = await createTestApp({}, { synthesizer });
  await t.app.services.collections.create({ name: 'kb' }, caller);
  await t.app.services.ingestion.ingest('kb', [DOC], caller);
  return t;
}

describe('QueryService.askStream', () => {
  const stalling = new StallingSynthesizer();
  let t: TestApp;
  let p: TestApp;
  before(async () => {
    t = await appWith(stalling);
    p = await appWith(plain);
  });
  after(async () => {
    await t.close();
    await p.close();
  });

  it('return() while the synthesizer is stalled aborts it at once and ends the iteration', async () => {
    const iterator = t.app.services.query.askStream({ collection: 'kb', question: QUESTION }, { access: caller });
    assert.equal(((await iterator.next()).value as AskEvent).kind, 'retrievalDone');
    assert.deepEqual((await iterator.next()).value, { kind: 'answerDelta', text: 'Robert Boyle' });
    const pending = iterator.next(); // stalled inside the synthesizer
    const returned = await iterator.return!(undefined);
    assert.equal(returned.done, true);
    assert.equal(stalling.aborted, 1, 'the synthesizer saw the abort');
    assert.equal(stalling.finished, 1);
    assert.equal((await pending).done, true, 'the stalled step ends without an event');
  });

  it("aborting the caller's signal ends the stream without a Failed event (nobody is listening)", async () => {
    const controller = new AbortController();
    const events: AskEvent[] = [];
    for await (const event of t.app.services.query.askStream(
      { collection: 'kb', question: QUESTION },
      { access: caller },
      controller.signal,
    )) {
      events.push(event);
      if (event.kind === 'answerDelta') controller.abort(new Error('gone'));
    }
    assert.deepEqual(
      events.map((e) => e.kind),
      ['retrievalDone', 'answerDelta'],
    );
    assert.equal(stalling.aborted, 2);
  });

  it('streams a synthesizer without `stream` as one delta, and counts the synthesis in the metrics', async () => {
    const events: AskEvent[] = [];
    for await (const event of p.app.services.query.askStream({ collection: 'kb', question: QUESTION }, { access: caller }))
      events.push(event);
    assert.deepEqual(
      events.map((e) => e.kind),
      ['retrievalDone', 'answerDelta', 'citation', 'completed'],
    );
    const completed = events[3] as Extract<AskEvent, { kind: 'completed' }>;
    assert.equal(completed.answer.answer, (events[1] as { text: string }).text);
    assert.equal(completed.answer.sources[0]!.highlight?.text, 'Robert Boyle showed in the 1660s that air is necessary for combustion.');
    const histogram = (await p.app.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'kbql_synthesis_duration_seconds');
    const count = histogram?.values.find(
      (v) =>
        v.labels['synthesizer'] === 'plain' &&
        v.labels['outcome'] === 'answered' &&
        String((v as { metricName?: string }).metricName).endsWith('_count'),
    );
    assert.equal(Number(count?.value), 1);
  });

  it('masks an unexpected synthesizer error as a Failed INTERNAL_SERVER_ERROR', async () => {
    const broken: AnswerSynthesizer = {
      name: 'broken',
      synthesize: async () => {
        throw new Error('secret database password');
      },
    };
    const b = await appWith(broken);
    try {
      const events: AskEvent[] = [];
      for await (const event of b.app.services.query.askStream({ collection: 'kb', question: QUESTION }, { access: caller }))
        events.push(event);
      assert.deepEqual(events.at(-1), { kind: 'failed', code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' });
    } finally {
      await b.close();
    }
  });
});
