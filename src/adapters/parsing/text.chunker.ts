import { badInput } from '../../errors';
import type { ChunkDraft, Chunker } from '../../ports/document-processor.port';
import type { ChunkingSettings, ContentType } from '../../ports/knowledge-store.port';
import { memoTokenizer, type MemoTokenizer } from './token-counter';

/**
 * Sentence-aware chunking in time linear in the text. Sizes are tokens of cl100k_base (the memoised tokenizer of
 * `token-counter.ts`, LlamaIndex's tokenizer).
 * - SENTENCE: the text is cut at every word boundary into segments (a segment is its leading whitespace and one word,
 *   as cl100k_base attaches a space to the word after it), each boundary ranked: paragraph (blank line), sentence
 *   (`.`, `!`, `?` and CJK stops, not after an abbreviation or an initial), clause (`,` `;` `:`, a line break, CJK
 *   commas), word, or — inside a run longer than {@link MAX_SEGMENT_CHARS} — a plain cut. A span over `chunkSize`
 *   tokens is split at its strongest boundaries first, recursively, and the resulting units are packed greedily;
 *   each chunk after the first starts with the previous chunk's last units up to `chunkOverlap` tokens.
 * - MARKDOWN: sections under ATX headings (outside fenced code); each section's body split like SENTENCE with its
 *   heading path ("Install > Linux") prefixed to every chunk, the prefix counted in `chunkSize`.
 * - AUTO: MARKDOWN for Markdown documents, SENTENCE otherwise.
 * A chunk's token count is the sum of its segments' counts, never less than the tokenizer's count of the whole chunk
 * by more than a join or two, so chunks stay within `chunkSize`. Chunk text is the document's own text (trimmed) and
 * offsets point at it (for MARKDOWN, at the part after the heading prefix). Empty chunks are dropped and indexes are
 * contiguous from 0. Deterministic.
 */
export class TextChunker implements Chunker {
  readonly #tokenizer: MemoTokenizer;

  /** @param tokenizer counts tokens. @default the shared memoised cl100k_base tokenizer */
  constructor(tokenizer: MemoTokenizer = memoTokenizer) {
    this.#tokenizer = tokenizer;
  }

  chunk(text: string, contentType: ContentType, settings: ChunkingSettings): ChunkDraft[] {
    const { chunkSize, chunkOverlap } = settings;
    if (!Number.isInteger(chunkSize) || chunkSize < 8) throw badInput('chunkSize must be an integer of at least 8 tokens.');
    if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0 || chunkOverlap > chunkSize / 2) {
      throw badInput('chunkOverlap must be an integer between 0 and half of chunkSize.');
    }
    const strategy = settings.strategy === 'AUTO' ? (contentType === 'MARKDOWN' ? 'MARKDOWN' : 'SENTENCE') : settings.strategy;
    const drafts: ChunkDraft[] = [];
    const emit = (prefix: string, start: number, end: number) => {
      const span = trimSpan(text, start, end);
      if (span.end <= span.start) return;
      const body = text.slice(span.start, span.end);
      drafts.push({ index: drafts.length, text: prefix ? `${prefix}\n\n${body}` : body, startOffset: span.start, endOffset: span.end });
    };
    if (strategy === 'MARKDOWN') {
      for (const section of markdownSections(text)) {
        const prefix = headingPrefix(section.headings, chunkSize, this.#tokenizer);
        const prefixTokens = prefix ? this.#tokenizer.count(`${prefix}\n\n`) : 0;
        const size = chunkSize - prefixTokens;
        const overlap = Math.min(chunkOverlap, Math.floor(size / 4));
        for (const [start, end] of this.#spans(text, section.start, section.end, size, overlap)) emit(prefix, start, end);
      }
    } else {
      for (const [start, end] of this.#spans(text, 0, text.length, chunkSize, chunkOverlap)) emit('', start, end);
    }
    if (drafts.length === 0 && text.trim() !== '') emit('', 0, text.length);
    return drafts;
  }

  /** Chunk spans of `text[from, to)`: at most `size` tokens each, neighbours sharing up to `overlap` tokens. */
  #spans(text: string, from: number, to: number, size: number, overlap: number): [number, number][] {
    const segments = segment(text, from, to, this.#tokenizer);
    const units = splitUnits(segments, size);
    return pack(segments, units, size, overlap);
  }
}

/**
 * Longest segment, in UTF-16 code units: a longer run of letters, symbols or spaces is cut into pieces this long, so
 * that no single segment can exceed a chunk (1 MiB of one character still chunks).
 */
export const MAX_SEGMENT_CHARS = 32;

/** Boundary ranks: a span is split at its highest-ranked boundaries first. */
const enum Rank {
  Cut = 0,
  Word = 1,
  Clause = 2,
  Sentence = 3,
  Paragraph = 4,
}

/**
 * Segments of `text[from, to)` as parallel arrays: segment i is `[starts[i], starts[i + 1])` (the last ends at `to`),
 * `tokens[i]` its token count, `ranks[i]` the rank of the boundary before it (meaningless for i = 0).
 */
interface Segments {
  starts: Int32Array;
  tokens: Int32Array;
  ranks: Uint8Array;
  count: number;
  end: number;
}

/** One pass over the text: boundaries before each word (with its leading whitespace), ranked. */
function segment(text: string, from: number, to: number, tokenizer: MemoTokenizer): Segments {
  let capacity = 1024;
  let starts = new Int32Array(capacity);
  let ranks = new Uint8Array(capacity);
  let count = 0;
  const push = (start: number, rank: Rank) => {
    if (count === capacity) {
      capacity *= 2;
      const s = new Int32Array(capacity);
      s.set(starts);
      starts = s;
      const r = new Uint8Array(capacity);
      r.set(ranks);
      ranks = r;
    }
    starts[count] = start;
    ranks[count] = rank;
    count++;
  };
  /** Pushes `[start, end)` as one segment, or as several cut at MAX_SEGMENT_CHARS when it is longer. */
  const pushRun = (start: number, end: number, rank: Rank) => {
    push(start, rank);
    for (let at = start + MAX_SEGMENT_CHARS; at < end; at += MAX_SEGMENT_CHARS) {
      // Never cut a surrogate pair.
      const cut = isLowSurrogate(text.charCodeAt(at)) ? at + 1 : at;
      if (cut < end) push(cut, Rank.Cut);
    }
  };

  let i = from;
  let segmentStart = from;
  let rank: Rank = Rank.Paragraph;
  while (i < to) {
    // Whitespace then a word: [segmentStart, wordEnd) is one segment.
    while (i < to && isSpace(text.charCodeAt(i))) i++;
    const wordStart = i;
    while (i < to && !isSpace(text.charCodeAt(i))) {
      const code = text.charCodeAt(i);
      i++;
      // A CJK stop or comma ends a segment without any space after it.
      if (code >= 0x3000 && (CJK_STOPS.has(code) || CJK_CLAUSE.has(code))) {
        while (i < to && CLOSERS.has(text.charCodeAt(i))) i++;
        break;
      }
    }
    const wordEnd = i;
    if (wordEnd > segmentStart) pushRun(segmentStart, wordEnd, rank);
    // The rank of the boundary after this word: from its last characters and the whitespace that follows.
    let newlines = 0;
    let j = wordEnd;
    while (j < to && isSpace(text.charCodeAt(j))) {
      if (text.charCodeAt(j) === 10) newlines++;
      j++;
    }
    rank = boundaryRank(text, wordStart, wordEnd, newlines);
    segmentStart = wordEnd;
  }
  // Trailing whitespace joins the last segment.
  const end = to;

  const tokens = new Int32Array(count);
  for (let k = 0; k < count; k++) {
    const segEnd = k + 1 < count ? starts[k + 1]! : end;
    tokens[k] = tokenizer.count(text.slice(starts[k], segEnd));
  }
  return { starts, tokens, ranks, count, end };
}

const CJK_STOPS = new Set([0x3002, 0xff01, 0xff1f, 0xff0e]); // 。！？．
const CJK_CLAUSE = new Set([0x3001, 0xff0c, 0xff1b, 0xff1a]); // 、，；：
const CLOSERS = new Set([0x22, 0x27, 0x29, 0x5d, 0x7d, 0x2019, 0x201d, 0x300d, 0x300f, 0xff09]);

function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13) || code === 0xa0 || code === 0x3000 || (code >= 0x2000 && code <= 0x200a);
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Abbreviations after which a full stop does not end a sentence (lower-case, without the stop). */
const ABBREVIATIONS = new Set([
  'e.g',
  'i.e',
  'etc',
  'vs',
  'cf',
  'al',
  'fig',
  'figs',
  'dr',
  'mr',
  'mrs',
  'ms',
  'prof',
  'st',
  'vol',
  'approx',
  'inc',
  'ltd',
  'jr',
  'sr',
  'no',
  'eq',
  'ref',
  'refs',
]);

/** Rank of the boundary after the word `text[start, end)` followed by whitespace holding `newlines` line breaks. */
function boundaryRank(text: string, start: number, end: number, newlines: number): Rank {
  if (newlines >= 2) return Rank.Paragraph;
  // Skip closing quotes and brackets to find the punctuation that ends the word.
  let k = end - 1;
  while (k > start && CLOSERS.has(text.charCodeAt(k))) k--;
  const last = text.charCodeAt(k);
  if (CJK_STOPS.has(last)) return Rank.Sentence;
  if (last === 0x21 || last === 0x3f || last === 0x2026) return Rank.Sentence; // ! ? …
  if (last === 0x2e) {
    // "e.g." and "Dr." do not end a sentence, nor does an initial ("J. Smith"); a short word is all we look at.
    const word = text
      .slice(start, k)
      .toLowerCase()
      .replace(/^[("'“‘[]+/, '');
    const isInitial = word.length === 1 && /\p{Lu}/u.test(text.charAt(k - 1));
    if (!isInitial && !ABBREVIATIONS.has(word)) return Rank.Sentence;
  }
  if (newlines === 1) return Rank.Clause;
  if (last === 0x2c || last === 0x3b || last === 0x3a || CJK_CLAUSE.has(last)) return Rank.Clause;
  return Rank.Word;
}

/**
 * Units of at most `size` tokens as segment index ranges `[first, last)`: a span that fits is one unit; a span that
 * does not is split at its highest-ranked boundaries, and each part handled the same way. Each level walks its span
 * once, and there are five levels: linear.
 */
function splitUnits(segs: Segments, size: number): Int32Array {
  const prefix = new Float64Array(segs.count + 1);
  for (let k = 0; k < segs.count; k++) prefix[k + 1] = prefix[k]! + segs.tokens[k]!;
  const out: number[] = [];
  const visit = (first: number, last: number, rank: Rank) => {
    if (prefix[last]! - prefix[first]! <= size || last - first === 1 || rank < Rank.Cut) {
      out.push(first, last);
      return;
    }
    // Parts between boundaries of this rank or higher.
    let partStart = first;
    for (let k = first + 1; k < last; k++) {
      if ((segs.ranks[k]! as Rank) >= rank) {
        visit(partStart, k, rank - 1);
        partStart = k;
      }
    }
    visit(partStart, last, rank - 1);
  };
  if (segs.count > 0) visit(0, segs.count, Rank.Paragraph);
  return Int32Array.from(out);
}

/**
 * Greedy packing of units into chunks of at most `size` tokens; each chunk after the first starts with the trailing
 * units of the previous one that fit in `overlap` tokens (and leave room for the next unit). Returns character spans.
 */
function pack(segs: Segments, units: Int32Array, size: number, overlap: number): [number, number][] {
  const unitCount = units.length / 2;
  const tokensOf = new Float64Array(unitCount);
  for (let u = 0; u < unitCount; u++) {
    let t = 0;
    for (let k = units[2 * u]!; k < units[2 * u + 1]!; k++) t += segs.tokens[k]!;
    tokensOf[u] = t;
  }
  const startOf = (u: number) => segs.starts[units[2 * u]!]!;
  const endOf = (u: number) => {
    const last = units[2 * u + 1]!;
    return last < segs.count ? segs.starts[last]! : segs.end;
  };
  const spans: [number, number][] = [];
  let first = 0;
  while (first < unitCount) {
    // Fill the chunk from `first`.
    let total = tokensOf[first]!;
    let next = first + 1;
    while (next < unitCount && total + tokensOf[next]! <= size) total += tokensOf[next++]!;
    spans.push([startOf(first), endOf(next - 1)]);
    if (next >= unitCount) break;
    // The next chunk starts with the last units of this one, up to `overlap` tokens, leaving room for unit `next`.
    let start = next;
    let shared = 0;
    while (start - 1 > first && shared + tokensOf[start - 1]! <= overlap && shared + tokensOf[start - 1]! + tokensOf[next]! <= size) {
      shared += tokensOf[--start]!;
    }
    first = start;
  }
  return spans;
}

/** `[start, end)` without leading and trailing whitespace. */
function trimSpan(text: string, start: number, end: number): { start: number; end: number } {
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return { start, end };
}

interface Section {
  /** Heading texts, outermost first. */
  headings: string[];
  /** The body: after the heading line, up to the next heading. */
  start: number;
  end: number;
}

/** ATX headings (`#` to `######` and a space) outside fenced code split the text into sections; one pass. */
function markdownSections(text: string): Section[] {
  const sections: Section[] = [];
  const stack: { level: number; text: string }[] = [];
  let fence: string | null = null;
  let bodyStart = 0;
  let lineStart = 0;
  while (lineStart <= text.length) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = text.length;
    const heading = fence === null ? atxHeading(text, lineStart, lineEnd) : null;
    const fenceMarker = fenceAt(text, lineStart, lineEnd);
    if (fenceMarker) {
      if (fence === null) fence = fenceMarker;
      else if (fenceMarker[0] === fence[0] && fenceMarker.length >= fence.length) fence = null;
    } else if (heading) {
      sections.push({ headings: stack.map((h) => h.text), start: bodyStart, end: lineStart });
      while (stack.length > 0 && stack[stack.length - 1]!.level >= heading.level) stack.pop();
      stack.push(heading);
      bodyStart = lineEnd;
    }
    lineStart = lineEnd + 1;
  }
  sections.push({ headings: stack.map((h) => h.text), start: bodyStart, end: text.length });
  return sections.filter((s) => s.end > s.start);
}

/** The fence marker (```` ``` ```` or `~~~`, 3+) opening the line, if any. */
function fenceAt(text: string, start: number, end: number): string | null {
  let i = start;
  while (i < end && i - start < 3 && text.charCodeAt(i) === 32) i++;
  const marker = text.charCodeAt(i);
  if (marker !== 0x60 && marker !== 0x7e) return null;
  let j = i;
  while (j < end && text.charCodeAt(j) === marker) j++;
  return j - i >= 3 ? text.slice(i, j) : null;
}

/** Longest heading text kept; a longer "heading" line is body text. */
const MAX_HEADING_CHARS = 500;

/** `# Title` (up to three spaces before, an optional closing run of `#`) → level and text, inline markup kept. */
function atxHeading(text: string, start: number, end: number): { level: number; text: string } | null {
  let i = start;
  while (i < end && i - start < 3 && text.charCodeAt(i) === 32) i++;
  let level = 0;
  while (i < end && text.charCodeAt(i) === 0x23 && level < 7) {
    level++;
    i++;
  }
  if (level === 0 || level > 6 || end - i > MAX_HEADING_CHARS) return null;
  if (i < end && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9) return null;
  let content = text.slice(i, end).trim();
  const closing = /\s#+$/.exec(content);
  if (closing) content = content.slice(0, closing.index).trim();
  else if (/^#+$/.test(content)) content = '';
  content = content.replace(/\s+/g, ' ');
  return content === '' ? null : { level, text: content };
}

/** "A > B > C"; outer headings dropped (then the last cut) while the prefix would take over a quarter of a chunk. */
function headingPrefix(headings: string[], chunkSize: number, tokenizer: MemoTokenizer): string {
  const budget = Math.floor(chunkSize / 4);
  let path = [...headings];
  while (path.length > 1 && tokenizer.count(path.join(' > ')) > budget) path = path.slice(1);
  let prefix = path.join(' > ');
  while (prefix !== '' && tokenizer.count(prefix) > budget) prefix = prefix.slice(0, Math.floor(prefix.length * 0.8)).trim();
  return prefix;
}
