import { join } from 'node:path';
import { AppError, badInput } from '../../errors';
import type { ChunkDraft, DocumentProcessor, ParsedForIngest, ParseRequest, WorkPriority } from '../../ports/document-processor.port';
import type { Embedder } from '../../ports/embedder.port';
import type { ChunkingSettings, ContentType, EmbedderInfo } from '../../ports/knowledge-store.port';
import { HashEmbedder } from '../embedders/hash.embedder';
import { unpackChunks, type ChunkInput, type PackedChunks } from '../parsing/document-processing';
import type { IngestWorkerData } from './ingest.worker';
import { SmallTasks } from './small-tasks';
import { WorkerCrashError, WorkerPool, type RunOptions, type Settled } from './worker-pool';

export interface IngestPoolOptions {
  /** Worker threads. @default 2 */
  size?: number;
  /** Interactive tasks that may wait for a thread (beyond: SERVER_BUSY at once). @default 256 */
  maxQueue?: number;
  /** Longest an interactive parse or chunk task waits for a thread, in ms (then SERVER_BUSY). @default 10000 */
  queueTimeoutMs?: number;
  /** Longest one parse or chunk task may run, in ms (then its thread is replaced: PARSE_TIMEOUT / CHUNK_TIMEOUT). @default 30000 */
  taskTimeoutMs?: number;
  /** V8 heap of one thread, in MiB. @default 512 */
  heapMb?: number;
  /** Dimensions of the hash embedder the threads also run; null: no embedding in the pool. @default null */
  hashDimensions?: number | null;
}

/** Texts longer than this go to a thread on a turn of the event loop of their own (see `largeInputTurn`). */
const LARGE_INPUT_CHARS = 256 * 1024;
/**
 * Inputs of at most this many characters go to a thread several per task (`SmallTasks`): for an abstract, the
 * message to and from the thread cost about as much as parsing it.
 */
const SMALL_INPUT_CHARS = 16 * 1024;
/** Texts per embedding task: small enough that both threads share a batch and a query never waits long behind one. */
const EMBED_SLICE = 64;
/** Batches this small (queries) are embedded on the calling thread. */
const INLINE_MAX_TEXTS = 4;
const INLINE_MAX_CHARS = 4_000;
/** An embedding task's time limit per text, in ms (the hash embedder takes well under a millisecond per chunk). */
const EMBED_MS_PER_TEXT = 50;

/**
 * The worker threads of ingestion and query embedding: one pool, sized from the cores, shared by `ingestDocuments`,
 * jobs, `previewChunks` and (with the hash embedder) every embedding. Returns the {@link DocumentProcessor} that
 * ingestion uses and, with `hashDimensions`, an {@link Embedder} equivalent to `HashEmbedder` that runs in the pool.
 */
export function createIngestPool(options: IngestPoolOptions = {}): {
  pool: WorkerPool;
  processor: DocumentProcessor;
  embedder: Embedder | null;
} {
  const hashDimensions = options.hashDimensions ?? null;
  const pool = new WorkerPool({
    name: 'ingest',
    file: join(__dirname, 'ingest.worker.js'),
    size: options.size,
    maxQueue: options.maxQueue,
    heapMb: options.heapMb,
    workerData: { hashDimensions } satisfies IngestWorkerData,
  });
  const taskTimeoutMs = options.taskTimeoutMs ?? 30_000;
  /**
   * The pool, on the next turn of the event loop when `text` is large: copying a 2 MiB text to a thread takes about
   * 10 ms, which should not add to the turn that parsed the request carrying it.
   */
  const largeInputTurn = async (text: string): Promise<WorkerPool> => {
    if (text.length > LARGE_INPUT_CHARS) await new Promise<void>((resolve) => setImmediate(resolve));
    return pool;
  };
  const queueTimeoutMs = options.queueTimeoutMs ?? 10_000;
  const laneOptions = (priority: WorkPriority) =>
    priority === 'interactive' ? { lane: 'interactive' as const, queueTimeoutMs } : { lane: 'background' as const };

  /** A parse or chunk task's options: its lane, and its time limit with the reason the document then fails with. */
  const stepOptions =
    (step: 'Parsing' | 'Chunking', reason: 'PARSE_TIMEOUT' | 'CHUNK_TIMEOUT') =>
    (priority: WorkPriority): RunOptions => ({
      ...laneOptions(priority),
      timeoutMs: taskTimeoutMs,
      onTimeout: () =>
        badInput(`${step} the document took longer than ${taskTimeoutMs} ms; it was abandoned.`, { reason, timeoutMs: taskTimeoutMs }),
    });
  const parseOptions = stepOptions('Parsing', 'PARSE_TIMEOUT');
  const chunkOptions = stepOptions('Chunking', 'CHUNK_TIMEOUT');
  const smallParses = new SmallTasks<ParseRequest, ParsedForIngest>((requests, priority) =>
    pool.run<Settled<ParsedForIngest>[]>('parseMany', requests, parseOptions(priority)),
  );
  const smallChunks = new SmallTasks<ChunkInput, PackedChunks>((inputs, priority) =>
    pool.run<Settled<PackedChunks>[]>('chunkMany', inputs, chunkOptions(priority)),
  );

  const processor: DocumentProcessor = {
    parse: async (request: ParseRequest, priority: WorkPriority) =>
      (request.content.length <= SMALL_INPUT_CHARS
        ? smallParses.run(request, request.content.length, priority)
        : (await largeInputTurn(request.content)).run<ParsedForIngest>('parse', request, parseOptions(priority))
      ).catch(documentFailure('parse')),
    chunk: async (text: string, contentType: ContentType, settings: ChunkingSettings, priority: WorkPriority) =>
      (text.length <= SMALL_INPUT_CHARS
        ? smallChunks.run({ text, contentType, settings }, text.length, priority)
        : (await largeInputTurn(text)).run<PackedChunks>('chunk', { text, contentType, settings }, chunkOptions(priority))
      ).then((packed): ChunkDraft[] => unpackChunks(text, packed), documentFailure('chunk')),
    close: () => pool.close(),
  };
  return { pool, processor, embedder: hashDimensions === null ? null : new PooledHashEmbedder(pool, hashDimensions) };
}

/** A thread that died under a document (its heap limit): that document fails, with a code that says why. */
function documentFailure(what: string): (error: unknown) => never {
  return (error) => {
    if (error instanceof WorkerCrashError) {
      throw new AppError(
        'PAYLOAD_TOO_LARGE',
        `The document needed more memory to ${what} than a worker thread has (KBQL_WORKER_HEAP_MB).`,
        { reason: 'WORKER_MEMORY' },
      );
    }
    throw error;
  };
}

/** {@link HashEmbedder}'s vectors, computed on the pool's threads in slices of {@link EMBED_SLICE} texts. */
export class PooledHashEmbedder implements Embedder {
  readonly info: EmbedderInfo;
  readonly maxBatchSize: number;
  /** The same embedder on this thread: small batches, and the output fingerprint that versions the cache. */
  readonly local: HashEmbedder;

  constructor(
    private readonly pool: WorkerPool,
    dimensions: number,
  ) {
    this.local = new HashEmbedder({ dimensions });
    this.info = this.local.info;
    this.maxBatchSize = this.local.maxBatchSize;
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    // A query or two: embedded here in well under a millisecond, rather than queued behind a thread that is chunking
    // a 2 MiB document (the hop alone costs more than the work).
    if (texts.length <= INLINE_MAX_TEXTS && texts.reduce((sum, t) => sum + t.length, 0) <= INLINE_MAX_CHARS) {
      return this.local.embed(texts, signal);
    }
    const dims = this.info.dimensions;
    const slices: string[][] = [];
    for (let i = 0; i < texts.length; i += EMBED_SLICE) slices.push(texts.slice(i, i + EMBED_SLICE));
    // Each slice is split into vectors as it arrives, so the work spreads over the event loop's turns.
    const parts = await Promise.all(
      slices.map((slice) =>
        this.pool
          .run<Float32Array>(
            'embed',
            { texts: slice, dimensions: dims },
            {
              lane: 'interactive',
              timeoutMs: 5_000 + slice.length * EMBED_MS_PER_TEXT,
              onTimeout: () => new AppError('UPSTREAM_TIMEOUT', 'The local embedder did not finish in time.'),
            },
          )
          .then((flat) => {
            const vectors: Float32Array[] = [];
            // Own buffers: some consumers ignore a view's offset.
            for (let at = 0; at < flat.length; at += dims) vectors.push(flat.slice(at, at + dims));
            return vectors;
          })
          .catch((error: unknown) => {
            if (error instanceof WorkerCrashError)
              throw new AppError('UPSTREAM_UNAVAILABLE', `The local embedder failed: ${error.message}`);
            throw error;
          }),
      ),
    );
    signal?.throwIfAborted();
    return parts.flat();
  }
}
