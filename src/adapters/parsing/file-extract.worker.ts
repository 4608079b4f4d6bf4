/**
 * Worker thread of {@link FileExtractor}: turns PDF and DOCX bytes into text, away from the event loop, so a slow
 * or hostile file costs one terminable thread, never the server. Limits come in `workerData` ({@link ExtractLimits}).
 * Messages: `{ id, kind: 'PDF' | 'DOCX', data }` in, `{ id, ok: true, text, title }` or
 * `{ id, ok: false, reasonCode, message }` out.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkZip, DEFAULT_ZIP_LIMITS, ZipRefused, type ZipLimits } from './zip-guard';

// False positive: the rule reads an import type's attributes as an object literal of error type; tsc resolves it.
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
type Unpdf = typeof import('unpdf', { with: { 'resolution-mode': 'import' } });
let unpdf: Promise<Unpdf> | null = null;
/** unpdf is an ES module (this package is CommonJS): loaded once with import(). */
const loadUnpdf = (): Promise<Unpdf> => (unpdf ??= import('unpdf'));

/** Bounds of one extraction; the heap limit alone bounds none of the buffers and strings inflaters make. */
export interface ExtractLimits {
  /** Most UTF-8 bytes of text one file may yield (TEXT_TOO_LARGE past it; PDFs stop at the page that crosses it). */
  maxExtractedBytes: number;
  /** Most pages of a PDF, read from the document before any text is (TOO_MANY_PAGES). */
  maxPdfPages: number;
  /** Bounds of a DOCX's ZIP container, checked before mammoth reads it (ARCHIVE_TOO_LARGE). */
  zip: ZipLimits;
}

export const DEFAULT_EXTRACT_LIMITS: Readonly<ExtractLimits> = Object.freeze({
  maxExtractedBytes: 8 * 1024 * 1024,
  maxPdfPages: 2000,
  zip: DEFAULT_ZIP_LIMITS,
});

export interface ExtractRequest {
  id: number;
  kind: 'PDF' | 'DOCX';
  data: Uint8Array;
}

export type ExtractReason = 'ENCRYPTED_FILE' | 'CORRUPT_FILE' | 'ARCHIVE_TOO_LARGE' | 'TEXT_TOO_LARGE' | 'TOO_MANY_PAGES';

export type ExtractResponse =
  { id: number; ok: true; text: string; title: string | null } | { id: number; ok: false; reasonCode: ExtractReason; message: string };

/** A refusal whose reason is known (sizes, pages): reported as is, not classified. */
class Refused extends Error {
  constructor(
    readonly reasonCode: ExtractReason,
    message: string,
  ) {
    super(message);
  }
}

const limits: ExtractLimits = { ...DEFAULT_EXTRACT_LIMITS, ...((workerData as Partial<ExtractLimits> | null) ?? {}) };

const textTooLarge = (kind: string, bytes: number) =>
  new Refused('TEXT_TOO_LARGE', `The ${kind}'s text is larger than ${limits.maxExtractedBytes} bytes (at least ${bytes}); split the file.`);

async function extractPdf(data: Uint8Array): Promise<{ text: string; title: string | null }> {
  const { getDocumentProxy, getMeta } = await loadUnpdf();
  const pdf = await getDocumentProxy(data, { verbosity: 0 });
  try {
    if (pdf.numPages > limits.maxPdfPages) {
      throw new Refused('TOO_MANY_PAGES', `The PDF has ${pdf.numPages} pages; the limit is ${limits.maxPdfPages}. Split it.`);
    }
    // One page at a time (unpdf's extractText reads all at once), so the text cap stops the work early.
    const pages: string[] = [];
    let bytes = 0;
    for (let number = 1; number <= pdf.numPages; number++) {
      const page = await pdf.getPage(number);
      const content = await page.getTextContent();
      const text = content.items.map((item) => ('str' in item ? item.str + (item.hasEOL ? '\n' : '') : '')).join('');
      page.cleanup();
      bytes += Buffer.byteLength(text, 'utf8') + 1;
      if (bytes > limits.maxExtractedBytes) throw textTooLarge('PDF', bytes);
      pages.push(text);
    }
    // The same whitespace normalisation as unpdf's mergePages.
    const text = pages
      .join('\n')
      .replace(/[^\S\n]+/g, ' ')
      .replace(/ ?\n ?/g, '\n')
      .replace(/\n{3,}/g, '\n\n');
    let title: string | null = null;
    try {
      const meta = await getMeta(pdf);
      const raw: unknown = meta.info?.['Title'];
      title = typeof raw === 'string' && raw.trim() ? raw.trim() : null;
    } catch {
      // a PDF without readable metadata still has its text
    }
    return { text, title };
  } finally {
    await pdf.destroy();
  }
}

async function extractDocx(data: Uint8Array): Promise<{ text: string; title: string | null }> {
  try {
    await checkZip(data, limits.zip);
  } catch (error) {
    if (error instanceof ZipRefused && error.reasonCode === 'ARCHIVE_TOO_LARGE') {
      throw new Refused('ARCHIVE_TOO_LARGE', `The DOCX is too large once decompressed: ${error.message}`);
    }
    throw error;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mammoth = require('mammoth') as typeof import('mammoth');
  const result = await mammoth.extractRawText({ buffer: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
  const bytes = Buffer.byteLength(result.value, 'utf8');
  if (bytes > limits.maxExtractedBytes) throw textTooLarge('DOCX', bytes);
  return { text: result.value, title: null };
}

function classify(kind: 'PDF' | 'DOCX', error: unknown): ExtractResponse & { ok: false } {
  if (error instanceof Refused) return { id: 0, ok: false, reasonCode: error.reasonCode, message: error.message };
  const name = (error as { name?: string } | null)?.name ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'PasswordException' || /password|encrypt/i.test(message)) {
    return {
      id: 0,
      ok: false,
      reasonCode: 'ENCRYPTED_FILE',
      message: `The ${kind} is encrypted (password-protected); kbql cannot read it.`,
    };
  }
  return {
    id: 0,
    ok: false,
    reasonCode: 'CORRUPT_FILE',
    message: `The ${kind} is damaged or not a valid ${kind} (${message.slice(0, 200)}).`,
  };
}

parentPort?.on('message', (request: ExtractRequest) => {
  const work = request.kind === 'PDF' ? extractPdf(request.data) : extractDocx(request.data);
  work.then(
    (result) => parentPort!.postMessage({ id: request.id, ok: true, ...result } satisfies ExtractResponse),
    (error: unknown) => parentPort!.postMessage({ ...classify(request.kind, error), id: request.id } satisfies ExtractResponse),
  );
});
