import { sha256Hex } from '../../ids';
import { mapCooperatively } from '../shared/cooperative';
import type { CacheStore } from '../../ports/cache.port';
import { embedderFingerprint, type Embedder } from '../../ports/embedder.port';
import type { EmbedderInfo } from '../../ports/knowledge-store.port';

/** Texts in, vectors out: what the query and ingestion services need (the batcher implements it). */
export interface TextVectors {
  embed(text: string): Promise<Float32Array>;
  embedMany(texts: readonly string[]): Promise<Float32Array[]>;
}

export interface CachedEmbedderOptions {
  /** The `embedding` store of the cache port. */
  store: CacheStore;
  /** The embedder behind `inner`: its name and dimensions are the fingerprint every key starts with. */
  embedder: EmbedderInfo;
  /** How long a vector is kept, in seconds; 0 turns the cache off. */
  ttlSeconds: number;
  /**
   * A version of the embedder's output added to every key, for embedders whose vectors may change without a new
   * name (see {@link outputFingerprint}); none: the name and dimensions alone.
   */
  version?: string;
  /**
   * `embedMany` batches of more texts than this skip the cache (neither read nor written); none: every batch uses
   * it. `embed` (one text, a query) always uses it, so 0 caches queries only. For an
   * embedder that runs in this process: recomputing a document's chunks on a worker thread costs less than hashing,
   * encoding and storing thousands of vectors on the event loop, and they would push the queries' entries out.
   * @default undefined
   */
  bypassBatchesOver?: number;
}

/**
 * A short hash of the embedder's vector for a fixed probe text: changes whenever the embedder's output changes, even
 * if its name does not (worth it for a local embedder, where the probe is free; a remote one would pay a call).
 */
export async function outputFingerprint(embedder: Embedder): Promise<string> {
  const [vector] = await embedder.embed(['kbql embedding cache probe: 25 days of paid vacation']);
  return sha256Hex(Buffer.from(vector!.buffer, vector!.byteOffset, vector!.byteLength).toString('base64')).slice(0, 12);
}

/**
 * Embedding cache in front of the batcher: key `<embedder fingerprint>:sha256(text)`, value the float32 vector
 * in base64 (exact: a cached vector is bit-identical to a fresh one). Only the texts the cache does not have go on to
 * `inner` (the shared batching window), so a repeated query or an unchanged chunk of a re-ingested document costs no
 * provider call. The embedder's name is its fingerprint: an embedder whose vectors change must change its name
 * (collections already refuse a mismatched one), which also retires its cache entries.
 */
/** Keys read or written per cache call: a large document's thousands of chunks go in several, a turn apart. */
const CACHE_SLICE = 128;

export class CachedEmbedder implements TextVectors {
  readonly #inner: TextVectors;
  readonly #store: CacheStore;
  readonly #prefix: string;
  readonly #dimensions: number;
  readonly #ttlSeconds: number;
  readonly #bypassOver: number;

  constructor(inner: TextVectors, options: CachedEmbedderOptions) {
    if (!(options.ttlSeconds >= 0)) throw new RangeError(`ttlSeconds must be >= 0, got ${options.ttlSeconds}`);
    this.#inner = inner;
    this.#store = options.store;
    this.#prefix = `${embedderFingerprint(options.embedder)}:${options.version ? `${options.version}:` : ''}`;
    this.#dimensions = options.embedder.dimensions;
    this.#ttlSeconds = options.ttlSeconds;
    this.#bypassOver = options.bypassBatchesOver ?? Infinity;
  }

  /** One text (a query): always through the cache, whatever `bypassBatchesOver` says. */
  async embed(text: string): Promise<Float32Array> {
    if (this.#ttlSeconds === 0) return this.#inner.embed(text);
    return (await this.#cached([text]))[0]!;
  }

  /** Vectors in the order of `texts`; rejects with the provider's error when one is needed and fails. */
  async embedMany(texts: readonly string[]): Promise<Float32Array[]> {
    if (this.#ttlSeconds === 0 || texts.length === 0 || texts.length > this.#bypassOver) return this.#inner.embedMany(texts);
    return this.#cached(texts);
  }

  async #cached(texts: readonly string[]): Promise<Float32Array[]> {
    // Thousands of chunks of one large document: hashed and encoded with turns of the event loop in between, and
    // told apart by their hashes, never by the texts themselves (hashing kilobyte strings in a Map stalls).
    const allKeys = await mapCooperatively(texts, (text) => this.#prefix + sha256Hex(text));
    const slotOf = new Map<string, number>();
    const keys: string[] = [];
    const firstText: string[] = [];
    const slots = allKeys.map((key, i) => {
      let slot = slotOf.get(key);
      if (slot === undefined) {
        slot = keys.push(key) - 1;
        firstText.push(texts[i]!);
        slotOf.set(key, slot);
      }
      return slot;
    });
    const stored: (string | undefined)[] = [];
    for (let i = 0; i < keys.length; i += CACHE_SLICE) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      stored.push(...(await this.#store.getMany(keys.slice(i, i + CACHE_SLICE))));
    }
    const vectors = new Array<Float32Array | undefined>(keys.length);
    const missing: number[] = [];
    await mapCooperatively(stored, (value, slot) => {
      const vector = value === undefined ? null : this.#decode(value);
      if (vector) vectors[slot] = vector;
      else missing.push(slot);
    });
    if (missing.length > 0) {
      const fresh = await this.#inner.embedMany(missing.map((slot) => firstText[slot]!));
      const entries = await mapCooperatively(missing, (slot, j) => {
        vectors[slot] = fresh[j]!;
        return { key: keys[slot]!, value: encode(fresh[j]!) };
      });
      // Not awaited: a slow or absent cache must not hold up the caller. In slices, each in its own turn.
      void (async () => {
        for (let i = 0; i < entries.length; i += CACHE_SLICE) {
          if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
          await this.#store.setMany(entries.slice(i, i + CACHE_SLICE), this.#ttlSeconds);
        }
      })().catch(() => undefined);
    }
    // Each caller gets its own copy of a vector that appears more than once (callers may keep or change it).
    const handedOut = new Uint8Array(keys.length);
    return slots.map((slot) => {
      const vector = vectors[slot]!;
      if (handedOut[slot]) return vector.slice();
      handedOut[slot] = 1;
      return vector;
    });
  }

  #decode(value: string): Float32Array | null {
    const bytes = Buffer.from(value, 'base64');
    if (bytes.byteLength !== this.#dimensions * 4) return null;
    // A copy into a fresh, aligned buffer (a Buffer may be a view into a shared pool at any offset).
    const vector = new Float32Array(this.#dimensions);
    new Uint8Array(vector.buffer).set(bytes);
    return vector;
  }
}

function encode(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}
