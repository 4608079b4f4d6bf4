import { createInflateRaw } from 'node:zlib';

/** Bounds of {@link checkZip}. */
export interface ZipLimits {
  /**
   * Most bytes all entries together may inflate to, declared (central directory) and actual (counted while
   * inflating), in bytes.
   * @default 67108864 (64 MiB)
   */
  maxInflatedBytes: number;
  /**
   * Most entries in the archive.
   * @default 2000
   */
  maxEntries: number;
}

export const DEFAULT_ZIP_LIMITS: Readonly<ZipLimits> = Object.freeze({ maxInflatedBytes: 64 * 1024 * 1024, maxEntries: 2000 });

/** Why {@link checkZip} refused an archive. */
export class ZipRefused extends Error {
  override readonly name = 'ZipRefused';
  constructor(
    readonly reasonCode: 'ARCHIVE_TOO_LARGE' | 'CORRUPT_FILE',
    message: string,
  ) {
    super(message);
  }
}

/** What a checked archive holds. */
export interface ZipSummary {
  entries: number;
  /** Sum of the entries' actual inflated sizes, in bytes. */
  inflatedBytes: number;
}

interface Entry {
  name: string;
  method: number;
  compressedSize: number;
  declaredSize: number;
  localOffset: number;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;

/**
 * Proves a ZIP archive small before a reader that inflates it into memory (mammoth via JSZip) sees it: reads the
 * central directory itself, refuses too many entries or declared sizes over the budget, then inflates every entry
 * with streaming zlib, counting and discarding the output, and stops at the first entry that inflates past its
 * declared size (so the actual total is within the budget too, lying headers included). Memory stays at one zlib
 * window and one output chunk whatever the archive claims. Refusals: ARCHIVE_TOO_LARGE (sizes, entry count, ZIP64)
 * or CORRUPT_FILE (unreadable structure).
 */
export async function checkZip(data: Uint8Array, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Promise<ZipSummary> {
  const entries = readCentralDirectory(Buffer.from(data.buffer, data.byteOffset, data.byteLength), limits);
  const declared = entries.reduce((sum, e) => sum + e.declaredSize, 0);
  if (declared > limits.maxInflatedBytes) {
    throw new ZipRefused('ARCHIVE_TOO_LARGE', `its entries declare ${declared} bytes inflated; the limit is ${limits.maxInflatedBytes}.`);
  }
  let inflated = 0;
  for (const entry of entries) inflated += await inflatedSize(data, entry);
  return { entries: entries.length, inflatedBytes: inflated };
}

function readCentralDirectory(buf: Buffer, limits: ZipLimits): Entry[] {
  const corrupt = (why: string) => new ZipRefused('CORRUPT_FILE', `not a readable ZIP archive (${why}).`);
  let eocd = -1;
  for (let at = buf.length - 22; at >= Math.max(0, buf.length - 22 - MAX_COMMENT); at--) {
    if (buf.readUInt32LE(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw corrupt('no end of central directory');
  const declaredEntries = buf.readUInt16LE(eocd + 10);
  const size = buf.readUInt32LE(eocd + 12);
  const offset = buf.readUInt32LE(eocd + 16);
  if (declaredEntries === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    throw new ZipRefused('ARCHIVE_TOO_LARGE', 'it is a ZIP64 archive (over 65,535 entries or 4 GiB); kbql does not read those.');
  }
  if (declaredEntries > limits.maxEntries) {
    throw new ZipRefused('ARCHIVE_TOO_LARGE', `it has ${declaredEntries} entries; the limit is ${limits.maxEntries}.`);
  }
  // Bytes prepended to the archive shift every offset; readers (JSZip too) locate the directory from its end.
  let start = offset;
  if (start + 4 > buf.length || buf.readUInt32LE(start) !== CENTRAL) start = eocd - size;
  if (start < 0 || (declaredEntries > 0 && (start + 4 > buf.length || buf.readUInt32LE(start) !== CENTRAL))) {
    throw corrupt('central directory not found');
  }
  const shift = start - offset;
  const entries: Entry[] = [];
  for (let p = start; p + 4 <= eocd && buf.readUInt32LE(p) === CENTRAL;) {
    if (p + 46 > buf.length) throw corrupt('truncated central directory');
    if (entries.length >= limits.maxEntries) {
      throw new ZipRefused('ARCHIVE_TOO_LARGE', `it has more than ${limits.maxEntries} entries.`);
    }
    const nameLength = buf.readUInt16LE(p + 28);
    const entry: Entry = {
      method: buf.readUInt16LE(p + 10),
      compressedSize: buf.readUInt32LE(p + 20),
      declaredSize: buf.readUInt32LE(p + 24),
      name: buf.toString('utf8', p + 46, Math.min(buf.length, p + 46 + nameLength)),
      localOffset: buf.readUInt32LE(p + 42) + shift,
    };
    if (entry.compressedSize === 0xffffffff || entry.declaredSize === 0xffffffff || entry.localOffset - shift === 0xffffffff) {
      throw new ZipRefused('ARCHIVE_TOO_LARGE', `entry "${entry.name}" is a ZIP64 entry (4 GiB or more); kbql does not read those.`);
    }
    entries.push(entry);
    p += 46 + nameLength + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
  }
  if (entries.length === 0) throw corrupt('no entries');
  return entries;
}

/** The entry's actual inflated size, counted; refused as soon as it passes its declared size. */
async function inflatedSize(data: Uint8Array, entry: Entry): Promise<number> {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const at = entry.localOffset;
  if (at < 0 || at + 30 > buf.length || buf.readUInt32LE(at) !== LOCAL) {
    throw new ZipRefused('CORRUPT_FILE', `not a readable ZIP archive (entry "${entry.name}" has no local header).`);
  }
  const begin = at + 30 + buf.readUInt16LE(at + 26) + buf.readUInt16LE(at + 28);
  const end = begin + entry.compressedSize;
  if (end > buf.length) throw new ZipRefused('CORRUPT_FILE', `not a readable ZIP archive (entry "${entry.name}" is truncated).`);
  const compressed = buf.subarray(begin, end);
  if (entry.method === 0) {
    if (entry.compressedSize > entry.declaredSize) throw sizeLies(entry);
    return entry.compressedSize;
  }
  if (entry.method !== 8) {
    throw new ZipRefused(
      'CORRUPT_FILE',
      `entry "${entry.name}" uses compression method ${entry.method}; only stored and deflated entries are read.`,
    );
  }
  return new Promise<number>((resolve, reject) => {
    let count = 0;
    let settled = false;
    const inflater = createInflateRaw({ chunkSize: 64 * 1024 });
    const finish = (error: Error | null) => {
      if (settled) return;
      settled = true;
      inflater.removeAllListeners('data');
      inflater.destroy();
      if (error) reject(error);
      else resolve(count);
    };
    inflater.on('data', (chunk: Buffer) => {
      count += chunk.length;
      // Every entry within its declared size and their sum within the budget bound the actual total too.
      if (count > entry.declaredSize) finish(sizeLies(entry));
    });
    inflater.on('error', (error) => finish(new ZipRefused('CORRUPT_FILE', `entry "${entry.name}" does not inflate (${error.message}).`)));
    inflater.on('end', () => finish(null));
    inflater.end(compressed);
  });
}

const sizeLies = (entry: Entry) =>
  new ZipRefused(
    'ARCHIVE_TOO_LARGE',
    `entry "${entry.name}" inflates to more than the ${entry.declaredSize} bytes its header declares (a zip bomb's trick); kbql reads no archive whose sizes lie.`,
  );
