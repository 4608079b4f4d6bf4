import type { Embedder } from '../../ports/embedder.port';
import type { EmbedderInfo } from '../../ports/knowledge-store.port';
import { STOPWORDS, tokenize } from '../../text/tokenize';

/**
 * The default offline embedder: signed feature hashing of stemmed content-word unigrams, content-word bigrams and
 * character 3–5-grams of each word, with sublinear term frequency, a static rarity prior and per-family weights,
 * then L2 normalisation. No weights to download, deterministic, a few thousand abstracts per second on one core.
 *
 * The features and weights are part of the fingerprint `kbql-hash-v1`: changing any of them changes the vectors, so
 * it must come with a new name (collections refuse a mismatched embedder).
 */
export interface HashEmbedderOptions {
  /**
   * Vector length.
   * @default 1024
   */
  dimensions?: number;
}

/** Feature weights; exported for the embedder bench only. Vectors of a non-default tuning are named `…+custom`. */
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
  /** Weight of a pure number (digits only) relative to a word. */
  numberWeight: number;
  /** Word length (characters) from which the rarity prior is 1; shorter words scale down linearly. */
  fullWeightLength: number;
  /** Smallest rarity prior (very short words). */
  minPrior: number;
  /** Prior of the general-English and academic filler words in {@link COMMON_WORDS}. */
  commonWeight: number;
  /** Character n-grams also for stopwords? (no: they add noise). */
  stopwordGrams: boolean;
  /** Rarity prior: none, word length, or the word's rank in a BPE vocabulary (cl100k, frequency-ordered merges). */
  prior: 'none' | 'length' | 'bpe';
  /** Exponent applied to the BPE prior. */
  priorExponent: number;
  /** log2 of the BPE rank at and below which a word gets the smallest prior. */
  bpeFloorBits: number;
  /** Term-frequency damping. */
  tfMode: 'log' | 'pow' | 'bm25';
  /** Exponent of `pow` tf, or k of `bm25` tf (`tf·(k+1)/(tf+k)`). */
  tfParam: number;
  /** Character grams from the surface word or from its stem. */
  charSource: 'word' | 'stem';
  /** Weight of grams that end at the word's end marker (suffixes say little about the topic). */
  suffixGramWeight: number;
  /** Weight of the n-gram sizes minGram..maxGram (missing entries weigh 1). */
  gramWeights: number[];
}

export const DEFAULT_HASH_TUNING: Readonly<HashEmbedderTuning> = Object.freeze({
  unigram: 1,
  bigram: 0.5,
  chargram: 0.7,
  minGram: 3,
  maxGram: 5,
  numberWeight: 0.5,
  fullWeightLength: 8,
  minPrior: 0.3,
  commonWeight: 0.5,
  stopwordGrams: false,
  prior: 'length',
  priorExponent: 1,
  bpeFloorBits: 7,
  tfMode: 'log',
  tfParam: 0.5,
  charSource: 'word',
  suffixGramWeight: 1,
  gramWeights: [],
});

const NAME = 'kbql-hash-v1';
const MAX_BATCH_SIZE = 2048;
/** Bound of the per-word feature cache (entries); cleared when full, so memory stays flat on huge vocabularies. */
const WORD_CACHE_LIMIT = 200_000;

// Family seeds keep a unigram "cell" and a character gram "cell" in different buckets.
const SEED_UNIGRAM = 0x9747b28c;
const SEED_BIGRAM = 0x1b873593;
const SEED_CHARGRAM = 0x85ebca6b;

export class HashEmbedder implements Embedder {
  readonly info: EmbedderInfo;
  readonly maxBatchSize = MAX_BATCH_SIZE;
  readonly #dims: number;
  readonly #tuning: HashEmbedderTuning;
  /** surface word → its hashed unigram and character-gram features (bucket, signed weight), before tf/prior. */
  readonly #wordCache = new Map<string, WordFeatures>();

  constructor(options: HashEmbedderOptions = {}, tuning?: Partial<HashEmbedderTuning>) {
    const dimensions = options.dimensions ?? 1024;
    if (!Number.isInteger(dimensions) || dimensions < 2 || dimensions > 65_536) {
      throw new RangeError(`HashEmbedder dimensions must be an integer in [2, 65536], got ${dimensions}`);
    }
    this.#dims = dimensions;
    this.#tuning = { ...DEFAULT_HASH_TUNING, ...tuning };
    const custom = tuning !== undefined && Object.keys(tuning).length > 0;
    this.info = Object.freeze({ name: custom ? `${NAME}+custom` : NAME, dimensions });
  }

  async embed(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    signal?.throwIfAborted();
    return texts.map((text) => this.embedSync(text));
  }

  /** The vector of one text (what `embed` does for each text), synchronously. */
  embedSync(text: string): Float32Array {
    const t = this.#tuning;
    const dims = this.#dims;
    const tokens = tokenize(text.normalize('NFKC'));

    // Counts per stem (unigram family), per surface word (character grams) and per stem pair (bigrams).
    const stemCounts = new Map<string, number>();
    const stemPriors = new Map<string, number>();
    const wordCounts = new Map<string, number>();
    const bigramCounts = new Map<string, number>();
    const bigramPriors = new Map<string, number>();
    const wordPriors = new Map<string, number>();
    let previousStem: string | null = null;
    let previousPrior = 1;
    for (const token of tokens) {
      const stop = STOPWORDS.has(token);
      const stem = stop ? token : stemCached(token);
      if (!stop || t.stopwordGrams) {
        const key = t.charSource === 'stem' ? stem : token;
        wordCounts.set(key, (wordCounts.get(key) ?? 0) + 1);
        if (t.charSource === 'stem') wordPriors.set(key, Math.max(wordPriors.get(key) ?? 0, this.#prior(token)));
      }
      if (stop) continue;
      stemCounts.set(stem, (stemCounts.get(stem) ?? 0) + 1);
      stemPriors.set(stem, Math.max(stemPriors.get(stem) ?? 0, this.#prior(token)));
      if (previousStem !== null) {
        const pair = `${previousStem} ${stem}`;
        bigramPriors.set(pair, Math.sqrt(previousPrior * this.#prior(token)));
        bigramCounts.set(pair, (bigramCounts.get(pair) ?? 0) + 1);
      }
      previousStem = stem;
      previousPrior = this.#prior(token);
    }

    const tfMode = TF[t.tfMode];
    const tf = (count: number): number => tfMode(count, t.tfParam);
    const uni = new Float64Array(dims);
    const bi = new Float64Array(dims);
    const chars = new Float64Array(dims);

    for (const [stem, count] of stemCounts) {
      const w = tf(count) * stemPriors.get(stem)!;
      addHashed(uni, stem, 0, stem.length, SEED_UNIGRAM, w, dims);
    }
    for (const [pair, count] of bigramCounts) {
      const w = tf(count) * bigramPriors.get(pair)!;
      addHashed(bi, pair, 0, pair.length, SEED_BIGRAM, w, dims);
    }
    for (const [word, count] of wordCounts) {
      const features = this.#wordFeatures(word);
      const w = tf(count) * (wordPriors.get(word) ?? this.#prior(word));
      const { buckets, weights } = features;
      for (let i = 0; i < buckets.length; i++) chars[buckets[i]] += weights[i] * w;
    }

    const out = new Float32Array(dims);
    const families: [Float64Array, number][] = [
      [uni, t.unigram],
      [bi, t.bigram],
      [chars, t.chargram],
    ];
    for (const [vector, weight] of families) {
      const norm = l2(vector);
      if (norm === 0 || weight === 0) continue;
      const scale = weight / norm;
      for (let i = 0; i < dims; i++) out[i] += vector[i] * scale;
    }
    const norm = l2(out);
    if (norm > 0) for (let i = 0; i < dims; i++) out[i] /= norm;
    return out;
  }

  /** Static rarity prior of a surface word (see {@link HashEmbedderTuning.prior}); numbers and filler words weigh less. */
  #prior(word: string): number {
    const t = this.#tuning;
    if (/^\d+$/.test(word)) return t.numberWeight;
    let prior = 1;
    if (t.prior === 'length') prior = Math.max(t.minPrior, Math.min(1, word.length / t.fullWeightLength));
    else if (t.prior === 'bpe') prior = Math.max(t.minPrior, bpePrior(word, t.bpeFloorBits) ** t.priorExponent);
    return COMMON_WORDS.has(word) ? Math.min(prior, t.commonWeight) : prior;
  }

  /** Character n-grams of `<word>`, each with a weight so one word's grams sum to unit L2 norm. */
  #wordFeatures(word: string): WordFeatures {
    const cached = this.#wordCache.get(word);
    if (cached) return cached;
    const t = this.#tuning;
    const padded = `<${word}>`;
    const buckets: number[] = [];
    const signs: number[] = [];
    for (let n = t.minGram; n <= t.maxGram; n++) {
      const gramWeight = t.gramWeights[n - t.minGram] ?? 1;
      for (let start = 0; start + n <= padded.length; start++) {
        const h = hash(padded, start, start + n, SEED_CHARGRAM);
        const weight = start + n === padded.length && start > 0 ? gramWeight * t.suffixGramWeight : gramWeight;
        buckets.push(h % this.#dims);
        signs.push(h & 0x80000000 ? -weight : weight);
      }
    }
    // Words shorter than minGram - 2 characters still get one feature: the whole padded word.
    if (buckets.length === 0) {
      const h = hash(padded, 0, padded.length, SEED_CHARGRAM);
      buckets.push(h % this.#dims);
      signs.push(h & 0x80000000 ? -1 : 1);
    }
    const scale = 1 / Math.sqrt(signs.reduce((sum, w) => sum + w * w, 0));
    const features: WordFeatures = {
      buckets: Uint32Array.from(buckets),
      weights: Float64Array.from(signs, (s) => s * scale),
    };
    if (this.#wordCache.size >= WORD_CACHE_LIMIT) this.#wordCache.clear();
    this.#wordCache.set(word, features);
    return features;
  }
}

interface WordFeatures {
  buckets: Uint32Array;
  weights: Float64Array;
}

const TF = {
  log: (count: number): number => 1 + Math.log(count),
  pow: (count: number, p: number): number => count ** p,
  bm25: (count: number, k: number): number => (count * (k + 1)) / (count + k),
};

const BPE_CACHE_LIMIT = 200_000;
const bpeCache = new Map<string, number>();
let bpeTokenizer: { encode(text: string): Uint32Array } | null = null;
/** 0..1: log2 of the word's best cl100k rank (any casing), floored; words split into several tokens are rarest (1). */
function bpePrior(word: string, floorBits: number): number {
  const cached = bpeCache.get(word);
  if (cached !== undefined) return cached;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  bpeTokenizer ??= (require('@llamaindex/env/tokenizers') as typeof import('@llamaindex/env/tokenizers')).tokenizers.tokenizer();
  const capitalised = word.charAt(0).toUpperCase() + word.slice(1);
  let best = Infinity;
  for (const variant of [word, capitalised, word.toUpperCase()]) {
    const ids = bpeTokenizer.encode(` ${variant}`);
    if (ids.length === 1) best = Math.min(best, ids[0]!);
  }
  const maxBits = 17;
  const bits = best === Infinity ? maxBits : Math.min(maxBits, Math.log2(best + 1));
  const prior = Math.max(0, bits - floorBits) / (maxBits - floorBits);
  if (bpeCache.size >= BPE_CACHE_LIMIT) bpeCache.clear();
  bpeCache.set(word, prior);
  return prior;
}

function l2(vector: Float64Array | Float32Array): number {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i] * vector[i];
  return Math.sqrt(sum);
}

function addHashed(
  vector: Float64Array,
  text: string,
  start: number,
  end: number,
  seed: number,
  weight: number,
  dims: number,
): void {
  const h = hash(text, start, end, seed);
  vector[h % dims] += h & 0x80000000 ? -weight : weight;
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

/**
 * General-English and academic filler words that are not in the shared stopword list but say little about a topic
 * (a static stand-in for a low IDF). Written by hand, not derived from any evaluation set; surface forms and stems.
 */
export const COMMON_WORDS: ReadonlySet<string> = new Set(
  (
    'use used using uses show shows showed shown result results resulted find found finding findings ' +
    'study studies studied suggest suggests suggested report reported include includes including included ' +
    'increase increased increases decrease decreased level levels effect effects associated association ' +
    'however although thus therefore whereas well within without among across one two three first second new ' +
    'high higher low lower large larger small smaller many much several less least like make made may ' +
    'data analysis analyses method methods approach conclusion conclusions background objective objectives aim ' +
    'significant significantly observed observe compared comparison different difference differences ' +
    'important role based related provide provides provided demonstrate demonstrated evidence total number ' +
    'potential possible present presented known investigate investigated examine examined determine determined ' +
    'identify identified respectively overall furthermore moreover additionally group groups time times ' +
    'year years case cases factor factors type types form forms process processes specific general ' +
    'use result studi suggest report includ increas decreas level effect associ signific observ compar differ ' +
    'import relat provid demonstr evid potenti possibl investig examin determin identifi'
  ).split(' '),
);

// ---------------------------------------------------------------------------------------------------------------
// Porter (1980) stemmer, for lower-case ASCII words; other words are returned unchanged.

const STEM_CACHE_LIMIT = 100_000;
const stemCache = new Map<string, string>();

function stemCached(word: string): string {
  const cached = stemCache.get(word);
  if (cached !== undefined) return cached;
  const stemmed = porterStem(word);
  if (stemCache.size >= STEM_CACHE_LIMIT) stemCache.clear();
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
  'al', 'ance', 'ence', 'er', 'ic', 'able', 'ible', 'ant', 'ement', 'ment', 'ent', 'ion', 'ou', 'ism', 'ate', 'iti',
  'ous', 'ive', 'ize',
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
