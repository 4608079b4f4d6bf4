import type { ChunkRecord, DocumentRecord } from './knowledge-store.port';

/** One retrieved chunk offered to the synthesizer; `n` is its 1-based citation number (`[n]`). */
export interface AnswerSource {
  n: number;
  chunk: ChunkRecord;
  document: DocumentRecord;
  /** The retrieval's ranking score (mode-dependent scale). */
  score: number;
  /** Cosine similarity to the question, when known. */
  vectorScore: number | null;
  /** BM25 score, when the chunk matched lexically. */
  keywordScore: number | null;
}

export interface Citation {
  /** The number inside the `[n]` marker as it appears in the answer. */
  marker: number;
  /** The answer sentence that carries the marker. */
  sentence: string;
  /** True when the cited source supports the sentence (lexical overlap above the threshold). */
  supported: boolean;
}

export interface Synthesis {
  /** Null when abstained. Every `[n]` marker in it refers to a source with that `n`. */
  answer: string | null;
  abstained: boolean;
  /** Why it abstained, for humans (e.g. "not found in the knowledge base"). */
  abstentionReason: string | null;
  citations: Citation[];
  /** Markers that pointed to no source or to a source that does not support the sentence (removed from `answer`). */
  unsupportedMarkers: number[];
}

export interface SynthesisRequest {
  question: string;
  /** Best first. */
  sources: AnswerSource[];
}

export interface AnswerSynthesizer {
  /** e.g. `extractive`, `llm:openai:gpt-4o-mini`. */
  readonly name: string;
  synthesize(request: SynthesisRequest, signal?: AbortSignal): Promise<Synthesis>;
}
