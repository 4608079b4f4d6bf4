import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { graphqlRequest } from '../helpers/http';
import { startTestServer, type TestApp } from '../helpers/test-app';

const MiB = 1024 * 1024;

/** `unit` repeated to exactly `bytes` UTF-8 bytes (units here are ASCII or whole 3-byte characters). */
function fill(unit: string, bytes = 2 * MiB): string {
  const out = unit.repeat(Math.ceil(bytes / Buffer.byteLength(unit)));
  let text = out.slice(0, bytes);
  while (Buffer.byteLength(text) > bytes) text = text.slice(0, -1);
  return text;
}

/** Deterministic CJK text without a single space or stop. */
function cjk(bytes: number): string {
  let seed = 7;
  const chars: string[] = [];
  for (let i = 0; i < Math.floor(bytes / 3); i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    chars.push(String.fromCharCode(0x4e00 + (seed % 3000)));
  }
  return chars.join('');
}

/**
 * The shapes that froze the server for minutes when chunking ran on the event loop (issue 14), each at 2 MiB, the
 * largest document the defaults accept.
 */
const SHAPES: Record<string, () => string> = {
  'one paragraph of prose, no blank lines': () => fill('alpha beta gamma delta. '),
  'one sentence of 2 MiB': () => fill('alpha beta gamma delta '),
  'a 2 MiB line of words without punctuation': () => {
    const words: string[] = [];
    for (let i = 0, bytes = 0; bytes < 2 * MiB - 16; i++) {
      const word = `w${((i * 7919) % 100_000).toString(36)}`;
      words.push(word);
      bytes += word.length + 1;
    }
    return words.join(' ');
  },
  'one repeated character': () => 'a'.repeat(2 * MiB),
  'CJK without spaces': () => cjk(2 * MiB),
};

interface Probe {
  latencies: number[];
  stop(): Promise<void>;
}

/** Small requests, one after another, as long as the probe runs: GET /healthz and a small search, alternately. */
function startProbe(url: string): Probe {
  const latencies: number[] = [];
  let running = true;
  const search = JSON.stringify({ query: '{ search(collection: "probe", query: "alpha gamma", topK: 3) { hits { score } } }' });
  const loop = (async () => {
    for (let i = 0; running && i < 100_000; i++) {
      const started = performance.now();
      const response =
        i % 2 === 0
          ? await fetch(`${url}/healthz`)
          : await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: search });
      await response.arrayBuffer();
      assert.equal(response.status, 200);
      latencies.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return {
    latencies,
    async stop() {
      running = false;
      await loop;
    },
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const graphql = async (url: string, query: string, variables: Record<string, unknown>) =>
  (await graphqlRequest<{ data?: any; errors?: any[] }>(url, query, variables)).body;

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

  for (const [name, make] of Object.entries(SHAPES)) {
    it(`${name}: previewChunks and ingestDocuments finish; /healthz and search stay fast`, async () => {
      const content = make();
      assert.ok(Buffer.byteLength(content) <= 2 * MiB && Buffer.byteLength(content) > 2 * MiB - 64);
      const delay = monitorEventLoopDelay({ resolution: 10 });
      const probe = startProbe(url);
      delay.enable();
      const started = performance.now();
      try {
        const preview = await graphql(
          url,
          'query($d: DocumentInput!) { previewChunks(collection: "big", document: $d) { chunkCount chunks(first: 100) { index startOffset endOffset } } }',
          {
            d: { id: 'doc', content, contentType: 'TEXT' },
          },
        );
        assert.equal(preview.errors, undefined, JSON.stringify(preview.errors));
        const { chunkCount, chunks } = preview.data.previewChunks as { chunkCount: number; chunks: { index: number }[] };
        assert.ok(chunkCount > 100, `${chunkCount} chunks`);
        assert.deepEqual(
          chunks.map((c) => c.index),
          Array.from({ length: 100 }, (_, i) => i),
        );

        const ingested = await graphql(
          url,
          'mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "big", documents: $d) { indexed failed results { status chunkCount reason } } }',
          {
            d: [{ id: 'doc', content, contentType: 'TEXT' }],
          },
        );
        assert.equal(ingested.errors, undefined, JSON.stringify(ingested.errors));
        assert.equal(ingested.data.ingestDocuments.indexed, 1, JSON.stringify(ingested.data.ingestDocuments.results));
        assert.equal(ingested.data.ingestDocuments.results[0].chunkCount, chunkCount);
      } finally {
        delay.disable();
        await probe.stop();
      }
      const tookMs = performance.now() - started;
      const p99 = percentile(probe.latencies, 99);
      const maxDelayMs = delay.max / 1e6;
      // Figures for the log (the bench prints the comparisons): this machine has 2 cores.
      process.stdout.write(
        `# ${name}: ${(tookMs / 1000).toFixed(1)} s, ${probe.latencies.length} probes, p99 ${p99.toFixed(1)} ms, event-loop delay max ${maxDelayMs.toFixed(1)} ms\n`,
      );
      assert.ok(tookMs < 120_000, `took ${tookMs} ms`);
      assert.ok(probe.latencies.length >= 20, `${probe.latencies.length} probes`);
      assert.ok(p99 < 100, `probe p99 ${p99.toFixed(1)} ms`);
      assert.ok(maxDelayMs < 100, `event-loop delay max ${maxDelayMs.toFixed(1)} ms`);
    });
  }
});
