import { sha256Hex } from '../../ids';
import type { ChunkDraft, ParsedForIngest, ParseRequest } from '../../ports/document-processor.port';
import type { ChunkingSettings, ContentType } from '../../ports/knowledge-store.port';
import { ContentParser } from './content.parser';
import { TextChunker } from './text.chunker';

const parser = new ContentParser();
const chunker = new TextChunker();

/** Parsing plus the hashes ingestion decides on; what a worker thread runs for `parse`. */
export function parseForIngest(request: ParseRequest): ParsedForIngest {
  const parsed = parser.parse(request.content, request.contentType);
  const title = request.title ?? parsed.title;
  const { chunking } = request;
  const contentHash = sha256Hex(
    JSON.stringify([
      request.contentType,
      chunking.strategy,
      chunking.chunkSize,
      chunking.chunkOverlap,
      request.embedderName,
      title,
      request.source,
      parsed.text,
    ]),
  );
  return { ...parsed, title, contentHash, rawHash: sha256Hex(request.content) };
}

/** A text to chunk, as a worker thread's `chunk` task takes it. */
export interface ChunkInput {
  text: string;
  contentType: ContentType;
  settings: ChunkingSettings;
}

/** What a worker thread runs for `chunk`. */
export function chunkText(text: string, contentType: ContentType, settings: ChunkingSettings): ChunkDraft[] {
  return chunker.chunk(text, contentType, settings);
}

/**
 * Chunks as offsets into the text plus their distinct prefixes: what crosses the thread boundary instead of
 * thousands of chunk objects and their text (the receiving thread has the text already). `prefixOf[i]` indexes
 * `prefixes` ('' for none).
 */
export interface PackedChunks {
  offsets: Int32Array;
  prefixOf: Int32Array;
  prefixes: string[];
}

export function packChunks(text: string, drafts: readonly ChunkDraft[]): PackedChunks {
  const offsets = new Int32Array(drafts.length * 2);
  const prefixOf = new Int32Array(drafts.length);
  const prefixes: string[] = [];
  const prefixIds = new Map<string, number>();
  drafts.forEach((draft, i) => {
    offsets[2 * i] = draft.startOffset;
    offsets[2 * i + 1] = draft.endOffset;
    const body = text.slice(draft.startOffset, draft.endOffset);
    if (draft.startOffset < 0 || !draft.text.endsWith(body)) throw new Error('a chunk is not a span of its text');
    const prefix = draft.text.slice(0, draft.text.length - body.length);
    let id = prefixIds.get(prefix);
    if (id === undefined) {
      id = prefixes.push(prefix) - 1;
      prefixIds.set(prefix, id);
    }
    prefixOf[i] = id;
  });
  return { offsets, prefixOf, prefixes };
}

export function unpackChunks(text: string, packed: PackedChunks): ChunkDraft[] {
  const drafts: ChunkDraft[] = new Array<ChunkDraft>(packed.prefixOf.length);
  for (let i = 0; i < drafts.length; i++) {
    const start = packed.offsets[2 * i]!;
    const end = packed.offsets[2 * i + 1]!;
    drafts[i] = { index: i, text: packed.prefixes[packed.prefixOf[i]!]! + text.slice(start, end), startOffset: start, endOffset: end };
  }
  return drafts;
}
