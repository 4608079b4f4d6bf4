import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { graphqlRequest } from '../helpers/http';
import { startTestServer, type TestApp } from '../helpers/test-app';
import { SHAPES, type AdversarialClientData, type DocumentClientResult, type ProbeResult } from '../helpers/adversarial-client.worker';

const MiB = 1024 * 1024;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const graphql = async (url: string, query: string, variables: Record<string, unknown>) =>
  (await graphqlRequest<{ data?: any; errors?: any[] }>(url, query, variables)).body;

const clientThread = (data: AdversarialClientData) =>
  new Worker(join(__dirname, '../helpers/adversarial-client.worker.js'), { workerData: data });

/**
 * Runs the two clients (the 2 MiB document, the stream of small requests) on threads of their own, and measures this
 * thread's event-loop delay — the server's — from the moment the document is built until its last answer.
 */
async function driveClients(
  url: string,
  shape: string,
): Promise<{ document: DocumentClientResult; probe: ProbeResult; maxDelayMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  const prober = clientThread({ role: 'probe', url });
  const sender = clientThread({ role: 'document', url, shape });
  const outcome = (worker: Worker, type: string) =>
    new Promise<any>((resolve, reject) => {
      worker.on('message', (message: { type: string; message?: string }) => {
        if (message.type === type) resolve(message);
        else if (message.type === 'error') reject(new Error(`client thread: ${message.message}`));
      });
      worker.on('error', reject);
    });
  const probed = outcome(prober, 'probed') as Promise<ProbeResult>;
  const sent = outcome(sender, 'done') as Promise<DocumentClientResult>;
  try {
    await outcome(sender, 'ready');
    delay.enable();
    prober.postMessage('start');
    const document = await sent;
    delay.disable();
    prober.postMessage('stop');
    return { document, probe: await probed, maxDelayMs: delay.max / 1e6 };
  } finally {
    delay.disable();
    await Promise.all([prober.terminate(), sender.terminate()]);
  }
}

describe('2 MiB adversarial documents never stall the event loop (real HTTP)', () => {
  let t: TestApp, url: string;

  before(async () => {
    ({ t, url } = await startTestServer({ KBQL_RATE_LIMIT: 'false' }));
    for (const name of ['probe', 'big']) {
      const created = await graphql(url, 'mutation($n: String!) { createCollection(input: { name: $n }) { id } }', { n: name });
      assert.equal(created.errors, undefined);
    }
    const seeded = await graphql(
      url,
      'mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "probe", documents: $d) { indexed } }',
      {
        d: [{ id: 'p1', content: 'alpha beta gamma delta, a small probe document.' }],
      },
    );
    assert.equal(seeded.data?.ingestDocuments.indexed, 1);
  });

  after(async () => {
    await t.close();
  });

  for (const name of Object.keys(SHAPES)) {
    it(`${name}: previewChunks and ingestDocuments finish; /healthz and search stay fast`, async () => {
      const { document: result, probe, maxDelayMs } = await driveClients(url, name);
      assert.ok(result.bytes <= 2 * MiB && result.bytes > 2 * MiB - 64, `${result.bytes} bytes`);

      const { preview, ingested } = result;
      assert.equal(preview.errors, undefined, JSON.stringify(preview.errors));
      const { chunkCount, chunks } = preview.data.previewChunks as { chunkCount: number; chunks: { index: number }[] };
      assert.ok(chunkCount > 100, `${chunkCount} chunks`);
      assert.deepEqual(
        chunks.map((c) => c.index),
        Array.from({ length: 100 }, (_, i) => i),
      );
      assert.equal(ingested.errors, undefined, JSON.stringify(ingested.errors));
      assert.equal(ingested.data.ingestDocuments.indexed, 1, JSON.stringify(ingested.data.ingestDocuments.results));
      assert.equal(ingested.data.ingestDocuments.results[0].chunkCount, chunkCount);

      const p99 = percentile(probe.latencies, 99);
      // Figures for the log (the bench prints the comparisons): this machine has 2 cores.
      process.stdout.write(
        `# ${name}: ${(result.tookMs / 1000).toFixed(1)} s, ${probe.latencies.length} probes, p99 ${p99.toFixed(1)} ms, event-loop delay max ${maxDelayMs.toFixed(1)} ms\n`,
      );
      assert.ok(result.tookMs < 120_000, `took ${result.tookMs} ms`);
      assert.equal(probe.failed, 0);
      assert.ok(probe.latencies.length >= 20, `${probe.latencies.length} probes`);
      assert.ok(p99 < 100, `probe p99 ${p99.toFixed(1)} ms`);
      assert.ok(maxDelayMs < 100, `event-loop delay max ${maxDelayMs.toFixed(1)} ms`);
    });
  }
});
