import { MarkdownNodeParser, SentenceSplitter } from '@llamaindex/core/node-parser';
import { Document } from '@llamaindex/core/schema';
import type { ChunkDraft, Chunker } from '../../ports/document-processor.port';
import type { ChunkingSettings, ContentType } from '../../ports/knowledge-store.port';

/**
 * Chunking with LlamaIndex TS node parsers. SENTENCE: `SentenceSplitter` (sizes in tokens). MARKDOWN:
 * `MarkdownNodeParser` sections, each further split by sentences when too long, with the heading path
 * ("Install > Linux") prefixed so headings are searchable. AUTO: MARKDOWN for Markdown, SENTENCE otherwise.
 */
export class LlamaIndexChunker implements Chunker {
  private readonly splitters = new Map<string, SentenceSplitter>();
  private readonly markdown = new MarkdownNodeParser();

  chunk(text: string, contentType: ContentType, settings: ChunkingSettings): ChunkDraft[] {
    const strategy = settings.strategy === 'AUTO' ? (contentType === 'MARKDOWN' ? 'MARKDOWN' : 'SENTENCE') : settings.strategy;
    const splitter = this.splitter(settings);
    const pieces: { text: string; locate: string }[] = [];
    if (strategy === 'MARKDOWN') {
      const sections = this.markdown.getNodesFromDocuments([new Document({ text })]);
      for (const section of sections) {
        const body = section.getContent(0 as never).trim();
        if (!body) continue;
        const path = headingPath(section.metadata);
        for (const part of splitter.splitText(body)) {
          const clean = part.trim();
          if (!clean) continue;
          pieces.push({ text: withHeadingPath(clean, path), locate: clean });
        }
      }
    } else {
      for (const part of splitter.splitText(text)) {
        const clean = part.trim();
        if (clean) pieces.push({ text: clean, locate: clean });
      }
    }

    const drafts: ChunkDraft[] = [];
    let cursor = 0;
    for (const piece of pieces) {
      const at = locate(text, piece.locate, cursor);
      drafts.push({
        index: drafts.length,
        text: piece.text,
        startOffset: at,
        endOffset: at < 0 ? -1 : at + piece.locate.length,
      });
      if (at >= 0) cursor = at + 1;
    }
    return drafts;
  }

  private splitter(settings: ChunkingSettings): SentenceSplitter {
    const key = `${settings.chunkSize}/${settings.chunkOverlap}`;
    let splitter = this.splitters.get(key);
    if (!splitter) {
      splitter = new SentenceSplitter({ chunkSize: settings.chunkSize, chunkOverlap: settings.chunkOverlap });
      this.splitters.set(key, splitter);
    }
    return splitter;
  }
}

/** "Title > Section > Subsection" from MarkdownNodeParser's `Header_n` metadata. */
function headingPath(metadata: Record<string, unknown>): string {
  return Object.keys(metadata)
    .filter((k) => /^Header_\d+$/.test(k))
    .sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)))
    .map((k) => String(metadata[k]).trim())
    .filter(Boolean)
    .join(' > ');
}

/** Prefixes the section's heading path, replacing the bare heading the section starts with. */
function withHeadingPath(chunk: string, path: string): string {
  if (!path) return chunk;
  const last = path.split(' > ').at(-1)!;
  const body = chunk.startsWith(last) ? chunk.slice(last.length).trimStart() : chunk;
  return body ? `${path}\n\n${body}` : path;
}

/** Offset of `piece` in `text` searching forward from `from` (then from 0); whitespace-insensitive fallback; -1. */
function locate(text: string, piece: string, from: number): number {
  const direct = text.indexOf(piece, from);
  if (direct >= 0) return direct;
  const again = text.indexOf(piece);
  if (again >= 0) return again;
  const head = piece.slice(0, 40);
  const loose = text.indexOf(head, from);
  return loose;
}
