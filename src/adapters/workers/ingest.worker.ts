/**
 * A worker thread of the ingest pool (`ingest.pool.ts`): parsing, chunking and the hash embedder, so that a large or
 * hostile document costs thread time, never event-loop time.
 */
// First: every module below loads at the thread's lower priority.
import './lowered-priority';
import { workerData } from 'node:worker_threads';
import type { ParseRequest } from '../../ports/document-processor.port';
import { chunkText, packChunks, parseForIngest, type ChunkInput } from '../parsing/document-processing';
import { HashEmbedder } from '../embedders/hash.embedder';
import { serializeError, serveWorkerTasks, transferred } from './serve-tasks';
import type { Settled } from './worker-pool';

export interface IngestWorkerData {
  /** Dimensions of the configured hash embedder, built at start; null when another embedder is configured. */
  hashDimensions: number | null;
}

const data = workerData as IngestWorkerData;
/** Hash embedders by dimensions: the configured one, and those of other named embedders (built on first use). */
const embedders = new Map<number, HashEmbedder>();
if (data.hashDimensions !== null) embedders.set(data.hashDimensions, new HashEmbedder({ dimensions: data.hashDimensions }));

const chunk = (input: ChunkInput) => packChunks(input.text, chunkText(input.text, input.contentType, input.settings));

/** `work` over each input on its own: one input's failure is its own. */
function each<I, O>(inputs: I[], work: (input: I) => O): Settled<O>[] {
  return inputs.map((input) => {
    try {
      return { ok: true, value: work(input) };
    } catch (error) {
      return { ok: false, error: serializeError(error) };
    }
  });
}

serveWorkerTasks({
  parse: (request: ParseRequest) => parseForIngest(request),
  chunk: (input: ChunkInput) => {
    const packed = chunk(input);
    return transferred(packed, [packed.offsets.buffer as ArrayBuffer, packed.prefixOf.buffer as ArrayBuffer]);
  },
  // Several small documents in one task (see `SmallTasks` in ingest.pool.ts).
  parseMany: (requests: ParseRequest[]) => each(requests, parseForIngest),
  chunkMany: (inputs: ChunkInput[]) => {
    const results = each(inputs, chunk);
    const buffers = results.flatMap((r) => (r.ok ? [r.value.offsets.buffer as ArrayBuffer, r.value.prefixOf.buffer as ArrayBuffer] : []));
    return transferred(results, buffers);
  },
  embed: ({ texts, dimensions }: { texts: string[]; dimensions: number }) => {
    let embedder = embedders.get(dimensions);
    if (!embedder) embedders.set(dimensions, (embedder = new HashEmbedder({ dimensions })));
    // One flat buffer, moved back without a copy.
    const dims = embedder.info.dimensions;
    const flat = new Float32Array(texts.length * dims);
    texts.forEach((text, i) => flat.set(embedder.embedSync(text), i * dims));
    return transferred(flat, [flat.buffer]);
  },
});
