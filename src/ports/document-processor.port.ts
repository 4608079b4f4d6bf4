import type { ChunkingSettings, ContentType } from './knowledge-store.port';

export interface ParsedDocument {
  /** Clean text to chunk and index. */
  text: string;
  /** A title found in the content (HTML `<title>`/first `<h1>`, Markdown first `# `), if any. */
  title: string | null;
  /** What cleaning changed in the sender's text (control characters removed, unpaired surrogates replaced). */
  notices: string[];
}

/** Turns raw content of a given type into clean text. Throws AppError BAD_USER_INPUT for content it cannot parse. */
export interface DocumentParser {
  /** The clean text of `content` read as `contentType`, with the title it carries and what cleaning changed. */
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
  /** The chunks of `text`, in order, `index` counting from 0. */
  chunk(text: string, contentType: ContentType, settings: ChunkingSettings): ChunkDraft[];
}

/** What ingestion asks of parsing: the document as the sender gave it, and what its content hash covers. */
export interface ParseRequest {
  content: string;
  contentType: ContentType;
  /** The sender's title; null: the one found in the content. */
  title: string | null;
  source: string | null;
  chunking: ChunkingSettings;
  embedderName: string;
}

export interface ParsedForIngest extends ParsedDocument {
  /** sha256 of everything the stored chunks depend on: same hash, nothing to re-embed. */
  contentHash: string;
  /** sha256 of the raw content (the default external id is made from it). */
  rawHash: string;
}

/**
 * Where the CPU work of ingestion runs: parsing and chunking, off the event loop (worker threads) in the server.
 * `interactive` work (a caller is waiting) goes before `background` work (jobs) and may be refused with SERVER_BUSY
 * when the workers are saturated; background work waits. Parse failures are AppErrors BAD_USER_INPUT (reason
 * PARSE_TIMEOUT past the time limit), chunking ones reason CHUNK_TIMEOUT; PAYLOAD_TOO_LARGE (reason WORKER_MEMORY)
 * when a document needs more memory than a worker has.
 */
export interface DocumentProcessor {
  /** Parses the document and computes its content and raw hashes (see {@link ParsedForIngest}). */
  parse(request: ParseRequest, priority: WorkPriority): Promise<ParsedForIngest>;
  /** {@link Chunker.chunk} off the event loop. */
  chunk(text: string, contentType: ContentType, settings: ChunkingSettings, priority: WorkPriority): Promise<ChunkDraft[]>;
  /** Stops the workers; pending work rejects with UPSTREAM_UNAVAILABLE (reason SHUTTING_DOWN). */
  close(): Promise<void>;
}

export type WorkPriority = 'interactive' | 'background';
