import { AppError, badInput, isAppError, type ErrorCode } from '../../errors';
import type { ChunkDraft, DocumentProcessor, WorkPriority } from '../../ports/document-processor.port';
import type {
  ChunkWrite,
  CollectionRecord,
  ContentType,
  DocumentRecord,
  DocumentWrite,
  KnowledgeStore,
  EmbedderInfo,
} from '../../ports/knowledge-store.port';
import { noTelemetry, type Telemetry } from '../../ports/telemetry.port';
import type { TextEmbedder } from '../../ports/text-embedder.port';
import type { CollectionService } from '../collections/collection.service';
import type { Access } from '../../ports/principal.port';
import { validateMetadata } from '../documents/metadata';
import { detectContentType } from '../../retrieval/content-type';

export type IngestStatus = 'INDEXED' | 'UNCHANGED' | 'FAILED';

export interface DocumentInputArgs {
  /** Your id for the document; re-ingesting the same id updates it. Default: a hash of the content. */
  id?: string | null;
  title?: string | null;
  source?: string | null;
  content: string;
  /** Default: detected from the content (HTML when it looks like markup, Markdown when it has Markdown structure). */
  contentType?: ContentType | null;
  metadata?: Record<string, unknown> | null;
}

export interface DocumentIngestResult {
  /** Position of the document in the request. */
  index: number;
  externalId: string | null;
  status: IngestStatus;
  /** Error code when FAILED. */
  code: ErrorCode | null;
  reason: string | null;
  documentId: string | null;
  chunkCount: number | null;
  /** What parsing changed in the sent text (control characters removed, unpaired surrogates replaced). */
  notices: string[];
}

export interface IngestSummary {
  collectionId: string;
  results: DocumentIngestResult[];
  indexed: number;
  unchanged: number;
  failed: number;
  tookMs: number;
}

/** The stages of one document after QUEUED, in order (see {@link IngestionService.ingestOne}). */
export type PipelineStage = 'PARSING' | 'CHUNKING' | 'EMBEDDING' | 'STORING';

export interface StageTimings {
  parseMs: number | null;
  chunkMs: number | null;
  embedMs: number | null;
  storeMs: number | null;
}

/** What happened to one document of {@link IngestionService.ingestOne}. */
export interface DocumentOutcome {
  externalId: string | null;
  status: IngestStatus;
  code: ErrorCode | null;
  /** The error's specific `reason` detail (EMPTY_FILE, CORRUPT_FILE, DUPLICATE_ID, …) when there is one. */
  reasonCode: string | null;
  reason: string | null;
  documentId: string | null;
  chunkCount: number | null;
  notices: string[];
  timings: StageTimings;
}

export interface PipelineHooks {
  /** Called as the document enters a stage (after the previous one finished); what it throws stops the document. */
  stage?(stage: PipelineStage, outcome: DocumentOutcome): void | Promise<void>;
  /** Errors that stop the document rather than fail it (re-thrown as they are). */
  isStop?(error: unknown): boolean;
}

/** Chunks as ingestion would store them, without vectors. */
export interface ChunkPreview {
  collectionId: string;
  externalId: string;
  title: string | null;
  contentType: ContentType;
  contentHash: string;
  charCount: number;
  notices: string[];
  chunkCount: number;
  chunks: ChunkDraft[];
}

export interface IngestionLimits {
  maxDocumentBytes: number;
  maxDocumentsPerRequest: number;
}

export const EXTERNAL_ID_PATTERN = /^[^\u0000-\u001f\u007f]{1,256}$/;
export const MAX_TITLE_CHARS = 1000;
export const MAX_SOURCE_CHARS = 2048;

interface Prepared {
  index: number;
  externalId: string;
  write: Omit<DocumentWrite, 'chunks'>;
  text: string;
  notices: string[];
}

/**
 * Documents of one `ingestDocuments` call in the worker pool at once: enough to keep every thread and the embedding
 * batcher busy, few enough that one large call cannot fill the pool's queue for everybody else.
 */
const REQUEST_CONCURRENCY = 32;

/**
 * Parses, chunks, embeds and stores documents with upsert semantics. One bad document never fails the others:
 * per-document problems come back as FAILED results with a code and reason.
 */
export class IngestionService {
  constructor(
    private readonly deps: {
      store: KnowledgeStore;
      collections: CollectionService;
      /** Parsing and chunking, in worker threads in the server. */
      processor: DocumentProcessor;
      /**
       * The embedder of an embedder identity (null: none configured). Chunks are embedded with the collection's active
       * embedder and, while it has secondary vectors (a re-embedding, a rollback window), with that one too.
       */
      embedders: (info: EmbedderInfo) => TextEmbedder | null;
      limits: IngestionLimits;
      /** Spans (`kbql.ingest`) and ingestion metrics; none by default. */
      telemetry?: Telemetry;
    },
  ) {}

  /** A `kbql.ingest` span around {@link ingestAll} with the document count and the per-status counts. */
  ingest(collectionRef: string, documents: readonly DocumentInputArgs[], access: Access): Promise<IngestSummary> {
    return (this.deps.telemetry ?? noTelemetry).run(
      'kbql.ingest',
      { collection: collectionRef, documentCount: documents.length },
      async (note) => {
        const summary = await this.ingestAll(collectionRef, documents, access);
        const chunkCount = summary.results.reduce((sum, r) => sum + (r.status === 'INDEXED' ? (r.chunkCount ?? 0) : 0), 0);
        note({ indexed: summary.indexed, unchanged: summary.unchanged, failed: summary.failed, chunkCount });
        return summary;
      },
    );
  }

  private async ingestAll(collectionRef: string, documents: readonly DocumentInputArgs[], access: Access): Promise<IngestSummary> {
    const started = performance.now();
    const { limits } = this.deps;
    if (documents.length === 0) throw badInput('Give at least one document.', { argument: 'documents' });
    if (documents.length > limits.maxDocumentsPerRequest) {
      throw badInput(`At most ${limits.maxDocumentsPerRequest} documents per request.`, {
        argument: 'documents',
        max: limits.maxDocumentsPerRequest,
      });
    }
    const collection = await this.deps.collections.resolveForWrite(collectionRef, access);
    this.deps.collections.assertSameEmbedder(collection);

    const results: DocumentIngestResult[] = documents.map((doc, index) => ({
      index,
      externalId: doc.id ?? null,
      status: 'FAILED',
      code: null,
      reason: null,
      documentId: null,
      chunkCount: null,
      notices: [],
    }));
    const fail = (index: number, error: unknown): void => {
      const result = results[index]!;
      result.status = 'FAILED';
      if (isAppError(error)) {
        result.code = error.code;
        result.reason = error.message;
      } else {
        result.code = 'INTERNAL_SERVER_ERROR';
        result.reason = 'The document could not be stored.';
      }
    };

    // 1. Validate and parse each document on its own (in the worker pool, a few at a time).
    const parsedDocs = await mapConcurrent(documents, REQUEST_CONCURRENCY, async (doc, index) => {
      try {
        return await this.prepare(doc, index, collection, 'interactive');
      } catch (error) {
        fail(index, error);
        return null;
      }
    });
    const prepared: Prepared[] = [];
    const seen = new Set<string>();
    for (const p of parsedDocs) {
      if (!p) continue;
      results[p.index]!.externalId = p.externalId;
      results[p.index]!.notices = p.notices;
      if (seen.has(p.externalId)) {
        fail(
          p.index,
          new AppError('CONFLICT', `Document id "${p.externalId}" appears more than once in this request.`, { reason: 'DUPLICATE_ID' }),
        );
        continue;
      }
      seen.add(p.externalId);
      prepared.push(p);
    }

    // 2. Same id + same content hash → UNCHANGED (metadata still refreshed, without re-embedding).
    const hashes = await this.deps.store.getContentHashes(
      collection.id,
      prepared.map((p) => p.externalId),
    );
    const changed: Prepared[] = [];
    for (const p of prepared) {
      if (hashes.get(p.externalId) !== p.write.contentHash) {
        changed.push(p);
        continue;
      }
      try {
        const doc = await this.refreshUnchanged(collection, p);
        Object.assign(results[p.index]!, { status: 'UNCHANGED', documentId: doc?.id ?? null, chunkCount: doc?.chunkCount ?? null });
      } catch (error) {
        fail(p.index, error);
      }
    }

    // 3. Chunk the changed ones (in the worker pool), then embed all their chunks at once: requests made together
    // are batched into few provider calls.
    const chunked = await mapConcurrent(changed, REQUEST_CONCURRENCY, async (p) => {
      try {
        return { p, drafts: await this.chunkPrepared(p, collection, 'interactive') };
      } catch (error) {
        fail(p.index, error);
        return null;
      }
    });
    const embedded = await Promise.all(
      chunked.map(async (item) => {
        if (!item) return null;
        try {
          return { p: item.p, vectors: await this.embedChunks(item.drafts, collection) };
        } catch (error) {
          fail(item.p.index, error);
          return null;
        }
      }),
    );

    // 4. Store each document atomically (old chunks replaced in the same transaction), in bulk when the store can.
    const ready = embedded.filter((item): item is NonNullable<typeof item> => item !== null);
    const stored = (index: number, doc: DocumentRecord) =>
      Object.assign(results[index]!, { status: 'INDEXED', documentId: doc.id, chunkCount: doc.chunkCount });
    const { store } = this.deps;
    if (store.upsertDocuments && ready.length > 1) {
      try {
        const outcomes = await store.upsertDocuments(
          collection.id,
          ready.map((item) => ({ ...item.p.write, ...item.vectors })),
        );
        outcomes.forEach((outcome, i) => {
          const index = ready[i]!.p.index;
          if (outcome.ok) stored(index, outcome.document);
          else fail(index, outcome.error);
        });
      } catch (error) {
        for (const item of ready) fail(item.p.index, error);
      }
    } else {
      for (const item of ready) {
        try {
          stored(item.p.index, await store.upsertDocument(collection.id, { ...item.p.write, ...item.vectors }));
        } catch (error) {
          fail(item.p.index, error);
        }
      }
    }

    const count = (s: IngestStatus) => results.filter((r) => r.status === s).length;
    return {
      collectionId: collection.id,
      results,
      indexed: count('INDEXED'),
      unchanged: count('UNCHANGED'),
      failed: count('FAILED'),
      tookMs: performance.now() - started,
    };
  }

  /** The collection an ingestion writes to (NOT_FOUND across tenants; CONFLICT when its embedder is not ours). */
  async resolveCollection(collectionRef: string, access: Access): Promise<CollectionRecord> {
    const collection = await this.deps.collections.resolveForWrite(collectionRef, access);
    this.deps.collections.assertSameEmbedder(collection);
    return collection;
  }

  /** A collection the caller may read (previews, job listings). NOT_FOUND otherwise. */
  resolveReadable(collectionRef: string, access: Access): Promise<CollectionRecord> {
    return this.deps.collections.resolve(collectionRef, access);
  }

  /**
   * One document through the same steps as {@link ingest} — validate and parse, content-hash check, chunk, embed,
   * store (atomic replacement) — calling `hooks.stage` as it enters each stage. This is the path of ingestion jobs.
   * `doc` may be a loader (an uploaded file is extracted inside PARSING). A failure is a FAILED outcome, not a throw,
   * except what `hooks.stage` throws (a cancelled job stops that way).
   */
  async ingestOne(
    collection: CollectionRecord,
    doc: DocumentInputArgs | (() => Promise<DocumentInputArgs>),
    hooks: PipelineHooks = {},
    priority: WorkPriority = 'background',
  ): Promise<DocumentOutcome> {
    const timings: StageTimings = { parseMs: null, chunkMs: null, embedMs: null, storeMs: null };
    const outcome: DocumentOutcome = {
      externalId: typeof doc === 'function' ? null : (doc.id ?? null),
      status: 'FAILED',
      code: null,
      reasonCode: null,
      reason: null,
      documentId: null,
      chunkCount: null,
      notices: [],
      timings,
    };
    const timed = async <T>(key: keyof StageTimings, work: () => T | Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await work();
      } finally {
        timings[key] = performance.now() - started;
      }
    };
    let stage: PipelineStage = 'PARSING';
    const enter = async (next: PipelineStage) => {
      stage = next;
      await hooks.stage?.(next, outcome);
    };
    try {
      await enter('PARSING');
      const p = await timed('parseMs', async () => this.prepare(typeof doc === 'function' ? await doc() : doc, 0, collection, priority));
      outcome.externalId = p.externalId;
      outcome.notices = p.notices;
      const hashes = await this.deps.store.getContentHashes(collection.id, [p.externalId]);
      if (hashes.get(p.externalId) === p.write.contentHash) {
        const existing = await this.refreshUnchanged(collection, p);
        return Object.assign(outcome, { status: 'UNCHANGED', documentId: existing?.id ?? null, chunkCount: existing?.chunkCount ?? null });
      }
      await enter('CHUNKING');
      const drafts = await timed('chunkMs', () => this.chunkPrepared(p, collection, priority));
      await enter('EMBEDDING');
      const vectors = await timed('embedMs', () => this.embedChunks(drafts, collection));
      await enter('STORING');
      const stored = await timed('storeMs', () => this.deps.store.upsertDocument(collection.id, { ...p.write, ...vectors }));
      return Object.assign(outcome, { status: 'INDEXED', documentId: stored.id, chunkCount: stored.chunkCount });
    } catch (error) {
      if (hooks.isStop?.(error)) throw error;
      if (isAppError(error)) {
        outcome.code = error.code;
        outcome.reason = error.message;
        outcome.reasonCode = typeof error.details['reason'] === 'string' ? error.details['reason'] : null;
      } else {
        outcome.code = 'INTERNAL_SERVER_ERROR';
        outcome.reason = `The document could not be processed (${stage}).`;
      }
      return outcome;
    }
  }

  /**
   * Exactly the ingestion path up to chunking (validation, parsing, title, content hash, the collection's chunking
   * settings) without embedding or storing anything.
   */
  async previewChunks(
    collectionRef: string,
    doc: DocumentInputArgs | (() => Promise<DocumentInputArgs>),
    access: Access,
  ): Promise<ChunkPreview> {
    const collection = await this.deps.collections.resolve(collectionRef, access);
    const p = await this.prepare(typeof doc === 'function' ? await doc() : doc, 0, collection, 'interactive');
    const chunks = await this.chunkPrepared(p, collection, 'interactive');
    return {
      collectionId: collection.id,
      externalId: p.externalId,
      title: p.write.title,
      contentType: p.write.contentType,
      contentHash: p.write.contentHash,
      charCount: p.write.charCount,
      notices: p.notices,
      chunkCount: chunks.length,
      chunks,
    };
  }

  private async chunkPrepared(p: Prepared, collection: CollectionRecord, priority: WorkPriority): Promise<ChunkDraft[]> {
    const drafts = await this.deps.processor.chunk(p.text, p.write.contentType, collection.chunking, priority);
    if (drafts.length === 0) throw badInput('The document produced no chunks.', { reason: 'EMPTY' });
    return drafts;
  }

  /**
   * The chunks with their vectors of the collection's active embedder and, while the collection has secondary
   * vectors, of that embedder too (so a re-embedding or a rollback loses no write). A failure of the secondary one
   * is not the document's: the chunk is then left to the re-embedding job (or the rollback) to embed.
   */
  private async embedChunks(
    drafts: ChunkDraft[],
    collection: CollectionRecord,
  ): Promise<Pick<DocumentWrite, 'chunks' | 'embedder' | 'secondary'>> {
    const texts = drafts.map((d) => d.text);
    const active = this.deps.collections.assertSameEmbedder(collection).vectors;
    const secondaryInfo = collection.secondary?.embedder ?? null;
    const secondaryEmbedder = secondaryInfo ? this.deps.embedders(secondaryInfo) : null;
    const [vectors, secondary] = await Promise.all([
      active.embedMany(texts),
      secondaryEmbedder ? secondaryEmbedder.embedMany(texts).catch(() => null) : Promise.resolve(null),
    ]);
    // Fields spelled out: a spread per chunk cost a 2 MiB document's thousands of chunks milliseconds of event loop.
    const chunks: ChunkWrite[] = drafts.map((d, i) => ({
      index: d.index,
      text: d.text,
      startOffset: d.startOffset,
      endOffset: d.endOffset,
      vector: vectors[i]!,
    }));
    return {
      chunks,
      embedder: collection.embedder,
      ...(secondary && secondaryInfo ? { secondary: { embedder: secondaryInfo, vectors: secondary } } : {}),
    };
  }

  /** Same id and content hash: nothing re-embedded, the metadata refreshed when it changed. */
  private async refreshUnchanged(collection: CollectionRecord, p: Prepared): Promise<DocumentRecord | null> {
    const existing = await this.deps.store.getDocumentByExternalId(collection.id, p.externalId);
    if (existing && JSON.stringify(existing.metadata) !== JSON.stringify(p.write.metadata)) {
      return this.deps.store.updateDocumentMetadata(existing.id, p.write.metadata);
    }
    return existing;
  }

  /** Validation here (cheap), parsing and hashing in the worker pool. */
  private async prepare(doc: DocumentInputArgs, index: number, collection: CollectionRecord, priority: WorkPriority): Promise<Prepared> {
    const { limits } = this.deps;
    if (typeof doc.content !== 'string') throw badInput('content must be a string.', { field: 'content' });
    const bytes = Buffer.byteLength(doc.content, 'utf8');
    if (bytes > limits.maxDocumentBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `The document is ${bytes} bytes; the limit is ${limits.maxDocumentBytes}.`, {
        field: 'content',
        bytes,
        max: limits.maxDocumentBytes,
      });
    }
    if (doc.content.trim() === '') throw badInput('The document has no content.', { field: 'content' });
    if (doc.id != null && !EXTERNAL_ID_PATTERN.test(doc.id)) {
      throw badInput('A document id has 1 to 256 characters and no control characters.', { field: 'id' });
    }
    if (doc.title != null && doc.title.length > MAX_TITLE_CHARS)
      throw badInput(`A title has at most ${MAX_TITLE_CHARS} characters.`, { field: 'title' });
    if (doc.source != null && doc.source.length > MAX_SOURCE_CHARS)
      throw badInput(`A source has at most ${MAX_SOURCE_CHARS} characters.`, { field: 'source' });
    const metadata = validateMetadata(doc.metadata ?? {});
    const contentType = doc.contentType ?? detectContentType(doc.content);
    const source = doc.source ?? null;
    const parsed = await this.deps.processor.parse(
      {
        content: doc.content,
        contentType,
        title: doc.title ?? null,
        source,
        chunking: collection.chunking,
        embedderName: collection.embedder.name,
      },
      priority,
    );
    const externalId = doc.id ?? `sha256:${parsed.rawHash.slice(0, 32)}`;
    return {
      index,
      externalId,
      text: parsed.text,
      notices: parsed.notices,
      write: {
        externalId,
        title: parsed.title,
        source,
        contentType,
        metadata,
        contentHash: parsed.contentHash,
        charCount: parsed.text.length,
      },
    };
  }
}

/** `fn` over `items` with at most `limit` calls in flight; results in input order. */
async function mapConcurrent<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
