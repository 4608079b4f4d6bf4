import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AppError, badInput } from '../../errors';
import type { ExtractedContent, FileContentExtractor } from '../../ports/file-extractor.port';
import type { ContentType } from '../../ports/knowledge-store.port';
import { detectContentType } from '../../retrieval/content-type';
import {
  DEFAULT_EXTRACT_LIMITS,
  type ExtractLimits,
  type ExtractReason,
  type ExtractRequest,
  type ExtractResponse,
} from './file-extract.worker';
import { DECLARED_NAMES, declaredKind, sniffFile, type FileKind } from './file-sniffer';

/** A file turned into content, and what its bytes turned out to be. */
export interface ExtractedFile extends ExtractedContent {
  /** What the bytes turned out to be. */
  kind: FileKind;
}

export interface FileExtractorOptions {
  /**
   * Longest a PDF or DOCX may take to extract, in ms; past it the worker thread is terminated and the document
   * fails with PARSE_TIMEOUT.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Worker threads kept for extraction (files beyond wait for one).
   * @default 2
   */
  workers?: number;
  /**
   * Heap limit of one extraction thread, in MiB (a file that needs more fails as CORRUPT_FILE, the server lives on).
   * @default 256
   */
  workerHeapMb?: number;
  /**
   * Most UTF-8 bytes of text one PDF or DOCX may yield, in bytes; past it the document fails with TEXT_TOO_LARGE
   * (a PDF stops at the page that crosses it). Text within it must still fit the ingestion's document size limit.
   * @default 8388608 (8 MiB)
   */
  maxExtractedBytes?: number;
  /**
   * Most pages of a PDF, checked before any text is read; above it the document fails with TOO_MANY_PAGES.
   * @default 2000
   */
  maxPdfPages?: number;
  /**
   * Most bytes a DOCX's ZIP entries may inflate to, declared and actually counted while inflating, in bytes; above
   * it (or when an entry inflates past its declared size) the document fails with ARCHIVE_TOO_LARGE.
   * @default 67108864 (64 MiB)
   */
  maxArchiveInflatedBytes?: number;
  /**
   * Most entries in a DOCX's ZIP container (ARCHIVE_TOO_LARGE above).
   * @default 2000
   */
  maxArchiveEntries?: number;
}

/** Refusals over a size bound: PAYLOAD_TOO_LARGE, the others BAD_USER_INPUT. */
const SIZE_REASONS: ReadonlySet<ExtractReason> = new Set(['ARCHIVE_TOO_LARGE', 'TEXT_TOO_LARGE', 'TOO_MANY_PAGES']);

interface PoolWorker {
  worker: Worker;
  busy: boolean;
}

const WORKER_FILE = join(__dirname, 'file-extract.worker.js');
const SUPPORTED = 'PDF, DOCX, Markdown, HTML or plain text (UTF-8)';

/**
 * Extracts uploaded files: the type is sniffed from the bytes (see {@link sniffFile}; the name and media type only
 * choose between Markdown, HTML and plain text), text files are decoded here, PDF (unpdf: pdf.js, pure JS) and DOCX
 * (mammoth) in worker threads with a hard timeout and size bounds checked before and while inflating. Every
 * refusal carries a specific `reason`: BAD_USER_INPUT for EMPTY_FILE, UNSUPPORTED_TYPE, CORRUPT_FILE, ENCRYPTED_FILE,
 * NO_TEXT, PARSE_TIMEOUT; PAYLOAD_TOO_LARGE for ARCHIVE_TOO_LARGE, TEXT_TOO_LARGE, TOO_MANY_PAGES. A thread that
 * failed a file is terminated (its memory returned to the system) and replaced on demand.
 */
export class FileExtractor implements FileContentExtractor {
  private readonly timeoutMs: number;
  private readonly size: number;
  private readonly heapMb: number;
  private readonly limits: ExtractLimits;
  private readonly pool: PoolWorker[] = [];
  private readonly waiting: ((worker: PoolWorker) => void)[] = [];
  private nextId = 1;
  private closed = false;

  constructor(options: FileExtractorOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.size = Math.max(1, options.workers ?? 2);
    this.heapMb = options.workerHeapMb ?? 256;
    this.limits = {
      maxExtractedBytes: options.maxExtractedBytes ?? DEFAULT_EXTRACT_LIMITS.maxExtractedBytes,
      maxPdfPages: options.maxPdfPages ?? DEFAULT_EXTRACT_LIMITS.maxPdfPages,
      zip: {
        maxInflatedBytes: options.maxArchiveInflatedBytes ?? DEFAULT_EXTRACT_LIMITS.zip.maxInflatedBytes,
        maxEntries: options.maxArchiveEntries ?? DEFAULT_EXTRACT_LIMITS.zip.maxEntries,
      },
    };
  }

  async extract(data: Buffer, filename: string, mediaType: string | null): Promise<ExtractedFile> {
    const sniffed = sniffFile(data);
    const declared = declaredKind(filename, mediaType);
    const claim = declared ? ` (declared as ${DECLARED_NAMES[declared]})` : '';
    switch (sniffed.kind) {
      case 'EMPTY':
        throw badInput(`"${filename}" is empty.`, { reason: 'EMPTY_FILE' });
      case 'BINARY':
        throw badInput(`"${filename}"${claim} is a ${sniffed.description}; kbql reads ${SUPPORTED}.`, {
          reason: 'UNSUPPORTED_TYPE',
          detected: sniffed.description,
        });
      case 'TEXT': {
        const content = data.toString('utf8').replace(/^\ufeff/, '');
        const contentType: ContentType =
          declared === 'MARKDOWN' || declared === 'HTML' || declared === 'TEXT' ? declared : detectContentType(content);
        return { content, contentType, title: null, kind: 'TEXT' };
      }
      case 'PDF':
      case 'DOCX': {
        const { text, title } = await this.inWorker(sniffed.kind, data, filename);
        if (!/[\p{L}\p{N}]/u.test(text)) {
          throw badInput(`"${filename}" has no extractable text${sniffed.kind === 'PDF' ? ' (a scanned PDF needs OCR first)' : ''}.`, {
            reason: 'NO_TEXT',
          });
        }
        return { content: text, contentType: 'TEXT', title, kind: sniffed.kind };
      }
    }
  }

  /** Terminates the worker threads. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.pool.splice(0).map((w) => w.worker.terminate()));
  }

  private async inWorker(kind: 'PDF' | 'DOCX', data: Buffer, filename: string): Promise<{ text: string; title: string | null }> {
    const slot = await this.acquire();
    const id = this.nextId++;
    try {
      const response = await new Promise<ExtractResponse>((resolve, reject) => {
        const timer = setTimeout(() => {
          cleanup();
          this.discard(slot);
          reject(
            badInput(`"${filename}" took longer than ${this.timeoutMs} ms to read; it was abandoned.`, {
              reason: 'PARSE_TIMEOUT',
              timeoutMs: this.timeoutMs,
            }),
          );
        }, this.timeoutMs);
        const onMessage = (message: ExtractResponse) => {
          if (message.id !== id) return;
          cleanup();
          resolve(message);
        };
        const onGone = (error?: unknown) => {
          cleanup();
          this.discard(slot);
          reject(
            badInput(
              `"${filename}" could not be read: the ${kind} reader stopped (${error instanceof Error ? error.message : 'exited'}).`,
              {
                reason: 'CORRUPT_FILE',
              },
            ),
          );
        };
        const cleanup = () => {
          clearTimeout(timer);
          slot.worker.off('message', onMessage);
          slot.worker.off('error', onGone);
          slot.worker.off('exit', onGone);
        };
        slot.worker.on('message', onMessage);
        slot.worker.once('error', onGone);
        slot.worker.once('exit', onGone);
        const bytes = movable(data);
        slot.worker.postMessage({ id, kind, data: bytes } satisfies ExtractRequest, [bytes.buffer as ArrayBuffer]);
      });
      if (!response.ok) {
        // What a hostile file made the thread allocate (native buffers, arenas) is not reliably given back otherwise.
        this.discard(slot);
        const code = SIZE_REASONS.has(response.reasonCode) ? 'PAYLOAD_TOO_LARGE' : 'BAD_USER_INPUT';
        throw new AppError(code, `"${filename}": ${response.message}`, { reason: response.reasonCode });
      }
      return { text: response.text, title: response.title };
    } finally {
      this.release(slot);
    }
  }

  private acquire(): Promise<PoolWorker> {
    if (this.closed) return Promise.reject(new AppError('UPSTREAM_UNAVAILABLE', 'The file reader is shut down.'));
    const idle = this.pool.find((w) => !w.busy);
    if (idle) {
      idle.busy = true;
      return Promise.resolve(idle);
    }
    if (this.pool.length < this.size) {
      const fresh: PoolWorker = {
        worker: new Worker(WORKER_FILE, { workerData: this.limits, resourceLimits: { maxOldGenerationSizeMb: this.heapMb } }),
        busy: true,
      };
      fresh.worker.unref();
      this.pool.push(fresh);
      return Promise.resolve(fresh);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(slot: PoolWorker): void {
    if (!this.pool.includes(slot)) {
      // Its thread was discarded: hand a waiter a fresh one.
      const next = this.waiting.shift();
      if (next) void this.acquire().then(next);
      return;
    }
    const next = this.waiting.shift();
    if (next) next(slot);
    else slot.busy = false;
  }

  private discard(slot: PoolWorker): void {
    const at = this.pool.indexOf(slot);
    if (at >= 0) this.pool.splice(at, 1);
    void slot.worker.terminate();
  }
}

/**
 * The bytes to move to a reader thread: the buffer's own memory when it owns all of it (a file read or decoded for
 * this call), so the event loop's thread keeps no copy of a large file waiting for a collection; a copy otherwise (a
 * slice of a shared pool). The caller hands `data` over: it may be detached (empty) afterwards.
 */
function movable(data: Buffer): Uint8Array {
  const buffer = data.buffer;
  if (buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength) return new Uint8Array(buffer);
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return copy;
}
