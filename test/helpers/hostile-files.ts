/**
 * Hostile files for the extraction bounds, generated in the test (nothing binary committed): DOCX zip bombs built
 * from repeated deflate blocks (a GiB of XML never exists in memory, not even here), archives with too many
 * entries, and PDFs with a page tree of any size.
 */
import { constants, crc32, deflateRawSync } from 'node:zlib';

export interface ZipEntrySpec {
  name: string;
  /** Raw deflate data (method 8). */
  compressed: Buffer;
  crc: number;
  /** The uncompressed size the headers declare (honest or not). */
  declaredSize: number;
}

/** A ZIP archive of already-deflated entries, with the sizes each entry declares written as given. */
export function zipOf(entries: readonly ZipEntrySpec[]): Buffer {
  const parts: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(entry.crc >>> 0, 14);
    local.writeUInt32LE(entry.compressed.length, 18);
    local.writeUInt32LE(entry.declaredSize, 22);
    local.writeUInt16LE(name.length, 26);
    parts.push(local, name, entry.compressed);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(entry.crc >>> 0, 16);
    central.writeUInt32LE(entry.compressed.length, 20);
    central.writeUInt32LE(entry.declaredSize, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + entry.compressed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(entries.length, 0xffff), 8);
  end.writeUInt16LE(Math.min(entries.length, 0xffff), 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

/** An honest deflated entry of `text`. */
export function entryOf(name: string, text: string): ZipEntrySpec {
  const data = Buffer.from(text, 'utf8');
  return { name, compressed: deflateRawSync(data), crc: crc32(data), declaredSize: data.length };
}

const CONTENT_TYPES =
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>' +
  '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>';
const RELS =
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
  '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>';
const DOC_HEAD =
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>';
const DOC_TAIL = '</w:t></w:r></w:p></w:body></w:document>';

const MIB = 1024 * 1024;

/**
 * A DOCX whose word/document.xml is one paragraph of `mib` MiB of the letter "a" (valid XML; ~1 KiB of deflate per
 * MiB, so 1,024 MiB makes a ~1 MB file). Each MiB is deflated once with a sync flush (byte-aligned, no back
 * references across it) and the block repeated. `lie`: the headers declare 4 KiB instead of the real size.
 */
export function docxBomb(mib: number, options: { lie?: boolean } = {}): Buffer {
  const block = Buffer.alloc(MIB, 0x61);
  const flush = { finishFlush: constants.Z_SYNC_FLUSH };
  const head = Buffer.from(DOC_HEAD);
  const tail = Buffer.from(DOC_TAIL);
  const repeated = deflateRawSync(block, flush);
  const body = Buffer.concat([deflateRawSync(head, flush), ...Array.from({ length: mib }, () => repeated), deflateRawSync(tail)]);
  let crc = crc32(head);
  for (let i = 0; i < mib; i++) crc = crc32(block, crc);
  crc = crc32(tail, crc);
  const size = head.length + mib * MIB + tail.length;
  return zipOf([
    entryOf('[Content_Types].xml', CONTENT_TYPES),
    entryOf('_rels/.rels', RELS),
    { name: 'word/document.xml', compressed: body, crc, declaredSize: options.lie ? 4096 : size },
  ]);
}

/** A valid small DOCX (one paragraph per entry) plus `padding` empty entries: for the entry-count bound. */
export function docxWithEntries(paragraphs: readonly string[], padding = 0): Buffer {
  const xml =
    DOC_HEAD.replace(/<w:p><w:r><w:t>$/, '') +
    paragraphs.map((p) => `<w:p><w:r><w:t>${p}</w:t></w:r></w:p>`).join('') +
    '</w:body></w:document>';
  return zipOf([
    entryOf('[Content_Types].xml', CONTENT_TYPES),
    entryOf('_rels/.rels', RELS),
    entryOf('word/document.xml', xml),
    ...Array.from({ length: padding }, (_, i) => entryOf(`customXml/item${i}.xml`, '')),
  ]);
}

/**
 * A valid PDF of `pages` pages in a balanced page tree (100 kids per node), every page showing the same `lines`
 * (one shared content stream, so 20,000 pages take ~3 MB).
 */
export function manyPagesPdf(pages: number, lines: readonly string[] = ['Page text.']): Buffer {
  const content = `BT /F1 12 Tf 72 720 Td 14 TL ${lines.map((l) => `(${l.replace(/[\\()]/g, (c) => `\\${c}`)}) Tj T*`).join(' ')} ET`;
  // 1 catalog, 2 root Pages, 3 font, 4 content, then the intermediate nodes, then the pages.
  const objects: string[] = [
    '',
    '',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    `<< /Length ${Buffer.byteLength(content, 'latin1')} >>\nstream\n${content}\nendstream`,
  ];
  const fanout = 100;
  const groups = Math.ceil(pages / fanout);
  const firstGroup = 5;
  const firstPage = firstGroup + groups;
  for (let g = 0; g < groups; g++) {
    const kids = Array.from({ length: Math.min(fanout, pages - g * fanout) }, (_, k) => `${firstPage + g * fanout + k} 0 R`);
    objects.push(`<< /Type /Pages /Parent 2 0 R /Kids [${kids.join(' ')}] /Count ${kids.length} >>`);
  }
  for (let p = 0; p < pages; p++) objects.push(`<< /Type /Page /Parent ${firstGroup + Math.floor(p / fanout)} 0 R /Contents 4 0 R >>`);
  objects[0] = '<< /Type /Catalog /Pages 2 0 R >>';
  objects[1] =
    `<< /Type /Pages /Kids [${Array.from({ length: groups }, (_, g) => `${firstGroup + g} 0 R`).join(' ')}] /Count ${pages}` +
    ' /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> >>';
  const chunks: string[] = ['%PDF-1.4\n%\xe2\xe3\xcf\xd3\n'];
  let length = Buffer.byteLength(chunks[0]!, 'latin1');
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    const text = `${i + 1} 0 obj\n${object}\nendobj\n`;
    offsets.push(length);
    chunks.push(text);
    length += Buffer.byteLength(text, 'latin1');
  });
  chunks.push(`xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`);
  for (const offset of offsets) chunks.push(`${String(offset).padStart(10, '0')} 00000 n \n`);
  chunks.push(`trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`);
  return Buffer.from(chunks.join(''), 'latin1');
}
