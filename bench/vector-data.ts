import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HashEmbedder } from '../src/adapters/embedders/hash.embedder';
import { loadScifact } from './shared-data';

/**
 * The vector benches' data: SciFact abstracts (title + text) cut into overlapping word windows, embedded once and
 * cached in the OS temp directory (keyed by embedder name, a probe of its output, label and count).
 */
export const WINDOW_WORDS = 20;

/**
 * Every `WINDOW_WORDS`-word window of every abstract, starting every `strideWords` words (the last window of an
 * abstract ends at its last word). Stride 10 gives 108,369 passages; stride 1 gives 1,013,955.
 */
export function passages(strideWords: number): string[] {
  const out: string[] = [];
  for (const doc of loadScifact().corpus) {
    const words = `${doc.title}. ${doc.text}`.split(/\s+/).filter(Boolean);
    for (let i = 0; i < words.length; i += strideWords) {
      out.push(words.slice(i, i + WINDOW_WORDS).join(' '));
      if (i + WINDOW_WORDS >= words.length) break;
    }
  }
  return out;
}

/** The directory the vector benches cache their vectors and built indexes in. */
export function benchCacheDir(): string {
  return os.tmpdir();
}

/** The vectors of `texts` (cached on disk), as one row-major matrix. */
export async function cachedVectors(embedder: HashEmbedder, texts: readonly string[], label: string): Promise<Float32Array> {
  const file = await cachedVectorsFile(embedder, texts, label);
  return readFloats(file, texts.length * embedder.info.dimensions);
}

/** The file holding the vectors of `texts` (row-major float32), embedded first when it is not cached yet. */
export async function cachedVectorsFile(embedder: HashEmbedder, texts: readonly string[], label: string): Promise<string> {
  const d = embedder.info.dimensions;
  // The embedder's output on a probe text is part of the file name: a retuned embedder that kept its name still
  // gets fresh vectors.
  const [probe] = await embedder.embed(['kbql vector cache probe: vitamin D and bone density']);
  const version = createHash('sha256').update(Buffer.from(probe!.buffer)).digest('hex').slice(0, 12);
  const file = path.join(benchCacheDir(), `kbql-bench-vectors-${embedder.info.name}-${version}-${label}-${texts.length}x${d}.f32`);
  if (existsSync(file) && statSync(file).size === texts.length * d * 4) return file;
  const started = performance.now();
  const out = new Float32Array(texts.length * d);
  for (let i = 0; i < texts.length; i += 2048) {
    const batch = await embedder.embed(texts.slice(i, i + 2048));
    batch.forEach((v, j) => out.set(v, (i + j) * d));
  }
  process.stderr.write(`embedded ${texts.length} ${label} in ${((performance.now() - started) / 1000).toFixed(1)} s (cached in ${file})\n`);
  writeFloats(file, out);
  return file;
}

/** Chunked reads and writes: `readFileSync` refuses files over 2 GiB, and the 1M-vector matrix is 4 GB. */
const IO_CHUNK_BYTES = 64 << 20;

export function readFloats(file: string, length: number): Float32Array {
  const out = new Float32Array(length);
  const bytes = new Uint8Array(out.buffer);
  const fd = openSync(file, 'r');
  try {
    for (let at = 0; at < bytes.byteLength;) {
      const n = readSync(fd, bytes, at, Math.min(IO_CHUNK_BYTES, bytes.byteLength - at), at);
      if (n === 0) throw new Error(`${file} is shorter than expected`);
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

export function writeFloats(file: string, data: Float32Array): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const fd = openSync(file, 'w');
  try {
    for (let at = 0; at < bytes.byteLength;) at += writeSync(fd, bytes, at, Math.min(IO_CHUNK_BYTES, bytes.byteLength - at));
  } finally {
    closeSync(fd);
  }
}
