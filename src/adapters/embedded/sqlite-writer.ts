import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AppError } from '../../errors';
import type { BulkUpsertResult, DocumentWrite, EmbedderInfo } from '../../ports/knowledge-store.port';
import type { VersionBumps } from './sqlite.database';
import type { IndexOp } from './sqlite.vector-indexes';

/** What the writer thread opens: the store's file and its connection settings. */
export interface WriterThreadData {
  dataDir: string;
  busyTimeoutMs: number;
  synchronousFull: boolean;
}

/** An error as it crosses the thread boundary: an AppError's code and details, or SQLite's error code. */
export interface WireError {
  message: string;
  appError: boolean;
  code?: string;
  details?: Record<string, unknown>;
}

/** A document write's fields without its chunks and vectors (those come in parts). */
export type WireHeader = Omit<DocumentWrite, 'chunks' | 'secondary'> & { secondaryEmbedder: EmbedderInfo | null };

/**
 * Part of a write's chunks, in the order of the documents: each chunk's document (index in the write), its index and
 * offsets, text and vector; then secondary vectors with their document. The vectors are packed in `floats` in that
 * order (chunks', then secondary ones), moved to the thread rather than copied.
 */
export interface WirePart {
  chunkDocs: Int32Array;
  /** index, startOffset, endOffset of each chunk. */
  positions: Float64Array;
  texts: string[];
  lengths: Int32Array;
  secondaryDocs: Int32Array;
  secondaryLengths: Int32Array;
  floats: Float32Array;
}

/** Messages to the thread: a write's parts, one per turn of the event loop, then its documents, which start it. */
export type WriterRequest =
  { kind: 'part'; id: number; part: WirePart } | { kind: 'commit'; id: number; collectionId: string; headers: WireHeader[] };

export type WireResult =
  | { ok: true; externalId: string; document: Extract<BulkUpsertResult, { ok: true }>['document'] }
  | { ok: false; externalId: string; error: WireError };

/**
 * The writer thread's answer to one write. The vector-index changes go packed too: the removed rows, and the added
 * ones with the part and offset of their vector (the parts' buffers come back, moved).
 */
export type WriterReply =
  | {
      id: number;
      ok: true;
      results: WireResult[];
      removed: Float64Array;
      added: { rowIds: Float64Array; chunkIds: string[]; parts: Int32Array; offsets: Int32Array; lengths: Int32Array };
      floats: Float32Array[];
      bumps: VersionBumps;
    }
  | { id: number; ok: false; error: WireError };

/** Where a committed write's vector-index changes go (their vectors are views valid only during the call). */
export type ApplyIndexOps = (ops: readonly IndexOp[], bumps: VersionBumps) => void;

/**
 * Most floats (and characters of text) in one part: what one turn of the event loop packs and copies. Copying a 2 MiB
 * document's thousands of chunks at once took 130–170 ms of the event loop (most of it page faults of fresh memory:
 * filling a new 24 MB buffer took 70 ms here, one already used 3 ms).
 */
const PART_FLOATS = 256 * 1024;
const PART_CHARS = 256 * 1024;
/** Part buffers kept for the next writes (their memory already touched). */
const SPARE_BUFFERS = 8;

/**
 * The embedded store's writer thread: large bulk upserts (hundreds of documents, or one 2 MiB document: thousands of
 * chunk rows and their FTS5 postings) run there, in one transaction on a connection of its own, while the event loop
 * serves requests. SQLite stays the one source of truth: the thread commits, then the caller applies the vector-index
 * changes it reports. One write at a time (the store's write gate sees to it). A thread that dies fails the write it
 * was running (SQLite rolls it back) and is started again for the next one.
 */
export class SqliteWriterThread {
  #worker: Worker | null = null;
  /** Part buffers back from the thread, for the next writes. */
  #spares: Float32Array[] = [];
  #pending = new Map<number, { resolve: (reply: WriterReply) => void; reject: (error: Error) => void }>();
  #nextId = 1;

  constructor(private readonly data: WriterThreadData) {}

  /**
   * `docs` upserted in one transaction on the thread (see `SqliteWrites.writeBatch`); once it has committed, `apply`
   * gets its vector-index changes. Returns each document's result.
   */
  async upsert(collectionId: string, docs: readonly DocumentWrite[], apply: ApplyIndexOps): Promise<BulkUpsertResult[]> {
    const id = this.#nextId++;
    const worker = this.#start();
    const replied = new Promise<WriterReply>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    // Settled below, or by the thread's death: never unhandled while the parts are still being sent.
    replied.catch(() => undefined);
    worker.ref();
    try {
      for (const part of this.#parts(docs)) {
        worker.postMessage({ kind: 'part', id, part } satisfies WriterRequest, [part.floats.buffer as ArrayBuffer]);
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (!this.#pending.has(id)) break; // the thread stopped: `replied` says why
      }
      const headers = docs.map(({ chunks: _chunks, secondary, ...fields }): WireHeader => ({
        ...fields,
        secondaryEmbedder: secondary?.embedder ?? null,
      }));
      if (this.#pending.has(id)) worker.postMessage({ kind: 'commit', id, collectionId, headers } satisfies WriterRequest);
    } catch (error) {
      this.#settle(id)?.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const reply = await replied;
    if (!reply.ok) throw fromWire(reply.error);
    const ops: IndexOp[] = [];
    for (const rowId of reply.removed) ops.push({ kind: 'remove', collectionId, rowId });
    const { rowIds, chunkIds, parts, offsets, lengths } = reply.added;
    for (let i = 0; i < rowIds.length; i++) {
      const vector = reply.floats[parts[i]!]!.subarray(offsets[i], offsets[i]! + lengths[i]!);
      ops.push({ kind: 'add', collectionId, rowId: rowIds[i]!, chunkId: chunkIds[i]!, vector });
    }
    apply(ops, reply.bumps);
    for (const floats of reply.floats) {
      if (this.#spares.length < SPARE_BUFFERS && floats.buffer.byteLength >= PART_FLOATS * 4)
        this.#spares.push(new Float32Array(floats.buffer));
    }
    return reply.results.map((r) => (r.ok ? r : { ok: false, externalId: r.externalId, error: fromWire(r.error) as AppError }));
  }

  /** Terminates the thread (a write it runs is rolled back: callers wait for writes to end first). */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    if (worker) {
      this.#fail(worker, new Error('the writer thread was stopped'));
      await worker.terminate();
    }
  }

  /** The chunks and vectors of `docs` in parts of at most PART_FLOATS floats and PART_CHARS characters. */
  *#parts(docs: readonly DocumentWrite[]): Generator<WirePart> {
    let part = new PartBuilder(this.#spares.pop() ?? null);
    for (const [d, doc] of docs.entries()) {
      for (const chunk of doc.chunks) {
        if (part.full(chunk.vector.length, chunk.text.length)) {
          yield part.done();
          part = new PartBuilder(this.#spares.pop() ?? null);
        }
        part.chunk(d, chunk);
      }
      for (const vector of doc.secondary?.vectors ?? []) {
        if (part.full(vector.length, 0)) {
          yield part.done();
          part = new PartBuilder(this.#spares.pop() ?? null);
        }
        part.secondary(d, vector);
      }
    }
    yield part.done();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(join(__dirname, 'sqlite-writer.worker.js'), { workerData: this.data });
    worker.unref();
    worker.on('message', (reply: WriterReply) => this.#settle(reply.id)?.resolve(reply));
    const stopped = (error: Error) => {
      if (this.#worker === worker) this.#worker = null;
      this.#fail(worker, error);
    };
    worker.on('error', (error) => stopped(error));
    worker.on('exit', (code) => stopped(new Error(`the writer thread exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }

  #settle(id: number): { resolve: (reply: WriterReply) => void; reject: (error: Error) => void } | undefined {
    const call = this.#pending.get(id);
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker?.unref();
    return call;
  }

  #fail(worker: Worker, error: Error): void {
    for (const call of this.#pending.values()) call.reject(error);
    this.#pending.clear();
    worker.unref();
  }
}

/** One part being packed (into a spare buffer when one is at hand). */
class PartBuilder {
  readonly #chunkDocs: number[] = [];
  readonly #positions: number[] = [];
  readonly #texts: string[] = [];
  readonly #lengths: number[] = [];
  readonly #secondaryDocs: number[] = [];
  readonly #secondaryLengths: number[] = [];
  #floats: Float32Array;
  #used = 0;
  #chars = 0;

  constructor(spare: Float32Array | null) {
    this.#floats = spare ?? new Float32Array(PART_FLOATS);
  }

  /** Whether adding a vector of `floats` and a text of `chars` would overflow a part that already holds something. */
  full(floats: number, chars: number): boolean {
    const empty = this.#used === 0 && this.#chars === 0;
    return !empty && (this.#used + floats > PART_FLOATS || this.#chars + chars > PART_CHARS);
  }

  chunk(doc: number, chunk: DocumentWrite['chunks'][number]): void {
    this.#chunkDocs.push(doc);
    this.#positions.push(chunk.index, chunk.startOffset, chunk.endOffset);
    this.#texts.push(chunk.text);
    this.#lengths.push(this.#put(chunk.vector));
    this.#chars += chunk.text.length;
  }

  secondary(doc: number, vector: ArrayLike<number>): void {
    this.#secondaryDocs.push(doc);
    this.#secondaryLengths.push(this.#put(vector));
  }

  done(): WirePart {
    return {
      chunkDocs: Int32Array.from(this.#chunkDocs),
      positions: Float64Array.from(this.#positions),
      texts: this.#texts,
      lengths: Int32Array.from(this.#lengths),
      secondaryDocs: Int32Array.from(this.#secondaryDocs),
      secondaryLengths: Int32Array.from(this.#secondaryLengths),
      floats: this.#floats,
    };
  }

  /** Appends a vector (a part holds at least one, however long); returns its length. */
  #put(vector: ArrayLike<number>): number {
    if (this.#used + vector.length > this.#floats.length) {
      const grown = new Float32Array(Math.max(this.#floats.length * 2, this.#used + vector.length));
      grown.set(this.#floats.subarray(0, this.#used));
      this.#floats = grown;
    }
    this.#floats.set(vector, this.#used);
    this.#used += vector.length;
    return vector.length;
  }
}

/**
 * The thread's side of the parts: it gathers a write's chunks and vectors (each vector a view into its part's buffer,
 * nothing copied) until the write's documents arrive.
 */
export class PartCollector {
  readonly parts: Float32Array[] = [];
  readonly #partOf = new Map<ArrayBufferLike, number>();
  readonly #chunks = new Map<number, DocumentWrite['chunks']>();
  readonly #secondary = new Map<number, Float32Array[]>();

  add(part: WirePart): void {
    this.#partOf.set(part.floats.buffer, this.parts.push(part.floats) - 1);
    let at = 0;
    const take = (length: number): Float32Array => part.floats.subarray(at, (at += length));
    part.texts.forEach((text, i) => {
      const doc = part.chunkDocs[i]!;
      const chunks = this.#chunks.get(doc) ?? [];
      chunks.push({
        index: part.positions[i * 3]!,
        startOffset: part.positions[i * 3 + 1]!,
        endOffset: part.positions[i * 3 + 2]!,
        text,
        vector: take(part.lengths[i]!),
      });
      this.#chunks.set(doc, chunks);
    });
    part.secondaryDocs.forEach((doc, i) => {
      const vectors = this.#secondary.get(doc) ?? [];
      vectors.push(take(part.secondaryLengths[i]!));
      this.#secondary.set(doc, vectors);
    });
  }

  /** The whole writes, in the order of `headers`. */
  writes(headers: readonly WireHeader[]): DocumentWrite[] {
    return headers.map(({ secondaryEmbedder, ...fields }, d) => ({
      ...fields,
      chunks: this.#chunks.get(d) ?? [],
      ...(secondaryEmbedder ? { secondary: { embedder: secondaryEmbedder, vectors: this.#secondary.get(d) ?? [] } } : {}),
    }));
  }

  /** Which part a vector written is in, and where: every vector is a view into one of the parts' buffers. */
  locate(vector: Float32Array): { part: number; offset: number } {
    const part = this.#partOf.get(vector.buffer);
    if (part === undefined) throw new Error('a written vector is in none of the parts');
    return { part, offset: vector.byteOffset / 4 };
  }
}

/** An error for the other thread: an AppError's code, message and details, or an Error's message and (SQLite) code. */
export function toWire(error: unknown): WireError {
  if (error instanceof AppError) return { message: error.message, appError: true, code: error.code, details: { ...error.details } };
  const code = (error as { code?: unknown } | null)?.code;
  return {
    message: error instanceof Error ? error.message : String(error),
    appError: false,
    ...(typeof code === 'string' ? { code } : {}),
  };
}

/** {@link toWire}'s inverse: an AppError again, or an Error carrying SQLite's code (so `storageError` can map it). */
export function fromWire(wire: WireError): Error {
  if (wire.appError) return new AppError(wire.code as AppError['code'], wire.message, (wire.details ?? {}) as AppError['details']);
  return Object.assign(new Error(wire.message), wire.code ? { code: wire.code } : {});
}
