/**
 * Worker thread of {@link FileExtractor}: turns PDF and DOCX bytes into text, away from the event loop, so a slow
 * or hostile file costs one terminable thread, never the server. Messages: `{ id, kind: 'PDF' | 'DOCX', data }` in,
 * `{ id, ok: true, text, title }` or `{ id, ok: false, reasonCode, message }` out.
 */
import { parentPort } from 'node:worker_threads';

type Unpdf = typeof import('unpdf', { with: { 'resolution-mode': 'import' } });
let unpdf: Promise<Unpdf> | null = null;
/** unpdf is an ES module (this package is CommonJS): loaded once with import(). */
const loadUnpdf = (): Promise<Unpdf> => (unpdf ??= import('unpdf'));

export interface ExtractRequest {
  id: number;
  kind: 'PDF' | 'DOCX';
  data: Uint8Array;
}

export type ExtractResponse =
  | { id: number; ok: true; text: string; title: string | null }
  | { id: number; ok: false; reasonCode: 'ENCRYPTED_FILE' | 'CORRUPT_FILE'; message: string };

async function extractPdf(data: Uint8Array): Promise<{ text: string; title: string | null }> {
  const { getDocumentProxy, extractText, getMeta } = await loadUnpdf();
  const pdf = await getDocumentProxy(data, { verbosity: 0 });
  try {
    const { text } = await extractText(pdf, { mergePages: true });
    let title: string | null = null;
    try {
      const meta = await getMeta(pdf);
      const raw = meta.info?.['Title'];
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
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mammoth = require('mammoth') as typeof import('mammoth');
  const result = await mammoth.extractRawText({ buffer: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
  return { text: result.value, title: null };
}

function classify(kind: 'PDF' | 'DOCX', error: unknown): ExtractResponse & { ok: false } {
  const name = (error as { name?: string } | null)?.name ?? '';
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'PasswordException' || /password|encrypt/i.test(message)) {
    return { id: 0, ok: false, reasonCode: 'ENCRYPTED_FILE', message: `The ${kind} is encrypted (password-protected); kbql cannot read it.` };
  }
  return { id: 0, ok: false, reasonCode: 'CORRUPT_FILE', message: `The ${kind} is damaged or not a valid ${kind} (${message.slice(0, 200)}).` };
}

parentPort?.on('message', (request: ExtractRequest) => {
  const work = request.kind === 'PDF' ? extractPdf(request.data) : extractDocx(request.data);
  work.then(
    (result) => parentPort!.postMessage({ id: request.id, ok: true, ...result } satisfies ExtractResponse),
    (error: unknown) => parentPort!.postMessage({ ...classify(request.kind, error), id: request.id } satisfies ExtractResponse),
  );
});
