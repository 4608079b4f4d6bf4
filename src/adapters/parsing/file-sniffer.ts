import { extname } from 'node:path';

/** What a file is, judged from its bytes. */
export type FileKind = 'PDF' | 'DOCX' | 'TEXT' | 'EMPTY' | 'BINARY';

export interface Sniffed {
  kind: FileKind;
  /** For BINARY: what it looks like (`PNG image`, `ZIP archive`, …). */
  description: string;
}

/** What the client said the file is (extension first, then the media type). */
export type DeclaredKind = 'PDF' | 'DOCX' | 'MARKDOWN' | 'HTML' | 'TEXT' | null;

const SIGNATURES: readonly { bytes: readonly number[]; description: string }[] = [
  { bytes: [0x89, 0x50, 0x4e, 0x47], description: 'PNG image' },
  { bytes: [0xff, 0xd8, 0xff], description: 'JPEG image' },
  { bytes: [0x47, 0x49, 0x46, 0x38], description: 'GIF image' },
  { bytes: [0x1f, 0x8b], description: 'gzip archive' },
  { bytes: [0x7f, 0x45, 0x4c, 0x46], description: 'ELF executable' },
  { bytes: [0x4d, 0x5a], description: 'Windows executable' },
  { bytes: [0x52, 0x61, 0x72, 0x21], description: 'RAR archive' },
  { bytes: [0x37, 0x7a, 0xbc, 0xaf], description: '7-Zip archive' },
  { bytes: [0xd0, 0xcf, 0x11, 0xe0], description: 'legacy Office (OLE) document' },
  { bytes: [0x25, 0x21, 0x50, 0x53], description: 'PostScript document' },
  { bytes: [0x00, 0x00, 0x00], description: 'binary data' },
];

const startsWith = (data: Buffer, bytes: readonly number[]): boolean => data.length >= bytes.length && bytes.every((b, i) => data[i] === b);

/**
 * The kind of a file from its content alone (magic bytes, then a UTF-8 check): the extension and media type a client
 * sends are hints, never trusted. `%PDF-` within the first KiB (as PDF readers allow) → PDF; a ZIP holding
 * `word/document.xml` → DOCX; valid UTF-8 without NUL bytes → TEXT; otherwise BINARY.
 */
export function sniffFile(data: Buffer): Sniffed {
  if (isBlank(data)) {
    return { kind: 'EMPTY', description: 'empty file' };
  }
  if (data.subarray(0, 1024).includes('%PDF-')) return { kind: 'PDF', description: 'PDF document' };
  if (startsWith(data, [0x50, 0x4b, 0x03, 0x04]) || startsWith(data, [0x50, 0x4b, 0x05, 0x06])) {
    // The local file headers and the central directory hold the entry names uncompressed.
    if (data.includes('word/document.xml')) return { kind: 'DOCX', description: 'Word document (DOCX)' };
    return { kind: 'BINARY', description: 'ZIP archive' };
  }
  for (const signature of SIGNATURES) if (startsWith(data, signature.bytes)) return { kind: 'BINARY', description: signature.description };
  const head = data.subarray(0, 64 * 1024);
  if (head.includes(0)) return { kind: 'BINARY', description: 'binary data' };
  if (!isUtf8(head, data.length > head.length)) return { kind: 'BINARY', description: 'binary data (not UTF-8 text)' };
  return { kind: 'TEXT', description: 'text' };
}

function isBlank(data: Buffer): boolean {
  for (const byte of data) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return false;
  return true;
}

/** Valid UTF-8; with `truncated`, an incomplete sequence at the very end (cut by the sample) is allowed. */
function isUtf8(data: Buffer, truncated: boolean): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(data);
    return true;
  } catch {
    if (!truncated) return false;
    for (let cut = 1; cut <= 3 && cut < data.length; cut++) {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(data.subarray(0, data.length - cut));
        return true;
      } catch {
        // try a shorter prefix
      }
    }
    return false;
  }
}

const EXTENSIONS: Record<string, Exclude<DeclaredKind, null>> = {
  '.pdf': 'PDF',
  '.docx': 'DOCX',
  '.md': 'MARKDOWN',
  '.markdown': 'MARKDOWN',
  '.mdx': 'MARKDOWN',
  '.html': 'HTML',
  '.htm': 'HTML',
  '.xhtml': 'HTML',
  '.txt': 'TEXT',
  '.text': 'TEXT',
  '.csv': 'TEXT',
  '.log': 'TEXT',
  '.rst': 'TEXT',
};

const MEDIA_TYPES: Record<string, Exclude<DeclaredKind, null>> = {
  'application/pdf': 'PDF',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'DOCX',
  'text/markdown': 'MARKDOWN',
  'text/x-markdown': 'MARKDOWN',
  'text/html': 'HTML',
  'application/xhtml+xml': 'HTML',
  'text/plain': 'TEXT',
  'text/csv': 'TEXT',
};

/** What the file claims to be: its extension, else its media type; null when neither says. */
export function declaredKind(filename: string, mediaType: string | null): DeclaredKind {
  const byExtension = EXTENSIONS[extname(filename).toLowerCase()];
  if (byExtension) return byExtension;
  const type = mediaType?.split(';')[0]?.trim().toLowerCase();
  return (type && MEDIA_TYPES[type]) || null;
}

export const DECLARED_NAMES: Record<Exclude<DeclaredKind, null>, string> = {
  PDF: 'a PDF',
  DOCX: 'a Word document',
  MARKDOWN: 'Markdown',
  HTML: 'HTML',
  TEXT: 'plain text',
};
