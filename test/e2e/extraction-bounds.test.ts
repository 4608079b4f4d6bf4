import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startTestServer, type TestApp } from '../helpers/test-app';
import { gql, minimalDocx, minimalPdf, upload, waitFor } from '../helpers/jobs-fixtures';
import { docxBomb, manyPagesPdf } from '../helpers/hostile-files';

const MB = 1024 * 1024;
const rssMb = () => process.memoryUsage().rss / MB;

interface JobDocs {
  ingestionJob: {
    finishedAt: string | null;
    documents: { edges: { node: { filename: string; stage: string; code: string | null; reasonCode: string | null } }[] };
  };
}

/**
 * Acceptance of the extraction bounds, through the real server over HTTP (in this process, so its RSS is the one
 * sampled): a 1 GiB DOCX bomb with honest sizes, one with lying (small) sizes and a 20,000-page PDF, uploaded and
 * ingested at once, each end FAILED with its reason while RSS stays within +300 MB of idle and comes back within
 * +50 MB.
 */
describe('hostile uploads over HTTP: bounded memory', () => {
  let t: TestApp, url: string;

  before(async () => {
    ({ t, url } = await startTestServer({ KBQL_INGEST_CONCURRENCY: '3' }));
    const created = await gql(url, 'mutation { createCollection(input: { name: "files" }) { id } }');
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  });
  after(async () => {
    await t.close();
  });

  async function ingest(
    files: [string, Buffer][],
  ): Promise<Map<string, { stage: string; code: string | null; reasonCode: string | null }>> {
    const ids: string[] = [];
    for (const [name, data] of files) {
      const result = await upload(url, name, data);
      assert.equal(result.status, 201, JSON.stringify(result.body));
      ids.push(String(result.body['id']));
    }
    const started = await gql<{ startIngestion: { id: string } }>(
      url,
      'mutation($u: [ID!]) { startIngestion(collection: "files", uploads: $u) { id } }',
      { u: ids },
    );
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    const jobId = started.data!.startIngestion.id;
    const job = await waitFor(
      'the job to finish',
      async () => {
        const r = await gql<JobDocs>(
          url,
          'query($id: ID!) { ingestionJob(id: $id) { finishedAt documents(first: 50) { edges { node { filename stage code reasonCode } } } } }',
          { id: jobId },
        );
        return r.data?.ingestionJob.finishedAt ? r.data.ingestionJob : undefined;
      },
      60_000,
      100,
    );
    return new Map(job.documents.edges.map(({ node }) => [node.filename, node]));
  }

  it(
    'fails a 1 GiB DOCX bomb (honest and lying sizes) and a 20,000-page PDF with their reasons; RSS +300 MB at most, back within +50 MB',
    { timeout: 120_000 },
    async (ctx) => {
      const hostile: [string, Buffer][] = [
        ['bomb-honest.docx', docxBomb(1024)],
        ['bomb-lying.docx', docxBomb(1024, { lie: true })],
        ['pages.pdf', manyPagesPdf(20_000)],
      ];
      // Warm up: the readers loaded once and a normal job through, so idle is the server's working figure.
      const warm = await ingest([
        ['warm.docx', minimalDocx(['Willow branches bend over the canyon.'])],
        ['warm.pdf', minimalPdf(['Quartz harbors glow at dusk.'])],
      ]);
      assert.deepEqual(
        [...warm.values()].map((d) => d.stage),
        ['INDEXED', 'INDEXED'],
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const idle = rssMb();

      let peak = idle;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMb())), 50);
      try {
        const docs = await ingest(hostile);
        // Back to idle: sampled for up to 5 s after the job ends.
        const settled = await waitFor(
          'RSS back within +50 MB of idle',
          () => (rssMb() <= idle + 50 ? rssMb() : undefined),
          5_000,
          50,
        ).catch(() => null);
        // Not back yet: what is left may be garbage V8 has not collected (nothing made it collect since the job ended:
        // the server and the test are idle). A full collection tells garbage from memory the server still holds.
        const collected = settled === null ? await afterFullCollection(() => (rssMb() <= idle + 50 ? rssMb() : null)) : null;
        const last = rssMb();
        ctx.diagnostic(
          `RSS idle ${idle.toFixed(0)} MB, peak ${peak.toFixed(0)} MB (+${(peak - idle).toFixed(0)}), after ${last.toFixed(0)} MB (+${(last - idle).toFixed(0)})`,
        );
        const outcome = Object.fromEntries([...docs].map(([name, d]) => [name, [d.stage, d.code, d.reasonCode]]));
        assert.deepEqual(outcome, {
          'bomb-honest.docx': ['FAILED', 'PAYLOAD_TOO_LARGE', 'ARCHIVE_TOO_LARGE'],
          'bomb-lying.docx': ['FAILED', 'PAYLOAD_TOO_LARGE', 'ARCHIVE_TOO_LARGE'],
          'pages.pdf': ['FAILED', 'PAYLOAD_TOO_LARGE', 'TOO_MANY_PAGES'],
        });
        assert.ok(peak - idle <= 300, `peak ${peak.toFixed(0)} MB is more than 300 MB over idle ${idle.toFixed(0)} MB`);
        if (settled === null) ctx.diagnostic(`back within +50 MB only after a full garbage collection: ${collected !== null}`);
        assert.ok(
          settled !== null || collected !== null,
          `RSS ${last.toFixed(0)} MB did not come back within 50 MB of idle ${idle.toFixed(0)} MB in 5 s, even after a full collection`,
        );
      } finally {
        clearInterval(sampler);
      }
    },
  );
});

/** Runs a full garbage collection (through V8's own flag, set at run time), waits a moment, and reads `check`. */
async function afterFullCollection<T>(check: () => T): Promise<T> {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  await new Promise((resolve) => setTimeout(resolve, 500));
  return check();
}
