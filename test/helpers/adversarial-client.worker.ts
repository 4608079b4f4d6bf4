/**
 * The clients of `test/load/ingest-event-loop.test.ts`, each on its own thread: one builds a 2 MiB adversarial document
 * and sends it to `previewChunks` and then `ingestDocuments`; the other keeps a stream of small requests
 * (`GET /healthz`, a small `search`) going meanwhile, timing each. Building and serialising a 2 MiB body takes tens of
 * milliseconds at a time: on the server's thread it would count against the server's event-loop delay, and on the
 * probe's thread against the probe's latencies.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../../src/adapters/workers/lower-priority';
import { graphqlRequest } from './http';

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
export const SHAPES: Record<string, () => string> = {
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

export type AdversarialClientData =
  /** Builds the document, posts `{ type: 'ready' }`, sends it to previewChunks then ingestDocuments, posts the result. */
  | { role: 'document'; url: string; shape: string }
  /** Sends small requests one after another from a `'start'` message to a `'stop'` message, then posts the latencies. */
  | { role: 'probe'; url: string };

export interface DocumentClientResult {
  type: 'done';
  bytes: number;
  preview: { errors?: unknown; data?: any };
  ingested: { errors?: unknown; data?: any };
  /** From the first big request to the last answer, in ms. */
  tookMs: number;
}

export interface ProbeResult {
  type: 'probed';
  /** Latencies of the small requests, in ms, in the order they were sent. */
  latencies: number[];
  /** Answers other than 200. */
  failed: number;
}

/** Small requests, one after another, until `stop`: GET /healthz and a small search, alternately. */
async function probe(url: string, stopped: () => boolean): Promise<ProbeResult> {
  const latencies: number[] = [];
  let failed = 0;
  const search = JSON.stringify({ query: '{ search(collection: "probe", query: "alpha gamma", topK: 3) { hits { score } } }' });
  for (let i = 0; !stopped() && i < 100_000; i++) {
    const started = performance.now();
    const response =
      i % 2 === 0
        ? await fetch(`${url}/healthz`)
        : await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: search });
    await response.arrayBuffer();
    if (response.status !== 200) failed++;
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { type: 'probed', latencies, failed };
}

const graphql = async (url: string, query: string, variables: Record<string, unknown>) =>
  (await graphqlRequest<{ data?: any; errors?: any[] }>(url, query, variables)).body;

async function sendDocument(url: string, shape: string): Promise<DocumentClientResult> {
  const content = SHAPES[shape]!();
  parentPort!.postMessage({ type: 'ready' });
  const started = performance.now();
  const preview = await graphql(
    url,
    'query($d: DocumentInput!) { previewChunks(collection: "big", document: $d) { chunkCount chunks(first: 100) { index startOffset endOffset } } }',
    { d: { id: 'doc', content, contentType: 'TEXT' } },
  );
  const ingested = await graphql(
    url,
    'mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "big", documents: $d) { indexed failed results { status chunkCount reason } } }',
    { d: [{ id: 'doc', content, contentType: 'TEXT' }] },
  );
  return { type: 'done', bytes: Buffer.byteLength(content), preview, ingested, tookMs: performance.now() - started };
}

const fail = (error: unknown) =>
  parentPort!.postMessage({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });

if (parentPort && workerData) {
  const data = workerData as AdversarialClientData;
  if (data.role === 'document') {
    // The load generator yields the CPU to the server and the probe, as the pool's threads do (nice 10).
    lowerThreadPriority();
    sendDocument(data.url, data.shape).then((result) => parentPort!.postMessage(result), fail);
  } else {
    let stop = false;
    parentPort.on('message', (message: string) => {
      if (message === 'stop') stop = true;
      else if (message === 'start') probe(data.url, () => stop).then((result) => parentPort!.postMessage(result), fail);
    });
  }
}
