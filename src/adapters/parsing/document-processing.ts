import { sha256Hex } from '../../ids';
import type { ChunkDraft, DocumentProcessor, ParsedForIngest, ParseRequest } from '../../ports/document-processor.port';
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
    JSON.stringify([request.contentType, chunking.strategy, chunking.chunkSize, chunking.chunkOverlap, request.embedderName, title, request.source, parsed.text]),
  );
  return { ...parsed, title, contentHash, rawHash: sha256Hex(request.content) };
}

/** What a worker thread runs for `chunk`. */
export function chunkText(text: string, contentType: ContentType, settings: ChunkingSettings): ChunkDraft[] {
  return chunker.chunk(text, contentType, settings);
}

/**
 * The same work on the calling thread: for tools and tests that process a few small documents. The server uses the
 * worker pool (`adapters/workers/ingest.pool.ts`).
 */
export class InlineDocumentProcessor implements DocumentProcessor {
  async parse(request: ParseRequest): Promise<ParsedForIngest> {
    return parseForIngest(request);
  }

  async chunk(text: string, contentType: ContentType, settings: ChunkingSettings): Promise<ChunkDraft[]> {
    return chunkText(text, contentType, settings);
  }

  async close(): Promise<void> {}
}
