import type { ChunkingSettings, ContentType } from './knowledge-store.port';

export interface ParsedDocument {
  /** Clean text to chunk and index. */
  text: string;
  /** A title found in the content (HTML `<title>`/first `<h1>`, Markdown first `# `), if any. */
  title: string | null;
}

/** Turns raw content of a given type into clean text. Throws AppError BAD_USER_INPUT for content it cannot parse. */
export interface DocumentParser {
  parse(content: string, contentType: ContentType): ParsedDocument;
}

export interface ChunkDraft {
  index: number;
  text: string;
  /** Offsets into the parsed text, -1 when the splitter rewrote the text beyond recognition. */
  startOffset: number;
  endOffset: number;
}

/** Splits parsed text into chunks with the collection's settings. */
export interface Chunker {
  chunk(text: string, contentType: ContentType, settings: ChunkingSettings): ChunkDraft[];
}
