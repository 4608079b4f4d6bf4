import type { ChatMessage, LLM, MessageContent } from '@llamaindex/core/llms';
import { Ollama } from '@llamaindex/ollama';
import { OpenAI } from '@llamaindex/openai';
import { AppError } from '../../errors';
import { DEFAULT_MIN_SUPPORT, stripMarkers, verifyCitations } from '../../modules/query/citations';
import { DEFAULT_MIN_RELEVANCE, NOT_FOUND_REASON, assessRelevance } from '../../modules/query/relevance';
import type {
  AnswerSource,
  AnswerSynthesizer,
  Synthesis,
  SynthesisRequest,
} from '../../ports/answer-synthesizer.port';

/** The reply the prompt asks for when the sources do not hold the answer. */
export const NOT_FOUND_TOKEN = 'NOT_FOUND';

/** Reason given when the model answered but none of its sentences is backed by a source it cited. */
export const UNVERIFIED_REASON = 'the generated answer could not be verified against the sources';

export interface LlmSynthesizerOptions {
  /** Any LlamaIndex chat model; see {@link createOpenAiLlm} and {@link createOllamaLlm}. */
  llm: LLM;
  /** Reported as the synthesizer's name, e.g. `llm:openai:gpt-4o-mini`; its second segment names the provider in errors. */
  name: string;
  /**
   * Deadline for the model's reply, in milliseconds; past it the call fails with UPSTREAM_TIMEOUT.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Characters of each source's chunk text put in the prompt (cut at a word boundary).
   * @default 2000
   */
  maxSourceChars?: number;
  /**
   * Least relevance (see `src/modules/query/relevance.ts`, the same notion and calibration as the extractive
   * synthesizer) for the model to be asked at all; below it the synthesizer abstains without calling it.
   * @default 0.35
   */
  minRelevance?: number;
  /**
   * Citation support threshold for `verifyCitations`.
   * @default 0.5
   */
  minSupport?: number;
  /**
   * Abstain (reason {@link UNVERIFIED_REASON}) when no sentence of the reply keeps a supported citation, rather than
   * return an answer grounded in nothing the user can check.
   * @default true
   */
  abstainWhenUnverified?: boolean;
}

/**
 * Answers with a chat model over the numbered sources, then verifies every `[n]` the model wrote: markers naming no
 * source or a source that does not support their sentence are removed and reported. Abstains without calling the
 * model when no source is relevant enough, and when the model replies `NOT_FOUND`.
 */
export class LlmSynthesizer implements AnswerSynthesizer {
  readonly name: string;
  private readonly llm: LLM;
  private readonly provider: string;
  private readonly timeoutMs: number;
  private readonly maxSourceChars: number;
  private readonly minRelevance: number;
  private readonly minSupport: number;
  private readonly abstainWhenUnverified: boolean;

  constructor(options: LlmSynthesizerOptions) {
    this.llm = options.llm;
    this.name = options.name;
    this.provider = options.name.split(':')[1] ?? options.name;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxSourceChars = options.maxSourceChars ?? 2000;
    this.minRelevance = options.minRelevance ?? DEFAULT_MIN_RELEVANCE;
    this.minSupport = options.minSupport ?? DEFAULT_MIN_SUPPORT;
    this.abstainWhenUnverified = options.abstainWhenUnverified ?? true;
  }

  async synthesize({ question, sources }: SynthesisRequest, signal?: AbortSignal): Promise<Synthesis> {
    signal?.throwIfAborted();
    if (sources.length === 0 || assessRelevance(question, sources) < this.minRelevance) {
      return abstain(NOT_FOUND_REASON);
    }

    const reply = cleanReply(await this.chat(buildMessages(question, sources, this.maxSourceChars), signal));
    if (!reply || isNotFound(reply)) return abstain(NOT_FOUND_REASON);

    const verified = verifyCitations(reply, sources, { minSupport: this.minSupport });
    const grounded = verified.citations.some((c) => c.supported);
    if (!verified.answer || (this.abstainWhenUnverified && !grounded)) {
      return { ...abstain(UNVERIFIED_REASON), citations: verified.citations, unsupportedMarkers: verified.unsupportedMarkers };
    }
    return {
      answer: verified.answer,
      abstained: false,
      abstentionReason: null,
      citations: verified.citations,
      unsupportedMarkers: verified.unsupportedMarkers,
    };
  }

  /** One non-streaming chat call bounded by `timeoutMs` and the caller's signal, errors mapped to AppError. */
  private async chat(messages: ChatMessage[], signal?: AbortSignal): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const call = this.llm.chat({ messages });
    // The losing promise must not surface later as an unhandled rejection.
    call.catch(() => undefined);
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.timeoutError()), this.timeoutMs);
      if (signal) {
        onAbort = () => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    try {
      const response = await Promise.race([call, deadline]);
      return textOf(response.message.content);
    } catch (error) {
      if (error instanceof AppError || (signal?.aborted && error === signal.reason)) throw error;
      throw this.mapError(error);
    } finally {
      clearTimeout(timer);
      if (signal && onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  private timeoutError(cause?: unknown): AppError {
    return new AppError(
      'UPSTREAM_TIMEOUT',
      `The ${this.provider} model did not answer within ${this.timeoutMs} ms.`,
      { provider: this.provider, timeoutMs: this.timeoutMs },
      { cause },
    );
  }

  /** Transport and API errors; never copies the upstream message into details (it may echo a masked key). */
  private mapError(error: unknown): AppError {
    const name = error instanceof Error ? error.name : '';
    if (/timeout/i.test(name) || name === 'AbortError') return this.timeoutError(error);
    const status = upstreamStatus(error);
    return new AppError(
      'UPSTREAM_UNAVAILABLE',
      `The ${this.provider} model could not be reached or failed${status ? ` (HTTP ${status})` : ''}.`,
      status ? { provider: this.provider, upstreamStatus: status } : { provider: this.provider },
      { cause: error },
    );
  }
}

function upstreamStatus(error: unknown): number | null {
  if (typeof error !== 'object' || error === null) return null;
  const e = error as { status?: unknown; status_code?: unknown };
  const status = typeof e.status === 'number' ? e.status : e.status_code;
  return typeof status === 'number' ? status : null;
}

const SYSTEM_PROMPT = [
  'You answer questions using only the numbered sources you are given.',
  'Rules:',
  '1. Use only facts stated in the sources. Never add outside knowledge.',
  '2. End every sentence with the number of the source that supports it in square brackets, like [1] or [1][3]. ' +
    'Cite only source numbers that appear below.',
  '3. Be brief: answer in one to three sentences.',
  `4. If the sources do not contain the answer, reply exactly ${NOT_FOUND_TOKEN} and nothing else.`,
].join('\n');

/** The chat messages: rules as the system message, numbered sources and the question as the user message. */
export function buildMessages(question: string, sources: readonly AnswerSource[], maxSourceChars: number): ChatMessage[] {
  const blocks = sources.map((s) => {
    const title = s.document.title ?? s.document.externalId;
    // The chunk's own footnote markers ("[12]") would read as citations.
    return `[${s.n}] ${oneLine(title)}\n${truncate(stripMarkers(s.chunk.text), maxSourceChars)}`;
  });
  return [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: `Sources:\n\n${blocks.join('\n\n')}\n\nQuestion: ${oneLine(question)}\nAnswer:` },
  ];
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max * 0.8 ? cut.slice(0, space) : cut).trimEnd()} …`;
}

function textOf(content: MessageContent): string {
  if (typeof content === 'string') return content;
  return content.map((part) => (part.type === 'text' ? part.text : '')).join('');
}

/** Drops reasoning blocks some local models emit (`<think>…</think>`) and surrounding whitespace. */
function cleanReply(text: string): string {
  return text.replace(/<think>[\s\S]*?<\/think>/gi, '').trim();
}

/** `NOT_FOUND` alone, or opening or closing the reply (models sometimes add a word of explanation). */
function isNotFound(reply: string): boolean {
  return new RegExp(`^\\W*${NOT_FOUND_TOKEN}\\b|\\b${NOT_FOUND_TOKEN}\\W*$`).test(reply);
}

function abstain(reason: string): Synthesis {
  return { answer: null, abstained: true, abstentionReason: reason, citations: [], unsupportedMarkers: [] };
}

export interface OpenAiLlmOptions {
  /** Base URL of an OpenAI-compatible API including its version path, e.g. `https://api.openai.com/v1`. */
  baseURL: string;
  /** Sent as the bearer token; local servers that need none get a placeholder (the environment is never read). */
  apiKey?: string;
  model: string;
  /** Per-request timeout of the HTTP client, in milliseconds (the synthesizer's own deadline also applies). */
  timeoutMs: number;
  /**
   * Retries of the HTTP client on 429/5xx/connection errors (each waits ≥ 0.5 s, within the synthesizer's deadline).
   * @default 0
   */
  maxRetries?: number;
  /**
   * Longest reply, in tokens.
   * @default 512
   */
  maxTokens?: number;
}

/** An OpenAI (or OpenAI-compatible: vLLM, llama.cpp, LM Studio…) chat model, deterministic (temperature 0). */
export function createOpenAiLlm(options: OpenAiLlmOptions): LLM {
  return new OpenAI({
    model: options.model,
    baseURL: options.baseURL,
    apiKey: options.apiKey ?? 'unused',
    timeout: Math.max(1, Math.round(options.timeoutMs)),
    maxRetries: options.maxRetries ?? 0,
    maxTokens: options.maxTokens ?? 512,
    temperature: 0,
  });
}

export interface OllamaLlmOptions {
  /** e.g. `http://127.0.0.1:11434`. */
  host: string;
  model: string;
  /** Every HTTP request to Ollama is aborted after this many milliseconds. */
  timeoutMs: number;
}

/** An Ollama chat model, deterministic (temperature 0), its requests aborted after `timeoutMs`. */
export function createOllamaLlm(options: OllamaLlmOptions): LLM {
  const timeoutMs = Math.max(1, Math.round(options.timeoutMs));
  const fetchWithTimeout: typeof fetch = (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    return fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout });
  };
  return new Ollama({ model: options.model, config: { host: options.host, fetch: fetchWithTimeout }, options: { temperature: 0 } });
}
