import { sha256Hex } from '../../ids';
import type { CacheStore } from '../../ports/cache.port';
import { embedderFingerprint } from '../../ports/embedder.port';
import type { AnswerSource, Citation } from '../../ports/answer-synthesizer.port';
import type { ChunkRecord, CollectionRecord, DocumentRecord, SearchHit, SearchMode } from '../../ports/knowledge-store.port';

/**
 * The access scope of a caller who has not been identified: today every caller (there is no authentication yet).
 * The scope comes from the request context (`KbqlContext.scope`); whatever decides it later (the security layer)
 * must give callers who may see different documents different scopes — results are never shared across scopes.
 */
export const PUBLIC_SCOPE = 'public';

/** What a `search` computes, minus what is re-read on every request (the collection) or timed anew. */
export interface CachedSearch {
  mode: SearchMode;
  alpha: number;
  hits: SearchHit[];
}

/** What an `ask` computes, minus the collection and timings. */
export interface CachedAnswer {
  answer: string | null;
  abstained: boolean;
  abstentionReason: string | null;
  citations: (Citation & { source: AnswerSource })[];
  sources: AnswerSource[];
  unsupportedMarkers: number[];
  synthesizer: string;
}

export interface QueryResultCacheOptions {
  /** The `result` store of the cache port. */
  store: CacheStore;
  /** How long a result is kept, in seconds; 0 turns the cache off (in-flight sharing stays on). */
  ttlSeconds: number;
  /**
   * Results also kept decoded in this process, most recently used first, so a hot query skips the round trip to the
   * store (Redis) and the decoding. Safe with many replicas: a key holds the collection version, which every request
   * reads from the knowledge store. 0 = none.
   * @default 256
   */
  localEntries?: number;
  /** Called for each request served from those local copies (the store reports its own hits). */
  onLocalHit?: () => void;
}

/**
 * The right to compute a missing entry: whoever acquires it must call `settle` (stores the value and hands it to the
 * identical requests waiting for it) or `fail` (they get the error), exactly once.
 */
export interface Claim<T> {
  settle(value: T): void;
  fail(error: unknown): void;
}

/** What {@link QueryResultCache.acquireAnswer} finds: a value (cached, or computed by an identical request in flight), or a claim. */
export type Acquired<T> = { hit: T; claim?: undefined } | { hit?: undefined; claim: Claim<T> };

/**
 * Search and ask results, keyed by what decides them:
 * `<collection id>:<collection version>:<embedder fingerprint hash>:sha256(operation, scope, normalised arguments)`.
 *
 * - The collection is re-read on every request (that read is also what turns a deleted collection into NOT_FOUND),
 *   and every write to it or its documents — ingest, re-ingest, delete, metadata update, rename — bumps its version,
 *   so an entry written before a write is never looked up after it: nothing deleted, replaced or re-labelled is served.
 *   Stale entries are not deleted; they expire (`ttlSeconds`).
 * - The scope (see {@link PUBLIC_SCOPE}) is part of the key: two callers with different access never share an entry.
 * - Normalised arguments: defaults resolved, the query trimmed, the filter compiled (so equivalent spellings share).
 *
 * Identical requests that miss at the same time share one computation (in this process), so a burst of the same
 * `ask` calls the providers once. Values are JSON; dates travel as epoch milliseconds.
 */
export class QueryResultCache {
  readonly #store: CacheStore;
  readonly #ttlSeconds: number;
  readonly #inFlight = new Map<string, Promise<unknown>>();
  readonly #local = new Map<string, { value: unknown; expires: number }>();
  readonly #localEntries: number;
  readonly #onLocalHit: (() => void) | undefined;

  constructor(options: QueryResultCacheOptions) {
    if (!(options.ttlSeconds >= 0)) throw new RangeError(`ttlSeconds must be >= 0, got ${options.ttlSeconds}`);
    this.#store = options.store;
    this.#ttlSeconds = options.ttlSeconds;
    this.#localEntries = options.localEntries ?? 256;
    this.#onLocalHit = options.onLocalHit;
  }

  /** The cache key of one operation on `collection` as it is now. */
  static key(
    operation: 'search' | 'ask',
    collection: Pick<CollectionRecord, 'id' | 'version' | 'embedder'>,
    scope: string,
    args: unknown,
  ): string {
    // The active embedder's fingerprint too: no entry survives a re-embedding switch (which also bumps the version).
    const embedder = sha256Hex(embedderFingerprint(collection.embedder)).slice(0, 12);
    return `${collection.id}:${collection.version}:${embedder}:${sha256Hex(JSON.stringify([operation, scope, args]))}`;
  }

  /** The search result of `key`: cached, shared with an identical search in flight, or computed (then cached). */
  async searches(key: string, compute: () => Promise<CachedSearch>): Promise<{ value: CachedSearch; cached: boolean }> {
    const got = await this.#acquire(key, encodeSearch, decodeSearch);
    if (!got.claim) return { value: got.hit, cached: true };
    try {
      const value = await compute();
      got.claim.settle(value);
      return { value, cached: false };
    } catch (error) {
      got.claim.fail(error);
      throw error;
    }
  }

  /** For `ask`, which computes in two steps (retrieval, then synthesis): the answer, or the claim to compute it. */
  acquireAnswer(key: string): Promise<Acquired<CachedAnswer>> {
    return this.#acquire(key, encodeAnswer, decodeAnswer);
  }

  async #acquire<T>(key: string, encode: (value: T) => string, decode: (text: string) => T | null): Promise<Acquired<T>> {
    const running = this.#inFlight.get(key) as Promise<T> | undefined;
    if (running) return { hit: await running };
    if (this.#ttlSeconds > 0) {
      const local = this.#local.get(key);
      if (local && local.expires > Date.now()) {
        this.#local.delete(key);
        this.#local.set(key, local);
        try {
          this.#onLocalHit?.();
        } catch {
          // A metrics hook must not fail a request.
        }
        return { hit: local.value as T };
      }
      const text = await this.#store.get(key);
      const value = text === undefined ? null : decode(text);
      if (value !== null) {
        this.#remember(key, value);
        return { hit: value };
      }
      // Another identical request may have claimed the key while this one was reading the cache.
      const claimed = this.#inFlight.get(key) as Promise<T> | undefined;
      if (claimed) return { hit: await claimed };
    }
    return { claim: this.#claim(key, encode) };
  }

  #claim<T>(key: string, encode: (value: T) => string): Claim<T> {
    let resolve!: (value: T) => void;
    let reject!: (error: unknown) => void;
    const pending = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    pending.catch(() => undefined); // nobody may be waiting
    this.#inFlight.set(key, pending);
    let done = false;
    const finish = () => {
      if (done) return false;
      done = true;
      if (this.#inFlight.get(key) === pending) this.#inFlight.delete(key);
      return true;
    };
    return {
      settle: (value) => {
        if (!finish()) return;
        resolve(value);
        if (this.#ttlSeconds > 0) {
          this.#remember(key, value);
          void this.#store.set(key, encode(value), this.#ttlSeconds);
        }
      },
      fail: (error) => {
        if (finish()) reject(error);
      },
    };
  }

  /** Keeps a decoded value in process (callers share it: it is read-only by convention, as GraphQL treats it). */
  #remember(key: string, value: unknown): void {
    if (this.#localEntries <= 0) return;
    this.#local.delete(key);
    this.#local.set(key, { value, expires: Date.now() + this.#ttlSeconds * 1000 });
    if (this.#local.size > this.#localEntries) this.#local.delete(this.#local.keys().next().value as string);
  }
}

// ---------------------------------------------------------------- codecs

const FORMAT = 1;

type DocumentJson = Omit<DocumentRecord, 'createdAt' | 'updatedAt'> & { createdAt: number; updatedAt: number };
interface HitJson {
  c: ChunkRecord;
  /** Index into `docs`: a document is stored once however many of its chunks were hit. */
  d: number;
  s: number;
  v: number | null;
  k: number | null;
}

function encodeHits(hits: readonly SearchHit[]): { docs: DocumentJson[]; hits: HitJson[] } {
  const docs: DocumentJson[] = [];
  const at = new Map<string, number>();
  const out = hits.map((hit) => {
    let d = at.get(hit.document.id);
    if (d === undefined) {
      d = docs.push({ ...hit.document, createdAt: hit.document.createdAt.getTime(), updatedAt: hit.document.updatedAt.getTime() }) - 1;
      at.set(hit.document.id, d);
    }
    return { c: hit.chunk, d, s: hit.score, v: hit.vectorScore, k: hit.keywordScore };
  });
  return { docs, hits: out };
}

function decodeHits(docsJson: DocumentJson[], hits: HitJson[]): SearchHit[] {
  const docs: DocumentRecord[] = docsJson.map((d) => ({ ...d, createdAt: new Date(d.createdAt), updatedAt: new Date(d.updatedAt) }));
  return hits.map((h) => ({ chunk: h.c, document: docs[h.d]!, score: h.s, vectorScore: h.v, keywordScore: h.k }));
}

function encodeSearch(value: CachedSearch): string {
  return JSON.stringify({ f: FORMAT, mode: value.mode, alpha: value.alpha, ...encodeHits(value.hits) });
}

function decodeSearch(text: string): CachedSearch | null {
  const parsed = parseFormat(text) as { mode: SearchMode; alpha: number; docs: DocumentJson[]; hits: HitJson[] } | null;
  if (!parsed) return null;
  return { mode: parsed.mode, alpha: parsed.alpha, hits: decodeHits(parsed.docs, parsed.hits) };
}

function encodeAnswer(value: CachedAnswer): string {
  const { docs, hits } = encodeHits(value.sources);
  return JSON.stringify({
    f: FORMAT,
    answer: value.answer,
    abstained: value.abstained,
    abstentionReason: value.abstentionReason,
    docs,
    sources: hits.map((hit, i) => ({ ...hit, n: value.sources[i]!.n })),
    // A citation refers to its source by number; the source itself is stored once, in `sources`.
    citations: value.citations.map((c) => ({ marker: c.marker, sentence: c.sentence, supported: c.supported, n: c.source.n })),
    unsupportedMarkers: value.unsupportedMarkers,
    synthesizer: value.synthesizer,
  });
}

function decodeAnswer(text: string): CachedAnswer | null {
  const parsed = parseFormat(text) as {
    answer: string | null;
    abstained: boolean;
    abstentionReason: string | null;
    docs: DocumentJson[];
    sources: (HitJson & { n: number })[];
    citations: (Citation & { n: number })[];
    unsupportedMarkers: number[];
    synthesizer: string;
  } | null;
  if (!parsed) return null;
  const hits = decodeHits(parsed.docs, parsed.sources);
  const sources: AnswerSource[] = hits.map((hit, i) => ({ ...hit, n: parsed.sources[i]!.n }));
  const byN = new Map(sources.map((s) => [s.n, s]));
  const citations: (Citation & { source: AnswerSource })[] = [];
  for (const c of parsed.citations) {
    const source = byN.get(c.n);
    if (!source) return null;
    citations.push({ marker: c.marker, sentence: c.sentence, supported: c.supported, source });
  }
  return {
    answer: parsed.answer,
    abstained: parsed.abstained,
    abstentionReason: parsed.abstentionReason,
    citations,
    sources,
    unsupportedMarkers: parsed.unsupportedMarkers,
    synthesizer: parsed.synthesizer,
  };
}

/** The parsed entry, or null for one this version cannot read (a miss, recomputed and overwritten). */
function parseFormat(text: string): Record<string, unknown> | null {
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    return parsed && parsed.f === FORMAT ? parsed : null;
  } catch {
    return null;
  }
}
