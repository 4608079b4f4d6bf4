import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEVELOPMENT_PRINCIPAL } from '../../src/modules/auth/principal';
import { PROGRESS_MAX_DOCUMENTS, PROGRESS_WINDOW_MS, type ProgressItem } from '../../src/modules/jobs/ingestion-job.progress';
import { collectProgress, stagesByDocument } from '../helpers/jobs-ws';
import { gql } from '../helpers/security';
import { startTestServer, type TestApp } from '../helpers/test-app';

const DOCUMENTS = 2_000;
const SUBSCRIBERS = 10;

async function startJob(url: string, count: number, prefix: string): Promise<string> {
  const documents = Array.from({ length: count }, (_, i) => ({
    id: `${prefix}${i}`,
    title: `Doc ${i}`,
    content: `Document ${i} mentions topic ${i % 17} and item ${i}.`,
  }));
  const started = await gql(url, {
    query: 'mutation($d: [DocumentInput!]) { startIngestion(collection: "bulk", documents: $d) { id } }',
    variables: { d: documents },
  });
  assert.equal(started.json.errors, undefined, JSON.stringify(started.json.errors));
  return started.json.data!['startIngestion'].id as string;
}

describe('ingestionProgress is coalesced: bounded messages per second, a slow consumer gets the latest state', () => {
  let t: TestApp, url: string;
  before(async () => {
    ({ t, url } = await startTestServer({ NODE_ENV: 'development', KBQL_MAX_WS_CONNECTIONS_PER_CALLER: '50' }));
    await gql(url, { query: 'mutation { createCollection(input: { name: "bulk" }) { id } }' });
  });
  after(() => t.close());

  it(`${SUBSCRIBERS} subscribers of a ${DOCUMENTS}-document job: each gets every document's final stage in at most one message per ${PROGRESS_WINDOW_MS} ms`, async () => {
    const jobId = await startJob(url, DOCUMENTS, 'live-');
    const runs = Array.from({ length: SUBSCRIBERS }, async () => {
      let messages = 0;
      const started = Date.now();
      const events = await collectProgress(url, jobId, undefined, 60_000, (documents) => {
        messages++;
        assert.ok(documents <= PROGRESS_MAX_DOCUMENTS);
      });
      return { messages, seconds: (Date.now() - started) / 1000, events };
    });
    for (const { messages, seconds, events } of await Promise.all(runs)) {
      const byDoc = stagesByDocument(events); // in order, each ending in a final stage
      assert.equal(byDoc.size, DOCUMENTS);
      assert.equal(events.at(-1)!.kind, 'SUMMARY');
      // One STAGE message per window at most, plus the first (the snapshot) and the SUMMARY.
      const bound = Math.ceil((seconds * 1000) / PROGRESS_WINDOW_MS) + 2;
      assert.ok(messages <= bound, `${messages} messages in ${seconds.toFixed(1)} s (bound ${bound})`);
      assert.ok(events.length - 1 < DOCUMENTS * 3, `${events.length} document states: stages were folded`);
    }
  });

  it('a consumer that reads nothing while the job runs then gets the latest state of each document, not a backlog', async () => {
    const jobId = await startJob(url, DOCUMENTS, 'slow-');
    const stream = await t.app.services.jobs.progress(jobId, DEVELOPMENT_PRINCIPAL);
    const first = (await stream.next()).value as ProgressItem; // the snapshot
    for (let i = 0; i < 600; i++) {
      const job = await t.app.services.jobs.getJob(jobId, DEVELOPMENT_PRINCIPAL);
      if (job.finishedAt) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const rest: ProgressItem[] = [];
    for await (const item of stream) rest.push(item);
    assert.equal(rest.at(-1)!.kind, 'SUMMARY');
    const stages = rest.filter((item) => item.kind === 'STAGE');
    assert.ok(stages.length <= Math.ceil(DOCUMENTS / PROGRESS_MAX_DOCUMENTS), `${stages.length} STAGE items after the snapshot`);
    const latest = new Map<number, string>();
    for (const item of [first, ...stages]) for (const doc of item.documents) latest.set(doc.index, doc.stage);
    assert.equal(latest.size, DOCUMENTS);
    assert.deepEqual(new Set(latest.values()), new Set(['INDEXED']));
  });
});
