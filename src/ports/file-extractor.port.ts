import type { ContentType } from './knowledge-store.port';

/** A file turned into content the ingestion pipeline parses like any document. */
export interface ExtractedContent {
  content: string;
  contentType: ContentType;
  /** From the file's metadata (PDF Title), if any. */
  title: string | null;
}

/** Turns an uploaded file into content. Implemented by `adapters/parsing/file.extractor.ts`. */
export interface FileContentExtractor {
  /**
   * The file's text and type. The bytes decide what the file is; `filename` and `mediaType` (as the client declared
   * them) only choose between Markdown, HTML and plain text. Throws AppError BAD_USER_INPUT for a file it cannot
   * read (EMPTY_FILE, UNSUPPORTED_TYPE, CORRUPT_FILE, ENCRYPTED_FILE, NO_TEXT, PARSE_TIMEOUT) and PAYLOAD_TOO_LARGE
   * over a size bound (ARCHIVE_TOO_LARGE, TEXT_TOO_LARGE, TOO_MANY_PAGES), the reason in `extensions.reason`.
   * Takes `data` over: a PDF or DOCX may be moved to a reader thread, leaving `data` detached (empty).
   */
  extract(data: Buffer, filename: string, mediaType: string | null): Promise<ExtractedContent>;
}
