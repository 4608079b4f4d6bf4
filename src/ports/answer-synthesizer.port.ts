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
  /** Tokens the model used, when a model was called and reported them; absent (or null) otherwise. */
  usage?: SynthesisUsage | null;
}

/** Token counts a model reported for one answer. */
export interface SynthesisUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/**
 * One step of a streamed synthesis: `delta`s of answer text as it is produced (for an LLM, the model's raw tokens:
 * markers it invents are still in them), then exactly one `done` with the verified {@link Synthesis}, which is
 * authoritative (its `answer` has unsupported markers removed). An abstention yields no delta at all.
 */
export type SynthesisEvent = { type: 'delta'; text: string } | { type: 'done'; synthesis: Synthesis };

export interface SynthesisRequest {
  question: string;
  /** Best first. */
  sources: AnswerSource[];
}

/**
 * Answers a question from retrieved sources, citing them with `[n]` markers. Implemented by the extractive
 * synthesizer (offline, the default) and the LLM synthesizer (OpenAI-compatible endpoints, Ollama).
 */
export interface AnswerSynthesizer {
  /** e.g. `extractive`, `llm:openai:gpt-4o-mini`. */
  readonly name: string;
  /**
   * The answer with its verified citations, or an abstention (`abstained`, no answer) when no source supports one.
   * Throws AppError UPSTREAM_TIMEOUT / UPSTREAM_UNAVAILABLE when a model provider fails; rejects when `signal` aborts.
   */
  synthesize(request: SynthesisRequest, signal?: AbortSignal): Promise<Synthesis>;
  /**
   * The same answer as {@link synthesize}, streamed. Aborting `signal`, or ending the iteration early (`return()`),
   * stops the work, provider call included. Optional: without it, callers stream the finished answer as one delta.
   */
  stream?(request: SynthesisRequest, signal?: AbortSignal): AsyncIterable<SynthesisEvent>;
}
