import { AsyncLocalStorage } from 'node:async_hooks';
import type { ChatMessage, ChatResponseChunk, LLM, MessageContent } from '@llamaindex/core/llms';
import { llamaindexOllama, llamaindexOpenAi } from '../llamaindex-providers';
import type { CircuitStateName } from '../resilience/circuit-state';
import { createResiliencePolicy, isCircuitOpenError, type ResiliencePolicy } from '../resilience/resilience-policy';
import { AppError, isAppError } from '../../errors';
import { causeChain, hasNetworkFailureCause, isTransientHttpStatus } from '../resilience/transient-errors';
import { DEFAULT_MIN_SUPPORT, stripMarkers, verifyCitations } from '../../retrieval/citations';
import { DEFAULT_MIN_RELEVANCE, NOT_FOUND_REASON, assessRelevance } from '../../retrieval/relevance';
import type {
  AnswerSource,
  AnswerSynthesizer,
  Synthesis,
  SynthesisEvent,
  SynthesisRequest,
  SynthesisUsage,
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
   * Bound of one attempt, in milliseconds: the whole reply of a non-streaming call; for a streamed one, the wait for
   * the first token and for each next one. Past it the attempt is aborted and the call fails with UPSTREAM_TIMEOUT
   * (a timed-out attempt is not retried: a slow model stays slow, and the caller has waited long enough).
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Retries after the first attempt on transient failures (HTTP 408, 429, 5xx, connection refused or reset), with
   * exponential backoff. A streamed call is retried only before its first token reached the caller.
   * @default 2
   */
  retries?: number;
  /** First retry delay in milliseconds; doubles each retry (with jitter). @default 200 */
  retryInitialDelayMs?: number;
  /** Largest retry delay in milliseconds. @default 2000 */
  retryMaxDelayMs?: number;
  /**
   * Consecutive failed attempts (transient errors or timeouts) that open the circuit: then calls fail fast with
   * UPSTREAM_UNAVAILABLE without reaching the provider, until one trial call succeeds.
   * @default 5
   */
  breakerThreshold?: number;
  /** How long an open circuit fails fast before letting one trial call through, in milliseconds. @default 30000 */
  breakerHalfOpenAfterMs?: number;
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
  /**
   * Extra request options for streamed calls; for OpenAI-compatible APIs, `{ stream_options: { include_usage: true } }`
   * makes them report token usage (set by the app for `openai`; Ollama reports usage without it).
   * @default {}
   */
  streamChatOptions?: Record<string, unknown>;
}

/** The signal of the current provider attempt, read by the fetch functions of {@link createOpenAiLlm}/{@link createOllamaLlm}. */
const attemptSignal = new AsyncLocalStorage<AbortSignal>();

/**
 * `fetch` that also aborts with the current attempt's signal: LlamaIndex's chat API takes no AbortSignal, so the
 * synthesizer hands it over through async context. Aborting the attempt (timeout, caller gone) closes the HTTP
 * request, so no provider call outlives the request that made it.
 *
 * `timeoutMs` bounds the wait for the response (its headers), as the OpenAI client's own timeout does, not the
 * body: a streamed reply is bounded per token by the synthesizer, and a whole-request deadline would cut off a long
 * answer that is still arriving.
 */
export function attemptAwareFetch(base: typeof fetch = fetch, timeoutMs?: number): typeof fetch {
  return async (input, init) => {
    const response = timeoutMs ? new AbortController() : undefined;
    const timer =
      response && setTimeout(() => response.abort(new DOMException(`No response within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
    const signals = [init?.signal, attemptSignal.getStore(), response?.signal].filter((s): s is AbortSignal => !!s);
    try {
      return await base(input, { ...init, signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0] });
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Thrown inside an attempt when its own bound is hit (mapped to UPSTREAM_TIMEOUT). */
class AttemptTimeout extends Error {
  override readonly name = 'AttemptTimeout';
}

/**
 * Answers with a chat model over the numbered sources, then verifies every `[n]` the model wrote: markers naming no
 * source or a source that does not support their sentence are removed and reported. Abstains without calling the
 * model when no source is relevant enough, and when the model replies `NOT_FOUND`. Every model call is bounded
 * (`timeoutMs`), retried on transient failures and goes through a circuit breaker (`createResiliencePolicy`), one per
 * synthesizer.
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
  private readonly streamChatOptions: Record<string, unknown>;
  private readonly policy: ResiliencePolicy;

  constructor(options: LlmSynthesizerOptions) {
    this.llm = options.llm;
    this.name = options.name;
    this.provider = options.name.split(':')[1] ?? options.name;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxSourceChars = options.maxSourceChars ?? 2000;
    this.minRelevance = options.minRelevance ?? DEFAULT_MIN_RELEVANCE;
    this.minSupport = options.minSupport ?? DEFAULT_MIN_SUPPORT;
    this.abstainWhenUnverified = options.abstainWhenUnverified ?? true;
    this.streamChatOptions = options.streamChatOptions ?? {};
    // Attempts are bounded here (`call`, `nextWithin`), not by the policy: a stream outlives the attempt that opened it.
    this.policy = createResiliencePolicy({
      isTransient: isTransientLlmError,
      isFailure: (e) => isTransientLlmError(e) || e instanceof AttemptTimeout,
      retries: options.retries ?? 2,
      backoff: { initialDelayMs: options.retryInitialDelayMs ?? 200, maxDelayMs: options.retryMaxDelayMs ?? 2000 },
      breaker: { threshold: options.breakerThreshold ?? 5, halfOpenAfterMs: options.breakerHalfOpenAfterMs ?? 30_000 },
    });
  }

  /** The breaker's state: `closed` (calls go through), `open` (failing fast), `half-open` (one trial call). */
  get circuit(): CircuitStateName {
    return this.policy.state;
  }

  async synthesize({ question, sources }: SynthesisRequest, signal?: AbortSignal): Promise<Synthesis> {
    signal?.throwIfAborted();
    if (!this.relevant(question, sources)) return abstain(NOT_FOUND_REASON);
    const messages = buildMessages(question, sources, this.maxSourceChars);
    const { text, usage } = await this.call(signal, async (attempt) => {
      const response = await attemptSignal.run(attempt, () => this.llm.chat({ messages }));
      return { text: textOf(response.message.content), usage: usageOf(response.raw) };
    });
    return this.finish(text, sources, usage);
  }

  /**
   * The model's tokens as they arrive (reasoning blocks and a leading `NOT_FOUND` held back), then the verified
   * synthesis. Ending the iteration early or aborting `signal` aborts the provider request.
   */
  async *stream({ question, sources }: SynthesisRequest, signal?: AbortSignal): AsyncGenerator<SynthesisEvent> {
    signal?.throwIfAborted();
    if (!this.relevant(question, sources)) {
      yield { type: 'done', synthesis: abstain(NOT_FOUND_REASON) };
      return;
    }
    const messages = buildMessages(question, sources, this.maxSourceChars);
    // One controller for the accepted attempt, kept after the policy returns: it aborts the HTTP stream when the
    // consumer stops, times out between tokens, or the caller aborts.
    let live: AbortController | undefined;
    const opened = await this.call(
      signal,
      async (attempt, controller) => {
        const iterable = await attemptSignal.run(attempt, () =>
          this.llm.chat({ messages, stream: true, additionalChatOptions: this.streamChatOptions }),
        );
        const iterator = iterable[Symbol.asyncIterator]();
        const first = await attemptSignal.run(attempt, () => iterator.next());
        live = controller;
        return { iterator, first };
      },
      true,
    );
    const { iterator } = opened;
    const onCallerAbort = () => live?.abort(signal?.reason);
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    let raw = '';
    let emitted = 0;
    let usage: SynthesisUsage | null = null;
    let step: IteratorResult<ChatResponseChunk> = opened.first;
    // One abort promise for the whole stream (a listener per token would pile up on the signal).
    const aborted = rejectOnAbort(live!.signal);
    aborted.catch(() => undefined);
    try {
      while (!step.done) {
        raw += step.value.delta;
        usage = usageOf(step.value.raw) ?? usage;
        const shown = visibleText(raw);
        if (shown.length > emitted) {
          yield { type: 'delta', text: shown.slice(emitted) };
          emitted = shown.length;
        }
        step = await this.nextWithin(iterator, live!, aborted, signal);
      }
    } catch (error) {
      throw this.toAppError(error, signal);
    } finally {
      signal?.removeEventListener('abort', onCallerAbort);
      // Stops the HTTP stream when the consumer left early or something failed; a no-op after a complete reply.
      live?.abort(new Error('stream closed'));
      void iterator.return?.().catch(() => undefined);
    }
    yield { type: 'done', synthesis: this.finish(raw, sources, usage) };
  }

  private relevant(question: string, sources: readonly AnswerSource[]): boolean {
    return sources.length > 0 && assessRelevance(question, sources) >= this.minRelevance;
  }

  /** The verified synthesis of a complete reply. */
  private finish(text: string, sources: readonly AnswerSource[], usage: SynthesisUsage | null): Synthesis {
    const reply = cleanReply(text);
    if (!reply || isNotFound(reply)) return { ...abstain(NOT_FOUND_REASON), usage };
    const verified = verifyCitations(reply, sources, { minSupport: this.minSupport });
    const grounded = verified.citations.some((c) => c.supported);
    if (!verified.answer || (this.abstainWhenUnverified && !grounded)) {
      return { ...abstain(UNVERIFIED_REASON), citations: verified.citations, unsupportedMarkers: verified.unsupportedMarkers, usage };
    }
    return {
      answer: verified.answer,
      abstained: false,
      abstentionReason: null,
      citations: verified.citations,
      unsupportedMarkers: verified.unsupportedMarkers,
      usage,
    };
  }

  /**
   * Runs `attempt` under retry and breaker, each attempt with its own AbortController that fires after `timeoutMs`
   * or when the caller aborts; the attempt also loses a race against that signal, so a model client that ignores
   * it cannot hold the caller. `keepOpen`: the returned value still uses the attempt (a stream), so its controller
   * is not aborted on success.
   */
  private async call<T>(
    signal: AbortSignal | undefined,
    attempt: (signal: AbortSignal, controller: AbortController) => Promise<T>,
    keepOpen = false,
  ): Promise<T> {
    try {
      return await this.policy.execute(
        async () => {
          signal?.throwIfAborted();
          const controller = new AbortController();
          const timer = setTimeout(() => controller.abort(new AttemptTimeout()), this.timeoutMs);
          const onAbort = () => controller.abort(signal!.reason);
          signal?.addEventListener('abort', onAbort, { once: true });
          let ok = false;
          try {
            const work = attempt(controller.signal, controller);
            work.catch(() => undefined);
            const result = await Promise.race([work, rejectOnAbort(controller.signal)]);
            ok = true;
            return result;
          } catch (error) {
            // The client's own error ("Request was aborted") hides why: report the reason the attempt was aborted.
            throw controller.signal.aborted ? controller.signal.reason : error;
          } finally {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
            if (!ok || !keepOpen) controller.abort(new Error('attempt finished'));
          }
        },
        { signal },
      );
    } catch (error) {
      throw this.toAppError(error, signal);
    }
  }

  /** The next chunk of a stream, bounded by `timeoutMs` (between tokens) and the caller's signal. */
  private async nextWithin(
    iterator: AsyncIterator<ChatResponseChunk>,
    controller: AbortController,
    aborted: Promise<never>,
    signal: AbortSignal | undefined,
  ): Promise<IteratorResult<ChatResponseChunk>> {
    signal?.throwIfAborted();
    const timer = setTimeout(() => controller.abort(new AttemptTimeout()), this.timeoutMs);
    try {
      const next = attemptSignal.run(controller.signal, () => iterator.next());
      next.catch(() => undefined);
      return await Promise.race([next, aborted]);
    } catch (error) {
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      clearTimeout(timer);
    }
  }

  private toAppError(error: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted && error === signal.reason) return error;
    if (isAppError(error)) return error;
    if (error instanceof AttemptTimeout) return this.timeoutError(error);
    if (isCircuitOpenError(error)) {
      return new AppError(
        'UPSTREAM_UNAVAILABLE',
        `The ${this.provider} model is unavailable (circuit open after ${this.policy.breakerThreshold} consecutive failures); not calling it.`,
        { provider: this.provider, circuit: 'open' },
        { cause: error },
      );
    }
    return this.mapError(error);
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

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * Worth retrying: HTTP 408, 429 and 5xx, and connection failures (refused, reset, "fetch failed", the OpenAI
 * client's APIConnectionError). Never 4xx otherwise, never kbql's own errors, a caller's abort or an attempt timeout.
 */
export function isTransientLlmError(error: unknown): boolean {
  if (isAppError(error) || error instanceof AttemptTimeout || isCircuitOpenError(error)) return false;
  const status = upstreamStatus(error);
  if (status !== null) return isTransientHttpStatus(status);
  const chain = causeChain(error);
  const aborted = chain.findIndex(
    (e) => e.name === 'AbortError' || e.name === 'APIUserAbortError' || e.name === 'APIConnectionTimeoutError',
  );
  const connection = chain.findIndex((e) => e.name === 'APIConnectionError');
  if (connection !== -1 && (aborted === -1 || connection < aborted)) return true;
  return aborted === -1 && hasNetworkFailureCause(error);
}

/** Token usage from a provider's raw response or stream chunk (OpenAI `usage`, Ollama eval counts), or null. */
export function usageOf(raw: unknown): SynthesisUsage | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as {
    usage?: { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown } | null;
    prompt_eval_count?: unknown;
    eval_count?: unknown;
  };
  if (r.usage && typeof r.usage.prompt_tokens === 'number' && typeof r.usage.completion_tokens === 'number') {
    const total = typeof r.usage.total_tokens === 'number' ? r.usage.total_tokens : r.usage.prompt_tokens + r.usage.completion_tokens;
    return { promptTokens: r.usage.prompt_tokens, completionTokens: r.usage.completion_tokens, totalTokens: total };
  }
  if (typeof r.prompt_eval_count === 'number' && typeof r.eval_count === 'number') {
    return { promptTokens: r.prompt_eval_count, completionTokens: r.eval_count, totalTokens: r.prompt_eval_count + r.eval_count };
  }
  return null;
}

/**
 * The part of a partial reply that may be shown: complete `<think>` blocks removed, an unclosed one (or a tag still
 * being written) cut off, leading whitespace dropped, and nothing while it could still be the `NOT_FOUND` reply.
 */
export function visibleText(raw: string): string {
  let text = raw.replace(/<think>[\s\S]*?<\/think>/gi, '');
  const open = text.search(/<think>/i);
  if (open >= 0) text = text.slice(0, open);
  const partialTag = /<(?:t(?:h(?:i(?:n(?:k)?)?)?)?)?$/i.exec(text);
  if (partialTag) text = text.slice(0, partialTag.index);
  text = text.replace(/^\s+/, '');
  const probe = text.replace(/^\W+/, '');
  if (
    NOT_FOUND_TOKEN.startsWith(probe.slice(0, NOT_FOUND_TOKEN.length)) &&
    (probe.length <= NOT_FOUND_TOKEN.length || probe.startsWith(NOT_FOUND_TOKEN))
  ) {
    return '';
  }
  return text;
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
   * Retries of the HTTP client itself on 429/5xx/connection errors. Keep 0 under an {@link LlmSynthesizer}: it
   * retries with backoff and counts failures in its breaker, which client-side retries would hide.
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
  return new (llamaindexOpenAi().OpenAI)({
    model: options.model,
    baseURL: options.baseURL,
    apiKey: options.apiKey ?? 'unused',
    timeout: Math.max(1, Math.round(options.timeoutMs)),
    maxRetries: options.maxRetries ?? 0,
    maxTokens: options.maxTokens ?? 512,
    temperature: 0,
    // Aborts the HTTP request with the synthesizer's attempt (timeout, retry, caller gone): see attemptAwareFetch.
    additionalSessionOptions: { fetch: attemptAwareFetch() },
  });
}

export interface OllamaLlmOptions {
  /** e.g. `http://127.0.0.1:11434`. */
  host: string;
  model: string;
  /** Every HTTP request to Ollama is aborted when no response (headers) arrived within this many milliseconds. */
  timeoutMs: number;
}

/** An Ollama chat model, deterministic (temperature 0), its requests aborted when Ollama does not answer within `timeoutMs`. */
export function createOllamaLlm(options: OllamaLlmOptions): LLM {
  const timeoutMs = Math.max(1, Math.round(options.timeoutMs));
  const fetchWithTimeout = attemptAwareFetch(fetch, timeoutMs);
  const llm = new (llamaindexOllama().Ollama)({
    model: options.model,
    config: { host: options.host, fetch: fetchWithTimeout },
    options: { temperature: 0 },
  });
  // The ollama client lists every streamed request until its stream reports `done`, for its abort-all `abort()`.
  // Streams kbql aborts (caller gone, timeout) or that fail never get there and would stay referenced, with their
  // response, for the life of the process. kbql aborts through the fetch signal instead, so nothing is listed.
  (llm.ollama as unknown as { ongoingStreamedRequests: unknown[] }).ongoingStreamedRequests = new UnlistedRequests();
  return llm;
}

/** A list that keeps nothing (see {@link createOllamaLlm}). */
class UnlistedRequests<T> extends Array<T> {
  override push(): number {
    return this.length;
  }
}
