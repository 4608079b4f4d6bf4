/**
 * Files for the ingestion-job tests, built by hand so nothing binary is committed: a minimal valid PDF (one page,
 * Helvetica text), the same with a Standard-security /Encrypt dictionary (a user password is required), a minimal
 * DOCX (a ZIP written with node:zlib), and broken variants. Plus small HTTP/GraphQL helpers.
 */
import { crc32, deflateRawSync } from 'node:zlib';
import { HashEmbedder } from '../../src/adapters/embedders/hash.embedder';
import type { Embedder } from '../../src/ports/embedder.port';
import { graphqlRequest } from './http';

/** A one-page PDF whose text is `lines` (one line each); `encrypt` adds an /Encrypt dictionary that needs a password. */
export function minimalPdf(lines: readonly string[], options: { encrypt?: boolean; title?: string } = {}): Buffer {
  const escape = (text: string) => text.replace(/[\\()]/g, (c) => `\\${c}`);
  const content = `BT /F1 12 Tf 72 720 Td 14 TL ${lines.map((l) => `(${escape(l)}) Tj T*`).join(' ')} ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${Buffer.byteLength(content, 'latin1')} >>\nstream\n${content}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    `<< /Title (${escape(options.title ?? 'Untitled')}) >>`,
  ];
  if (options.encrypt) {
    const hex32 = (seed: number) =>
      Array.from({ length: 32 }, (_, i) => ((seed * 31 + i * 17) & 0xff).toString(16).padStart(2, '0')).join('');
    objects.push(`<< /Filter /Standard /V 1 /R 2 /O <${hex32(3)}> /U <${hex32(7)}> /P -44 >>`);
  }
  let body = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    offsets.push(Buffer.byteLength(body, 'latin1'));
    body += `${i + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = Buffer.byteLength(body, 'latin1');
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) body += `${String(offset).padStart(10, '0')} 00000 n \n`;
  const encrypt = options.encrypt
    ? ` /Encrypt ${objects.length} 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>]`
    : '';
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Info 6 0 R${encrypt} >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

/** Starts like a PDF, then garbage: no objects, no xref. */
export function corruptPdf(): Buffer {
  return Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 73 + 11) & 0xff))]);
}

/** A ZIP archive (deflated entries) of `files`. */
export function zip(files: Record<string, string>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text, 'utf8');
    const compressed = deflateRawSync(data);
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(0, 10);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, nameBytes, compressed);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(0, 12);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + compressed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** A minimal Word document with one paragraph per entry of `paragraphs`. */
export function minimalDocx(paragraphs: readonly string[]): Buffer {
  const xmlEscape = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return zip({
    '[Content_Types].xml':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>' +
      '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
    '_rels/.rels':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
      '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
    'word/document.xml':
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>' +
      paragraphs.map((p) => `<w:p><w:r><w:t>${xmlEscape(p)}</w:t></w:r></w:p>`).join('') +
      '</w:body></w:document>',
  });
}

/** A ZIP header naming word/document.xml, then truncated garbage: a DOCX no reader can open. */
export function corruptDocx(): Buffer {
  const good = minimalDocx(['This document will be cut short.']);
  return Buffer.concat([good.subarray(0, 60), Buffer.from('word/document.xml'), Buffer.alloc(40, 0x5a)]);
}

/** The first bytes of a PNG image (signature and IHDR), enough to be recognised. */
export function pngBytes(): Buffer {
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52]),
    Buffer.alloc(64, 7),
  ]);
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** POST /v1/uploads; resolves with the status and JSON body. */
export async function upload(
  baseUrl: string,
  filename: string,
  data: Buffer,
  options: { mediaType?: string; token?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}/v1/uploads`, {
    method: 'POST',
    headers: {
      'x-kbql-filename': encodeURIComponent(filename),
      'content-type': options.mediaType ?? 'application/octet-stream',
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body: new Uint8Array(data),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** POST /graphql ({@link graphqlRequest}), bounded at 15 s; resolves with the parsed body. */
export async function gql<T = Record<string, unknown>>(
  baseUrl: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<{ data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] }> {
  return (await graphqlRequest<never>(baseUrl, query, variables, { token, timeoutMs: 15_000 })).body;
}

const WORDS =
  'harbor quartz meadow signal lantern copper orbit thistle canyon ember willow prism glacier falcon mosaic tundra beacon'.split(' ');

/** Document `i` of a generated set: a few sentences, deterministic. */
export function sampleDocument(i: number, version = 1): { id: string; title: string; content: string } {
  const words = (n: number, seed: number) => Array.from({ length: n }, (_, k) => WORDS[(seed * 7 + k * 3 + i) % WORDS.length]).join(' ');
  const sentences = Array.from(
    { length: 3 + (i % 4) },
    (_, s) => `Sentence ${s} of note ${i} v${version}: ${words(8 + ((i + s) % 6), s)}.`,
  );
  return { id: `note-${String(i).padStart(4, '0')}`, title: `Note ${i}`, content: sentences.join(' ') };
}

/**
 * An embedder (the offline one, 256 dimensions) whose calls `hold` picks wait until `release()`: `held` resolves when
 * the first one starts waiting. `hold` sees the texts and the call's number (1-based).
 */
export function gatedEmbedder(hold: (texts: readonly string[], call: number) => boolean): {
  embedder: Embedder;
  held: Promise<void>;
  release(): void;
} {
  const inner = new HashEmbedder({ dimensions: 256 });
  let calls = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let onHeld!: () => void;
  const held = new Promise<void>((resolve) => (onHeld = resolve));
  return {
    embedder: {
      info: inner.info,
      maxBatchSize: inner.maxBatchSize,
      async embed(texts, signal) {
        if (hold(texts, ++calls)) {
          onHeld();
          await gate;
        }
        return inner.embed(texts, signal);
      },
    },
    held,
    release: () => release(),
  };
}
