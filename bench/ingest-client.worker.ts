/**
 * The bulk loader of `bench/ingestion.bench.ts`, on a thread of its own: it sends `ingestDocuments` requests of
 * prepared batches, `concurrency` at a time, like a loader on another machine would. In the server's own thread, the
 * loader's work (serialising 250 abstracts a request, the fetch client converting and encoding each body, parsing the
 * answers) was counted as kbql's: about 50 ms of the event loop per 1,000 abstracts, on the thread that bounds the
 * throughput once the server is warm.
 *
 * Protocol: the thread builds every request body, posts `{ type: 'ready' }`, waits for `'go'`, sends them all and posts
 * {@link IngestClientResult}.
 */
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

export interface IngestClientData {
  /** The server's `/graphql` URL. */
  url: string;
  collection: string;
  batches: { id: string; title: string; text: string }[][];
  concurrency: number;
}

export interface IngestClientResult {
  type: 'done';
  chunks: number;
  /** Documents the server answered as FAILED, and the first reason. */
  failed: number;
  error: string | null;
}

const MUTATION =
  'mutation($collection: String!, $docs: [DocumentInput!]!) { ingestDocuments(collection: $collection, documents: $docs) { failed results { chunkCount reason } } }';

function post(agent: http.Agent, url: URL, body: Buffer): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
      (response) => {
        const parts: Buffer[] = [];
        response.on('data', (part: Buffer) => parts.push(part));
        response.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(parts).toString('utf8')));
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function main(data: IngestClientData): Promise<IngestClientResult> {
  const url = new URL(data.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: data.concurrency });
  const bodies = data.batches.map((batch) =>
    Buffer.from(
      JSON.stringify({
        query: MUTATION,
        variables: {
          collection: data.collection,
          docs: batch.map((d) => ({ id: d.id, title: d.title, content: `${d.title}\n\n${d.text}`, contentType: 'TEXT' })),
        },
      }),
    ),
  );
  await new Promise<void>((resolve) => {
    parentPort!.once('message', () => resolve());
    parentPort!.postMessage({ type: 'ready' });
  });
  const result: IngestClientResult = { type: 'done', chunks: 0, failed: 0, error: null };
  let next = 0;
  await Promise.all(
    Array.from({ length: data.concurrency }, async () => {
      while (next < bodies.length) {
        const answer = (await post(agent, url, bodies[next++]!)) as {
          data?: { ingestDocuments: { failed: number; results: { chunkCount: number | null; reason: string | null }[] } };
          errors?: { message: string }[];
        };
        if (!answer.data) {
          result.error ??= answer.errors?.[0]?.message ?? 'no data';
          continue;
        }
        result.failed += answer.data.ingestDocuments.failed;
        for (const r of answer.data.ingestDocuments.results) {
          result.chunks += r.chunkCount ?? 0;
          if (r.reason) result.error ??= r.reason;
        }
      }
    }),
  );
  agent.destroy();
  return result;
}

main(workerData as IngestClientData).then(
  (result) => parentPort!.postMessage(result),
  (error: unknown) => parentPort!.postMessage({ type: 'done', chunks: 0, failed: 0, error: String(error) } satisfies IngestClientResult),
);
