import type { Embedder } from '../../ports/embedder.port';
import type { EmbedderInfo } from '../../ports/knowledge-store.port';
import { cl100k, cl100kBytes } from '../../retrieval/cl100k';
import { STOPWORDS, tokenize } from '../../retrieval/tokenize';

/**
 * The default offline embedder. Signed feature hashing (FNV-1a + murmur3 finaliser) of three feature families:
 * - stemmed content-word unigrams (shared stopwords removed, Porter stemmer below),
 * - bigrams of consecutive content-word stems,
 * - character 3–5-grams of each content word with boundary markers (`<cel`, `ells>`), catching morphology and
 *   compounds the stemmer misses,
 * each weighted by sublinear term frequency (1 + ln tf) times a static rarity prior, each family L2-normalised and
 * scaled by its weight, the sum L2-normalised. No weights to download, deterministic, no I/O.
 *
 * The rarity prior stands in for IDF without corpus statistics: a word's best rank in the cl100k_base BPE vocabulary
 * (shipped with `@llamaindex/env`; its merges are ordered by frequency in a web-scale corpus, so the rank is a
 * frequency rank). Words that are a single low-rank token (" study", " cell") weigh less than rare ones, words split
 * into several tokens ("biomaterials") weigh most; numbers and a short list of academic filler words are capped.
 * Tuned on SciFact with `bench/embedder-eval.bench.ts` (figures in that file's header).
 *
 * The features, weights and vocabulary are part of the fingerprint `kbql-hash-v1`: any change to them changes the
 * vectors and must come with a new name (collections refuse a mismatched embedder). The constructor verifies that the
 * vocabulary is the expected one and throws otherwise.
 */
export interface HashEmbedderOptions {
  /**
   * Vector length. More dimensions mean fewer hash collisions (SciFact nDCG@10: 0.60 at 1024, 0.62 at 4096).
   * @default 1024
   */
  dimensions?: number;
}

/** Feature weights; exported for the bench only. Vectors of a non-default tuning are named `kbql-hash-v1+custom`. */
export interface HashEmbedderTuning {
  /** Weight of the stemmed-unigram family. */
  unigram: number;
  /** Weight of the content-word bigram family. */
  bigram: number;
  /** Weight of the character n-gram family. */
  chargram: number;
  /** Smallest and largest character n-gram, boundary markers included. */
  minGram: number;
  maxGram: number;
  /** Prior of a number token ("42", "0.5"). */
  numberWeight: number;
  /** Smallest rarity prior (the most frequent words). */
  minPrior: number;
  /** Prior cap of the academic filler words in {@link COMMON_WORDS}. */
  commonWeight: number;
  /** log2 of the BPE rank at and below which a word gets the smallest prior. */
  bpeFloorBits: number;
  /** Exponent applied to the BPE prior. */
  priorExponent: number;
}

export const DEFAULT_HASH_TUNING: Readonly<HashEmbedderTuning> = Object.freeze({
  unigram: 1,
  bigram: 0.25,
  chargram: 1.2,
  minGram: 3,
  maxGram: 5,
  numberWeight: 0.5,
  minPrior: 0.1,
  commonWeight: 0.5,
  bpeFloorBits: 4,
  priorExponent: 1,
});

/** The offline embedder's name (its vectors' identity; a custom tuning adds `+custom`). */
export const HASH_EMBEDDER_NAME = 'kbql-hash-v1';
const MAX_BATCH_SIZE = 2048;
/** Texts embedded between two yields to the event loop, so a 2,048-text batch does not stall other requests. */
const YIELD_EVERY = 32;
/** Bound of each per-word cache (entries); a cache is cleared when full, so memory stays flat on huge vocabularies. */
const CACHE_LIMIT = 200_000;

// Family seeds keep a unigram "cell" and a character gram "cell" in different buckets.
const SEED_UNIGRAM = 0x9747b28c;
const SEED_BIGRAM = 0x1b873593;
const SEED_CHARGRAM = 0x85ebca6b;
const SEED_EMPTY = 0x27d4eb2f;

const NUMBER = /^\d[\d.,]*$/;

export class HashEmbedder implements Embedder {
  readonly info: EmbedderInfo;
  readonly maxBatchSize = MAX_BATCH_SIZE;
  readonly #dims: number;
  readonly #tuning: HashEmbedderTuning;
  /** Surface word → its character-gram features (bucket, signed unit-norm weight). Depends on dims: per instance. */
  readonly #gramCache = new Map<string, WordGrams>();
  /** Surface word → its stem and prior (the prior depends on the tuning: per instance). */
  readonly #wordCache = new Map<string, WordInfo>();
  /** Scratch accumulators of `embedSync`, zeroed on each call (allocating three per text kept the GC busy). */
  readonly #uni: Float64Array;
  readonly #bi: Float64Array;
  readonly #charGrams: Float64Array;

  constructor(options: HashEmbedderOptions = {}, tuning?: Partial<HashEmbedderTuning>) {
    const dimensions = options.dimensions ?? 1024;
    if (!Number.isInteger(dimensions) || dimensions < 16 || dimensions > 65_536) {
      throw new RangeError(`HashEmbedder dimensions must be an integer in [16, 65536], got ${dimensions}`);
    }
    this.#dims = dimensions;
    this.#uni = new Float64Array(dimensions);
    this.#bi = new Float64Array(dimensions);
    this.#charGrams = new Float64Array(dimensions);
    this.#tuning = { ...DEFAULT_HASH_TUNING, ...tuning };
    const custom = tuning !== undefined && Object.keys(tuning).length > 0;
    this.info = Object.freeze({ name: custom ? `${HASH_EMBEDDER_NAME}+custom` : HASH_EMBEDDER_NAME, dimensions });
    loadVocabulary();
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i++) {
      if (i > 0 && i % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      signal?.throwIfAborted();
      out.push(this.embedSync(texts[i]!));
    }
    return out;
  }

  /**
   * The vector of one text, synchronously (what `embed` does for each text). A text without any word gets a fixed
   * unit vector, the same for all such texts, so the result is always L2-normalised.
   */
  embedSync(text: string): Float32Array {
    const t = this.#tuning;
    const dims = this.#dims;

    // Counts and priors per stem (unigrams), per stem pair (bigrams) and per surface word (character grams).
    const stems = new Map<string, Weighted>();
    const pairs = new Map<string, Weighted>();
    const words = new Map<string, Weighted>();
    let previous: WordInfo | null = null;
    for (const token of tokenize(text.normalize('NFKC'))) {
      if (STOPWORDS.has(token)) continue;
      const info = this.#word(token);
      const { prior, stem } = info;
      count(stems, stem, prior);
      count(words, token, prior);
      if (previous) count(pairs, `${previous.stem} ${stem}`, Math.sqrt(previous.prior * prior));
      previous = info;
    }

    const out = new Float32Array(dims);
    if (words.size === 0) {
      out[hash('', 0, 0, SEED_EMPTY) % dims] = 1;
      return out;
    }

    const uni = this.#uni.fill(0);
    const bi = this.#bi.fill(0);
    const grams = this.#charGrams.fill(0);
    for (const [stem, { count, prior }] of stems) addHashed(uni, stem, SEED_UNIGRAM, tf(count) * prior);
    for (const [pair, { count, prior }] of pairs) addHashed(bi, pair, SEED_BIGRAM, tf(count) * prior);
    for (const [word, { count, prior }] of words) {
      const { buckets, weights } = this.#grams(word);
      const w = tf(count) * prior;
      for (let i = 0; i < buckets.length; i++) grams[buckets[i]!]! += weights[i]! * w;
    }

    const families: [Float64Array, number][] = [
      [uni, t.unigram],
      [bi, t.bigram],
      [grams, t.chargram],
    ];
    for (const [vector, weight] of families) {
      const norm = l2(vector);
      if (norm === 0 || weight === 0) continue;
      const scale = weight / norm;
      for (let i = 0; i < dims; i++) out[i]! += vector[i]! * scale;
    }
    const norm = l2(out);
    for (let i = 0; i < dims; i++) out[i]! /= norm;
    return out;
  }

  #word(word: string): WordInfo {
    let info = this.#wordCache.get(word);
    if (!info) {
      info = { prior: this.#prior(word), stem: stemCached(word) };
      if (this.#wordCache.size >= CACHE_LIMIT) this.#wordCache.clear();
      this.#wordCache.set(word, info);
    }
    return info;
  }

  /** Static rarity prior of a surface word, in [minPrior, 1]. */
  #prior(word: string): number {
    const t = this.#tuning;
    if (NUMBER.test(word)) return t.numberWeight;
    const rarity = Math.max(0, bpeBits(word) - t.bpeFloorBits) / (BPE_MAX_BITS - t.bpeFloorBits);
    const prior = Math.max(t.minPrior, rarity ** t.priorExponent);
    return COMMON_WORDS.has(word) ? Math.min(prior, t.commonWeight) : prior;
  }

  /** Character n-grams of `<word>`, signed, scaled so one word's grams have unit L2 norm. */
  #grams(word: string): WordGrams {
    const cached = this.#gramCache.get(word);
    if (cached) return cached;
    const t = this.#tuning;
    const padded = `<${word}>`;
    const hashes: number[] = [];
    for (let n = t.minGram; n <= t.maxGram; n++) {
      for (let start = 0; start + n <= padded.length; start++) hashes.push(hash(padded, start, start + n, SEED_CHARGRAM));
    }
    // A word shorter than minGram - 2 characters still gets one feature: the whole padded word.
    if (hashes.length === 0) hashes.push(hash(padded, 0, padded.length, SEED_CHARGRAM));
    const scale = 1 / Math.sqrt(hashes.length);
    // Filled in a loop: TypedArray.from with a mapping function is several times slower.
    const grams: WordGrams = { buckets: new Uint32Array(hashes.length), weights: new Float64Array(hashes.length) };
    for (let i = 0; i < hashes.length; i++) {
      const h = hashes[i]!;
      grams.buckets[i] = h % this.#dims;
      grams.weights[i] = h & 0x80000000 ? -scale : scale;
    }
    if (this.#gramCache.size >= CACHE_LIMIT) this.#gramCache.clear();
    this.#gramCache.set(word, grams);
    return grams;
  }
}

interface Weighted {
  count: number;
  prior: number;
}

interface WordInfo {
  prior: number;
  stem: string;
}

interface WordGrams {
  buckets: Uint32Array;
  weights: Float64Array;
}

/** Counts a feature; its prior is the largest among the surface forms that produced it. */
function count(map: Map<string, Weighted>, key: string, prior: number): void {
  const entry = map.get(key);
  if (entry) {
    entry.count++;
    if (prior > entry.prior) entry.prior = prior;
  } else {
    map.set(key, { count: 1, prior });
  }
}

const tf = (n: number): number => 1 + Math.log(n);

function l2(vector: Float64Array | Float32Array): number {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i]! * vector[i]!;
  return Math.sqrt(sum);
}

function addHashed(vector: Float64Array, feature: string, seed: number, weight: number): void {
  const h = hash(feature, 0, feature.length, seed);
  vector[h % vector.length]! += h & 0x80000000 ? -weight : weight;
}

/**
 * FNV-1a over the UTF-16 code units of `text[start, end)`, seeded, finished with murmur3's fmix32 so the low bits
 * (bucket) and the top bit (sign) are well mixed. Unsigned 32-bit result.
 */
export function hash(text: string, start: number, end: number, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = start; i < end; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------------------------
// The rarity prior's vocabulary: cl100k_base through @llamaindex/env (js-tiktoken, or gpt-tokenizer when installed).

const BPE_MAX_BITS = 17;
const MAX_SINGLE_TOKEN_WORD = 24;
/** Known cl100k_base ids; a different vocabulary would silently change every vector, so it is refused instead. */
const VOCABULARY_FINGERPRINT: [string, number][] = [
  [' the', 279],
  [' cell', 2849],
  [' patients', 6978],
  [' protein', 13128],
];
let vocabulary: Vocabulary | null = null;
const bitsCache = new Map<string, number>();

interface Vocabulary {
  encode(text: string): Uint32Array;
  /** The token whose bytes are exactly `text`'s, if there is one. */
  rankOf(text: string): number | undefined;
  /** False when the vocabulary cannot be inspected (another js-tiktoken): then `rankOf` is never used. */
  readonly inspectable: boolean;
}

function loadVocabulary(): Vocabulary {
  if (vocabulary) return vocabulary;
  // js-tiktoken's cl100k_base, the tokenizer LlamaIndex uses (@llamaindex/env); the fingerprint below checks it.
  const encoding = cl100kBytes();
  const candidate: Vocabulary = {
    encode: (text) => Uint32Array.from(encoding.encodeOrdinary(text)),
    rankOf: (text) => encoding.rankOf(text),
    inspectable: cl100k().rankMap !== undefined,
  };
  for (const [text, id] of VOCABULARY_FINGERPRINT) {
    const ids = candidate.encode(text);
    if (ids.length !== 1 || ids[0] !== id) {
      throw new Error(`${HASH_EMBEDDER_NAME} needs the cl100k_base vocabulary, but "${text}" encodes to [${[...ids].join(', ')}]`);
    }
  }
  vocabulary = candidate;
  return vocabulary;
}

const LETTERS_ONLY = /^\p{L}+$/u;

/** log2(1 + best cl100k rank of " word" in lower, Capitalised or UPPER case); words of several tokens get the max. */
function bpeBits(word: string): number {
  // No cl100k token is that long a word; and BPE on a very long word (a DNA sequence, a base64 blob) is quadratic.
  if (word.length > MAX_SINGLE_TOKEN_WORD) return BPE_MAX_BITS;
  const cached = bitsCache.get(word);
  if (cached !== undefined) return cached;
  const encoder = loadVocabulary();
  let best = Infinity;
  for (const variant of [word, word.charAt(0).toUpperCase() + word.slice(1), word.toUpperCase()]) {
    // " word" of letters only is one piece of cl100k's split, and js-tiktoken encodes a piece that is a token as that
    // token: the rank map answers exactly, without BPE (most words are several tokens and need no BPE either).
    if (encoder.inspectable && LETTERS_ONLY.test(variant)) {
      const rank = encoder.rankOf(` ${variant}`);
      if (rank !== undefined) best = Math.min(best, rank);
      continue;
    }
    const ids = encoder.encode(` ${variant}`);
    if (ids.length === 1) best = Math.min(best, ids[0]!);
  }
  const bits = best === Infinity ? BPE_MAX_BITS : Math.min(BPE_MAX_BITS, Math.log2(best + 1));
  if (bitsCache.size >= CACHE_LIMIT) bitsCache.clear();
  bitsCache.set(word, bits);
  return bits;
}

/**
 * Academic filler words that are not in the shared stopword list and say little about a topic even when the
 * vocabulary ranks them as fairly rare. Written by hand, not derived from any evaluation set.
 */
export const COMMON_WORDS: ReadonlySet<string> = new Set(
  (
    'use used using uses show shows showed shown result results resulted find found finding findings ' +
    'study studies studied suggest suggests suggested report reported include includes including included ' +
    'increase increased increases decrease decreased level levels effect effects associated association ' +
    'however although thus therefore whereas well within without among across one two three first second new ' +
    'high higher low lower large larger small smaller many much several less least like make made ' +
    'data analysis analyses method methods approach conclusion conclusions background objective objectives aim ' +
    'significant significantly observed observe compared comparison different difference differences ' +
    'important role based related provide provides provided demonstrate demonstrated evidence total number ' +
    'potential possible present presented known investigate investigated examine examined determine determined ' +
    'identify identified respectively overall furthermore moreover additionally group groups time times ' +
    'year years case cases factor factors type types form forms process processes specific general'
  ).split(' '),
);

// ---------------------------------------------------------------------------------------------------------------
// Porter (1980) stemmer, for lower-case ASCII words; other words are returned unchanged.

const stemCache = new Map<string, string>();

/**
 * {@link porterStem} with every word's stem remembered (up to 200,000 words, then the memory starts over): words
 * repeat, and the stemmer's suffix rules cost more than a map lookup.
 */
export function stemCached(word: string): string {
  const cached = stemCache.get(word);
  if (cached !== undefined) return cached;
  const stemmed = porterStem(word);
  if (stemCache.size >= CACHE_LIMIT) stemCache.clear();
  stemCache.set(word, stemmed);
  return stemmed;
}

/** The Porter stemmer ("connections" → "connect", "relational" → "relat"); words under 3 letters stay as they are. */
export function porterStem(word: string): string {
  if (word.length < 3 || !/^[a-z]+$/.test(word)) return word;
  let w = word;

  // Step 1a
  if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (w.endsWith('ies')) w = w.slice(0, -2);
  else if (w.endsWith('ss')) {
    // unchanged
  } else if (w.endsWith('s')) w = w.slice(0, -1);

  // Step 1b
  let step1bExtra = false;
  if (w.endsWith('eed')) {
    if (measure(w, w.length - 3) > 0) w = w.slice(0, -1);
  } else if (w.endsWith('ed') && hasVowel(w, w.length - 2)) {
    w = w.slice(0, -2);
    step1bExtra = true;
  } else if (w.endsWith('ing') && hasVowel(w, w.length - 3)) {
    w = w.slice(0, -3);
    step1bExtra = true;
  }
  if (step1bExtra) {
    if (w.endsWith('at') || w.endsWith('bl') || w.endsWith('iz')) w += 'e';
    else if (endsDoubleConsonant(w, w.length) && !/[lsz]$/.test(w)) w = w.slice(0, -1);
    else if (measure(w, w.length) === 1 && endsCvc(w, w.length)) w += 'e';
  }

  // Step 1c
  if (w.endsWith('y') && hasVowel(w, w.length - 1)) w = `${w.slice(0, -1)}i`;

  w = replaceSuffix(w, STEP2, 0);
  w = replaceSuffix(w, STEP3, 0);

  // Step 4
  for (const suffix of STEP4) {
    if (!w.endsWith(suffix)) continue;
    const stemEnd = w.length - suffix.length;
    if (measure(w, stemEnd) > 1 && (suffix !== 'ion' || /[st]$/.test(w.slice(0, stemEnd)))) w = w.slice(0, stemEnd);
    break;
  }

  // Step 5a
  if (w.endsWith('e')) {
    const m = measure(w, w.length - 1);
    if (m > 1 || (m === 1 && !endsCvc(w, w.length - 1))) w = w.slice(0, -1);
  }
  // Step 5b
  if (w.endsWith('ll') && measure(w, w.length) > 1) w = w.slice(0, -1);
  return w;
}

// Longest suffixes first, so the first match is the one Porter's rule picks.
const STEP2: [string, string][] = (
  [
    ['ational', 'ate'],
    ['tional', 'tion'],
    ['enci', 'ence'],
    ['anci', 'ance'],
    ['izer', 'ize'],
    ['bli', 'ble'],
    ['alli', 'al'],
    ['entli', 'ent'],
    ['eli', 'e'],
    ['ousli', 'ous'],
    ['ization', 'ize'],
    ['ation', 'ate'],
    ['ator', 'ate'],
    ['alism', 'al'],
    ['iveness', 'ive'],
    ['fulness', 'ful'],
    ['ousness', 'ous'],
    ['aliti', 'al'],
    ['iviti', 'ive'],
    ['biliti', 'ble'],
    ['logi', 'log'],
  ] as [string, string][]
).sort((a, b) => b[0].length - a[0].length);

const STEP3: [string, string][] = (
  [
    ['icate', 'ic'],
    ['ative', ''],
    ['alize', 'al'],
    ['iciti', 'ic'],
    ['ical', 'ic'],
    ['ful', ''],
    ['ness', ''],
  ] as [string, string][]
).sort((a, b) => b[0].length - a[0].length);

const STEP4 = [
  'al',
  'ance',
  'ence',
  'er',
  'ic',
  'able',
  'ible',
  'ant',
  'ement',
  'ment',
  'ent',
  'ion',
  'ou',
  'ism',
  'ate',
  'iti',
  'ous',
  'ive',
  'ize',
].sort((a, b) => b.length - a.length);

function replaceSuffix(w: string, rules: readonly [string, string][], minMeasure: number): string {
  for (const [suffix, replacement] of rules) {
    if (!w.endsWith(suffix)) continue;
    const stemEnd = w.length - suffix.length;
    return measure(w, stemEnd) > minMeasure ? w.slice(0, stemEnd) + replacement : w;
  }
  return w;
}

function isConsonant(w: string, i: number): boolean {
  const c = w.charCodeAt(i);
  // a e i o u
  if (c === 97 || c === 101 || c === 105 || c === 111 || c === 117) return false;
  if (c === 121) return i === 0 ? true : !isConsonant(w, i - 1); // y
  return true;
}

/** Porter's m: the number of vowel–consonant sequences in `w[0, end)`. */
function measure(w: string, end: number): number {
  let i = 0;
  let m = 0;
  while (i < end && isConsonant(w, i)) i++;
  while (i < end) {
    while (i < end && !isConsonant(w, i)) i++;
    if (i >= end) break;
    while (i < end && isConsonant(w, i)) i++;
    m++;
  }
  return m;
}

function hasVowel(w: string, end: number): boolean {
  for (let i = 0; i < end; i++) if (!isConsonant(w, i)) return true;
  return false;
}

function endsDoubleConsonant(w: string, end: number): boolean {
  return end >= 2 && w[end - 1] === w[end - 2] && isConsonant(w, end - 1);
}

/** consonant–vowel–consonant ending, the last not w, x or y ("hop", not "how"). */
function endsCvc(w: string, end: number): boolean {
  if (end < 3) return false;
  if (!isConsonant(w, end - 3) || isConsonant(w, end - 2) || !isConsonant(w, end - 1)) return false;
  const c = w[end - 1];
  return c !== 'w' && c !== 'x' && c !== 'y';
}
