import { MarkdownNodeParser, SentenceSplitter } from '@llamaindex/core/node-parser';
import { Document, MetadataMode } from '@llamaindex/core/schema';
import { badInput } from '../../errors';
import type { ChunkDraft, Chunker } from '../../ports/document-processor.port';
import { memoTokenizer } from './token-counter';
import type { ChunkingSettings, ContentType } from '../../ports/knowledge-store.port';

/**
 * Chunking with LlamaIndex TS node parsers; sizes are tokens of LlamaIndex's tokenizer (cl100k_base).
 * - SENTENCE: `SentenceSplitter` (paragraphs, then sentences, then phrases and words), `chunkOverlap` tokens of
 *   whole splits repeated between neighbours.
 * - MARKDOWN: `MarkdownNodeParser` sections (code fences respected); each section's body split like SENTENCE, with
 *   its heading path ("Install > Linux") prefixed to every chunk so headings are searchable. The prefix counts
 *   towards `chunkSize`.
 * - AUTO: MARKDOWN for Markdown documents, SENTENCE otherwise.
 * Offsets locate the chunk's own text in the parsed text (for MARKDOWN, the part after the heading prefix): searched
 * forward from the previous chunk's start, whitespace-tolerant, -1/-1 when not found. Empty chunks are dropped and
 * indexes are contiguous from 0. Deterministic.
 *
 * LlamaIndex's splitter may exceed `chunkSize` by up to `chunkOverlap` (the overlap is added before the next split
 * is measured); this chunker splits with `chunkSize - chunkOverlap` so chunks stay within `chunkSize`.
 */
export class LlamaIndexChunker implements Chunker {
  readonly #splitters = new Map<string, SentenceSplitter>();
  readonly #markdown = new MarkdownNodeParser();

  chunk(text: string, contentType: ContentType, settings: ChunkingSettings): ChunkDraft[] {
    const { chunkSize, chunkOverlap } = settings;
    if (!Number.isInteger(chunkSize) || chunkSize < 8) throw badInput('chunkSize must be an integer of at least 8 tokens.');
    if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0 || chunkOverlap > chunkSize / 2) {
      throw badInput('chunkOverlap must be an integer between 0 and half of chunkSize.');
    }
    const strategy = settings.strategy === 'AUTO' ? (contentType === 'MARKDOWN' ? 'MARKDOWN' : 'SENTENCE') : settings.strategy;
    const pieces = strategy === 'MARKDOWN' ? this.#markdownPieces(text, settings) : this.#sentencePieces(text, settings);
    if (pieces.length === 0 && text.trim() !== '') pieces.push({ text: text.trim(), body: text.trim() });

    const drafts: ChunkDraft[] = [];
    let cursor = 0;
    for (const piece of pieces) {
      const span = locate(text, piece.body, cursor);
      let chunkText = piece.text;
      if (span) {
        cursor = span.start;
        // LlamaIndex's sentence tokenizer can alter text (see `locate`): the chunk takes the document's own words.
        const original = text.slice(span.start, span.end);
        if (original !== piece.body) chunkText = piece.text.slice(0, piece.text.length - piece.body.length) + original;
      } else {
        chunkText = chunkText.replace(PLACEHOLDER, '');
      }
      if (chunkText.trim() === '') continue;
      drafts.push({ index: drafts.length, text: chunkText, startOffset: span?.start ?? -1, endOffset: span?.end ?? -1 });
    }
    return drafts;
  }

  #sentencePieces(text: string, settings: ChunkingSettings): Piece[] {
    return this.#split(text, settings.chunkSize, settings.chunkOverlap).map((part) => ({ text: part, body: part }));
  }

  #markdownPieces(text: string, settings: ChunkingSettings): Piece[] {
    const pieces: Piece[] = [];
    for (const section of this.#markdown.getNodesFromDocuments([new Document({ text })])) {
      const headings = headingPath(section.metadata);
      const content = section.getContent(MetadataMode.NONE);
      // A section's text starts with its own heading (without the #s) when it has one.
      const last = headings.at(-1);
      const body = last !== undefined && content.startsWith(last) ? content.slice(last.length).trim() : content.trim();
      if (body === '') continue;
      const prefix = headingPrefix(headings, settings.chunkSize);
      const prefixTokens = prefix ? tokenCount(`${prefix}\n\n`) : 0;
      const size = settings.chunkSize - prefixTokens;
      const overlap = Math.min(settings.chunkOverlap, Math.floor(size / 4));
      for (const part of this.#split(body, size, overlap)) {
        pieces.push({ text: prefix ? `${prefix}\n\n${part}` : part, body: part });
      }
    }
    return pieces;
  }

  /** Non-empty, trimmed parts of at most `size` tokens with up to `overlap` tokens shared by neighbours. */
  #split(text: string, size: number, overlap: number): string[] {
    const parts = this.#splitter(Math.max(1, size - overlap), overlap).splitText(text);
    const out: string[] = [];
    for (const raw of parts) {
      const part = raw.trim();
      if (part === '') continue;
      // Token counts of splits do not add up exactly at their joins: re-split the rare part that ends up too long.
      const excess = tokenCount(part) - size;
      if (excess <= 0) out.push(part);
      else out.push(...this.#split(part, Math.max(1, size - excess - 2), 0));
    }
    return out;
  }

  #splitter(chunkSize: number, chunkOverlap: number): SentenceSplitter {
    const overlap = Math.min(chunkOverlap, chunkSize - 1);
    const key = `${chunkSize}/${overlap}`;
    let splitter = this.#splitters.get(key);
    if (!splitter) {
      // The same cl100k_base tokens, remembered per word piece: tokenising is most of the cost of chunking otherwise.
      splitter = new SentenceSplitter({ chunkSize, chunkOverlap: overlap, paragraphSeparator: '\n\n', tokenizer: memoTokenizer });
      this.#splitters.set(key, splitter);
    }
    return splitter;
  }
}

interface Piece {
  /** The chunk's text (with the heading prefix for Markdown). */
  text: string;
  /** The part of it that comes from the document, located for offsets. */
  body: string;
}

function tokenCount(text: string): number {
  return memoTokenizer.count(text);
}

/** Headings from MarkdownNodeParser's `Header_1`…`Header_n` metadata, outermost first. */
function headingPath(metadata: Record<string, unknown>): string[] {
  return Object.keys(metadata)
    .filter((key) => /^Header_\d+$/.test(key))
    .sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)))
    .map((key) => String(metadata[key]).replace(/\s+/g, ' ').trim())
    .filter((heading) => heading !== '');
}

/** "A > B > C"; outer headings dropped (then the last cut) while the prefix would take over a quarter of a chunk. */
function headingPrefix(headings: string[], chunkSize: number): string {
  const budget = Math.floor(chunkSize / 4);
  let path = [...headings];
  while (path.length > 1 && tokenCount(path.join(' > ')) > budget) path = path.slice(1);
  let prefix = path.join(' > ');
  while (prefix !== '' && tokenCount(prefix) > budget) prefix = prefix.slice(0, Math.floor(prefix.length * 0.8)).trim();
  return prefix;
}

/** Placeholders LlamaIndex's sentence tokenizer sometimes leaves in its output (an abbreviation inside a URL). */
const PLACEHOLDER = /\{\{(?:ABBREV|URI|NUMBER|DELIM)_\d+\}\}/g;

/**
 * Where `piece` occurs in `text` at or after `from`. Exactly if possible; otherwise by its words in order, separated by
 * anything but letters and digits, a leaked placeholder matching up to 300 characters: LlamaIndex's splitter can
 * rejoin whitespace, drop a comma that starts a phrase split ("e.g., Wender" → "e.g. Wender") or leave an internal
 * `{{ABBREV_n}}` in a URL. Null when the words are not there.
 */
function locate(text: string, piece: string, from: number): { start: number; end: number } | null {
  const exact = text.indexOf(piece, from);
  if (exact >= 0) return { start: exact, end: exact + piece.length };
  const segments = piece
    .split(PLACEHOLDER)
    .map((segment) => (segment.match(/[\p{L}\p{N}]+/gu) ?? []).join('[^\\p{L}\\p{N}]*'))
    .filter((segment) => segment !== '');
  if (segments.length === 0) return null;
  const pattern = new RegExp(segments.join('[\\s\\S]{0,300}?'), 'gu');
  pattern.lastIndex = from;
  const match = pattern.exec(text);
  if (!match) return null;
  // Words matched; take the piece's leading and trailing punctuation too when the text has it there.
  let start = match.index;
  let end = match.index + match[0].length;
  const lead = /^[^\p{L}\p{N}\s]*/u.exec(piece)![0];
  const trail = /[^\p{L}\p{N}\s]*$/u.exec(piece)![0];
  if (lead && text.slice(start - lead.length, start) === lead) start -= lead.length;
  if (trail && text.slice(end, end + trail.length) === trail) end += trail.length;
  return { start, end };
}
