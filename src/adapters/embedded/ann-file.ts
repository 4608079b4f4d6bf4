import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';

/**
 * The ANN index on disk: usearch's own graph file at `path`, and a sidecar at `${path}.meta` that says what the graph
 * is (format version and fingerprint), which file it describes (byte size and CRC-32, so a torn or corrupt graph is
 * never handed to native code) and which rows it holds (row id and CRC-32 of the normalised float32 vector of each,
 * so rows that changed after the save, e.g. a row id SQLite reused for a new chunk, are found at start-up).
 *
 * Sidecar layout: the magic `KBQLANN\n`, a uint32 LE header length, the JSON {@link AnnFileMeta}, zero padding to a
 * multiple of 8, then `count` float64 row ids (ascending) and `count` uint32 CRCs, all little-endian.
 */
export const ANN_FORMAT_VERSION = 1;
const MAGIC = Buffer.from('KBQLANN\n', 'latin1');
const READ_CHUNK_BYTES = 16 << 20;

/** What must match for a saved graph to be used. */
export interface AnnFingerprint {
  /** The embedder that produced the vectors (its name changes whenever its vectors do). */
  embedder: string;
  dimensions: number;
  metric: 'cos';
  quantization: AnnQuantization;
  connectivity: number;
  expansionAdd: number;
}

export type AnnQuantization = 'f16' | 'i8';

export interface AnnFileMeta {
  format: number;
  fingerprint: AnnFingerprint;
  /** Rows in the graph. */
  count: number;
  /** The highest row id in the graph (-1 when empty). */
  maxRowId: number;
  dataBytes: number;
  dataCrc32: number;
  rowsCrc32: number;
  /**
   * The caller's version of the source data the graph reflects exactly (a store's collection version), when known:
   * at start-up, the same version means the same rows, and the per-row check is skipped.
   */
  sourceVersion: number | null;
  savedAt: string;
}

/** The rows of a saved graph, ascending by row id. */
export interface AnnFileRows {
  rowIds: Float64Array;
  crcs: Uint32Array;
}

export type AnnFileCheck =
  { ok: true; meta: AnnFileMeta; rows: AnnFileRows } | { ok: false; reason: 'missing' | 'corrupt' | 'mismatch'; detail: string };

export const sidecarPath = (path: string): string => `${path}.meta`;

/** CRC-32 of a vector's bytes (the identity of a row's content in the sidecar). */
export function vectorCrc(vector: Float32Array): number {
  return crc32(new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength));
}

/** CRC-32 of a whole file, read in chunks. */
export function fileCrc(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let crc = 0;
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) crc = crc32(chunk.subarray(0, n), crc);
    return crc;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and checks the sidecar and the graph file it describes. Never throws: a missing file, a failed check or a
 * fingerprint other than `expected` is reported as a reason.
 */
export function checkAnnFile(path: string, expected: AnnFingerprint): AnnFileCheck {
  const metaPath = sidecarPath(path);
  if (!existsSync(path) || !existsSync(metaPath))
    return { ok: false, reason: 'missing', detail: `no ${existsSync(path) ? metaPath : path}` };
  let meta: AnnFileMeta;
  let rows: AnnFileRows;
  try {
    const bytes = readFileSync(metaPath);
    if (bytes.length < 12 || !bytes.subarray(0, 8).equals(MAGIC))
      return { ok: false, reason: 'corrupt', detail: 'sidecar has no kbql ANN header' };
    const headerLength = bytes.readUInt32LE(8);
    const rowsAt = align8(12 + headerLength);
    if (rowsAt > bytes.length) return { ok: false, reason: 'corrupt', detail: 'sidecar is truncated' };
    meta = JSON.parse(bytes.subarray(12, 12 + headerLength).toString('utf8')) as AnnFileMeta;
    if (meta.format !== ANN_FORMAT_VERSION)
      return { ok: false, reason: 'mismatch', detail: `format ${meta.format}, expected ${ANN_FORMAT_VERSION}` };
    const differs = fingerprintDifference(meta.fingerprint, expected);
    if (differs) return { ok: false, reason: 'mismatch', detail: differs };
    const count = meta.count;
    if (!Number.isInteger(count) || count < 0 || bytes.length !== rowsAt + count * 12) {
      return { ok: false, reason: 'corrupt', detail: `sidecar holds ${bytes.length - rowsAt} row bytes for ${count} rows` };
    }
    const region = bytes.subarray(rowsAt);
    if (crc32(region) !== meta.rowsCrc32) return { ok: false, reason: 'corrupt', detail: 'sidecar row list fails its checksum' };
    // Copies: the Buffer may sit at an unaligned offset of a shared pool.
    const copy = new Uint8Array(region);
    rows = { rowIds: new Float64Array(copy.buffer, 0, count), crcs: new Uint32Array(copy.buffer, count * 8, count) };
  } catch (error) {
    return { ok: false, reason: 'corrupt', detail: `sidecar unreadable: ${(error as Error).message}` };
  }
  try {
    const size = statSync(path).size;
    if (size !== meta.dataBytes)
      return { ok: false, reason: 'corrupt', detail: `graph file has ${size} bytes, the sidecar says ${meta.dataBytes}` };
    if (fileCrc(path) !== meta.dataCrc32) return { ok: false, reason: 'corrupt', detail: 'graph file fails its checksum' };
  } catch (error) {
    return { ok: false, reason: 'corrupt', detail: `graph file unreadable: ${(error as Error).message}` };
  }
  return { ok: true, meta, rows };
}

/**
 * Commits a graph that `writeGraph` writes to the temporary path it is given: graph first (written, fsynced,
 * renamed over `path`), then the sidecar (the same way). A crash between the two renames leaves a sidecar whose size
 * and checksum do not match the graph: the pair is then refused at start-up, never misread.
 */
export function writeAnnFile(
  path: string,
  fingerprint: AnnFingerprint,
  rows: AnnFileRows,
  sourceVersion: number | null,
  writeGraph: (tmpPath: string) => void,
): AnnFileMeta {
  const tmp = `${path}.tmp`;
  writeGraph(tmp);
  fsyncFile(tmp);
  const dataBytes = statSync(tmp).size;
  const dataCrc32 = fileCrc(tmp);
  renameSync(tmp, path);

  const region = new Uint8Array(rows.rowIds.length * 12);
  region.set(new Uint8Array(rows.rowIds.buffer, rows.rowIds.byteOffset, rows.rowIds.byteLength), 0);
  region.set(new Uint8Array(rows.crcs.buffer, rows.crcs.byteOffset, rows.crcs.byteLength), rows.rowIds.byteLength);
  const count = rows.rowIds.length;
  const meta: AnnFileMeta = {
    format: ANN_FORMAT_VERSION,
    fingerprint,
    count,
    maxRowId: count > 0 ? rows.rowIds[count - 1]! : -1,
    dataBytes,
    dataCrc32,
    rowsCrc32: crc32(region),
    sourceVersion,
    savedAt: new Date().toISOString(),
  };
  const header = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.alloc(align8(12 + header.length));
  MAGIC.copy(head, 0);
  head.writeUInt32LE(header.length, 8);
  header.copy(head, 12);
  const metaTmp = `${sidecarPath(path)}.tmp`;
  const fd = openSync(metaTmp, 'w');
  try {
    writeAll(fd, head);
    writeAll(fd, region);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(metaTmp, sidecarPath(path));
  fsyncFile(dirname(path));
  return meta;
}

/** Removes the graph and its sidecar (and temporary files a crash may have left). */
export function removeAnnFile(path: string): void {
  for (const p of [path, sidecarPath(path), `${path}.tmp`, `${sidecarPath(path)}.tmp`]) {
    try {
      unlinkSync(p);
    } catch {
      // Not there.
    }
  }
}

function fingerprintDifference(actual: AnnFingerprint, expected: AnnFingerprint): string | null {
  for (const key of Object.keys(expected) as (keyof AnnFingerprint)[]) {
    if (actual?.[key] !== expected[key]) return `${key} is ${String(actual?.[key])}, expected ${String(expected[key])}`;
  }
  return null;
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
}

const align8 = (n: number): number => (n + 7) & ~7;
