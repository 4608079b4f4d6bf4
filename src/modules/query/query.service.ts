import { badInput, isAppError } from '../../errors';
import type {
  AnswerSource,
  AnswerSynthesizer,
  Citation,
  Synthesis,
  SynthesisEvent,
  SynthesisRequest,
  SynthesisUsage,
} from '../../ports/answer-synthesizer.port';
import type { CollectionRecord, EmbedderInfo, Filter, KnowledgeStore, SearchHit, SearchMode } from '../../ports/knowledge-store.port';
import { noTelemetry, type Telemetry } from '../../ports/telemetry.port';
import { accessScope } from '../auth/principal';
import type { Access } from '../../ports/principal.port';
import type { CollectionService } from '../collections/collection.service';
import { compileFilter, type FilterSpec } from './filter';
import { highlightSources, type Highlight } from '../../retrieval/highlight';
import { QueryResultCache, type CachedAnswer, type CachedSearch, type Claim } from './query-cache';
import { NOT_FOUND_REASON } from '../../retrieval/relevance';

export interface SearchArgs {
  collection: string;
  query: string;
  mode?: SearchMode | null;
  alpha?: number | null;
  topK?: number | null;
  offset?: number | null;
  filter?: FilterSpec | null;
}

export interface SearchResult {
  collection: CollectionRecord;
  mode: SearchMode;
  alpha: number;
  hits: SearchHit[];
  tookMs: number;
}

export interface AskArgs {
  collection: string;
  question: string;
  mode?: SearchMode | null;
  alpha?: number | null;
  topK?: number | null;
  filter?: FilterSpec | null;
}

/** A source as answers return it: the retrieved chunk with its document, and the sentence to look at. */
export interface AnswerSourceView extends AnswerSource {
  /** The chunk sentence that supports the answer (cited sources) or best covers the question (others). */
  highlight: Highlight | null;
}

export type AskCitation = Citation & { source: AnswerSourceView };

export interface AskResult {
  collection: CollectionRecord;
  answer: string | null;
  abstained: boolean;
  abstentionReason: string | null;
  /** Each citation with the source its marker refers to. */
  citations: AskCitation[];
  /** Best first; when abstained, the closest sources found (none relevant enough). */
  sources: AnswerSourceView[];
  unsupportedMarkers: number[];
  synthesizer: string;
  /** Tokens the model used; null without a model call (extractive, abstained early, or served from cache). */
  usage: SynthesisUsage | null;
  retrievalMs: number;
  tookMs: number;
}

/** Where the time of a streamed answer went, in milliseconds since the request started. */
export interface AskTimings {
  retrievalMs: number;
  /** Until the first answer delta; null when none was sent (abstained). */
  firstDeltaMs: number | null;
  synthesisMs: number;
  totalMs: number;
}

/**
 * The events of {@link QueryService.askStream}, in this order: one `retrievalDone`, `answerDelta`s (none when it
 * abstains), a `citation` per verified marker, and `completed` — or `failed` at any point, which ends the stream.
 */
export type AskEvent =
  | { kind: 'retrievalDone'; sources: AnswerSourceView[]; latencyMs: number }
  | { kind: 'answerDelta'; text: string }
  | ({ kind: 'citation' } & AskCitation)
  | { kind: 'completed'; answer: AskResult; usage: SynthesisUsage | null; timings: AskTimings }
  | { kind: 'failed'; code: string; message: string };

/** Answer-quality counters; see `kbql_answer_*` in `src/observability/metrics.ts`. */
export interface AnswerMetrics {
  citations(synthesizer: string, supported: number, unsupported: number): void;
  abstained(synthesizer: string, kind: 'not_found' | 'unverified'): void;
  /** Synthesis duration of a streamed answer (`ask` goes through the instrumented synthesizer instead). */
  synthesis(synthesizer: string, outcome: 'answered' | 'abstained' | 'error', seconds: number): void;
}

/** Abstention before synthesis, by retrieval similarity; calibrated per embedder (see `KBQL_ABSTAIN_MIN_SIMILARITY`). */
export interface AbstentionPolicy {
  /**
   * Least cosine similarity of the best vector-scored hit (VECTOR and HYBRID modes) to synthesize at all; below it
   * `ask` abstains with the closest sources. 0 disables the gate (KEYWORD mode never uses it).
   * @default 0
   */
  minVectorScore?: number;
}

/** Per-call options of {@link QueryService.search} and {@link QueryService.ask}. */
export interface QueryOptions {
  /** Whose search it is: only collections of its tenant can be searched (another tenant's is NOT_FOUND). */
  access: Access;
  /**
   * The caller's access scope: callers of one scope share cached results, callers of different scopes never do.
   * @default accessScope(access), i.e. `tenant:<tenant>`
   */
  scope?: string;
}

interface NormalisedSearch {
  query: string;
  mode: SearchMode;
  alpha: number;
  topK: number;
  offset: number;
  filter: Filter | null;
}

export interface QueryDefaults {
  hybridAlpha: number;
  searchTopK: number;
  askTopK: number;
  maxTopK: number;
  maxQueryChars: number;
}

/**
 * offset + topK may not exceed this: ranking deeper than 200 hits is not useful, and it keeps HYBRID pages stable
 * (stores fuse a fixed-size candidate pool).
 */
export const MAX_SEARCH_WINDOW = 200;

/** Search (vector / keyword / hybrid) and answers with citations. */
export class QueryService {
  constructor(
    private readonly deps: {
      store: KnowledgeStore;
      collections: CollectionService;
      /** The query's vector by the embedder of that identity (the collection's active one). */
      embedQuery: (text: string, embedder: EmbedderInfo) => Promise<Float32Array>;
      synthesizer: AnswerSynthesizer;
      defaults: QueryDefaults;
      /** Spans (`kbql.retrieve`) and metrics; none by default. */
      telemetry?: Telemetry;
      /** Search and ask results by collection version, arguments and scope; none: every request computes. */
      resultCache?: QueryResultCache;
      /**
       * The documents a scope may see, as a filter ANDed to every search of that scope (undefined: no restriction).
       * None by default: access is decided per collection (its tenant); a document-level rule plugs in here.
       */
      accessFilter?: (scope: string) => Filter | undefined;
      /** The synthesizer whose `stream` askStream uses (uninstrumented: askStream records its own metrics). @default synthesizer */
      streamSynthesizer?: AnswerSynthesizer;
      /** Citation and abstention counters; none by default. */
      answerMetrics?: AnswerMetrics;
      /** Abstention by retrieval similarity; off by default. */
      abstention?: AbstentionPolicy;
    },
  ) {}

  /**
   * Ranked hits for a query: a `kbql.retrieve` span around {@link retrieve} with the collection, mode, topK and hit
   * count. `options.scope` is the caller's access scope (default `accessScope(access)`): it selects the access
   * filter, if any, and is part of the result-cache key.
   */
  search(args: SearchArgs, options: QueryOptions): Promise<SearchResult> {
    const facts = { mode: args.mode ?? 'HYBRID', topK: args.topK ?? this.deps.defaults.searchTopK };
    return (this.deps.telemetry ?? noTelemetry).run('kbql.retrieve', facts, async (note) => {
      const result = await this.retrieve(args, options.access, options.scope ?? accessScope(options.access), true);
      note({ collection: result.collection.name, hitCount: result.hits.length });
      return result;
    });
  }

  /** `resolved`: the collection when the caller has just read it (ask, for its cache key). */
  private async retrieve(
    args: SearchArgs,
    access: Access,
    scope: string,
    useCache: boolean,
    resolved?: CollectionRecord,
  ): Promise<SearchResult> {
    const started = performance.now();
    const request = this.normalise(args, this.deps.defaults.searchTopK);
    // Read on every request, cache or not: a deleted collection is NOT_FOUND, and its version keys the cache.
    const collection = resolved ?? (await this.deps.collections.resolve(args.collection, access));
    this.deps.collections.assertSameEmbedder(collection);
    const run = async (): Promise<CachedSearch> => {
      // The query is embedded with the collection's active embedder; a re-embedding that switched in between makes
      // the store refuse it (EMBEDDER_CHANGED) rather than compare two embedders' vectors: then once more, with the new one.
      let embedder = collection.embedder;
      for (let attempt = 0; ; attempt++) {
        const vector = request.mode === 'KEYWORD' ? undefined : await this.deps.embedQuery(request.query, embedder);
        try {
          const hits = await this.deps.store.search({
            collectionId: collection.id,
            mode: request.mode,
            text: request.query,
            vector,
            embedder,
            alpha: request.alpha,
            limit: request.topK,
            offset: request.offset,
            filter: this.withAccess(request.filter, scope),
          });
          return { mode: request.mode, alpha: request.alpha, hits };
        } catch (error) {
          if (attempt >= 2 || !isAppError(error) || error.details['reason'] !== 'EMBEDDER_CHANGED') throw error;
          const current = await this.deps.store.getCollection(collection.id);
          if (!current) throw error;
          embedder = this.deps.collections.assertSameEmbedder(current).info;
        }
      }
    };
    const cache = useCache ? this.deps.resultCache : undefined;
    const { value } = cache
      ? await cache.searches(QueryResultCache.key('search', collection, scope, request), run)
      : { value: await run() };
    return { collection, mode: value.mode, alpha: value.alpha, hits: value.hits, tookMs: performance.now() - started };
  }

  /**
   * An answer with citations, cached like search results (with the synthesizer's name in the key). The
   * `kbql.retrieve` span covers the collection read, the cache lookup and, on a miss, the search; synthesis follows.
   */
  async ask(args: AskArgs, options: QueryOptions): Promise<AskResult> {
    const started = performance.now();
    const scope = options.scope ?? accessScope(options.access);
    const question = this.validateText(args.question, 'question');
    const searchArgs: SearchArgs = {
      collection: args.collection,
      query: question,
      mode: args.mode,
      alpha: args.alpha,
      topK: args.topK ?? this.deps.defaults.askTopK,
      filter: args.filter,
    };
    const cache = this.deps.resultCache;
    const facts = { mode: searchArgs.mode ?? 'HYBRID', topK: searchArgs.topK! };
    const step = await (this.deps.telemetry ?? noTelemetry).run('kbql.retrieve', facts, async (note) => {
      const request = this.normalise(searchArgs, this.deps.defaults.askTopK);
      const collection = await this.deps.collections.resolve(args.collection, options.access);
      this.deps.collections.assertSameEmbedder(collection);
      let claim: Claim<CachedAnswer> | undefined;
      if (cache) {
        const got = await cache.acquireAnswer(
          QueryResultCache.key('ask', collection, scope, { ...request, synthesizer: this.deps.synthesizer.name }),
        );
        if (!got.claim) {
          note({ collection: collection.name, hitCount: got.hit.sources.length });
          return { collection, answer: got.hit };
        }
        claim = got.claim;
      }
      try {
        const retrieval = await this.retrieve(searchArgs, options.access, scope, false, collection);
        note({ collection: collection.name, hitCount: retrieval.hits.length });
        return { collection, retrieval, claim };
      } catch (error) {
        claim?.fail(error);
        throw error;
      }
    });
    // No retrieval ran for a cached answer (or one shared with an identical request in flight): retrievalMs is 0.
    if (step.answer) {
      const result = this.present(question, step.collection, step.answer, null, 0, performance.now() - started);
      this.count(result);
      return result;
    }

    const { retrieval, claim } = step;
    try {
      const sources: AnswerSource[] = retrieval.hits.map((hit, i) => ({ n: i + 1, ...hit }));
      const request = { question, sources };
      const synthesis = this.gate(retrieval.mode, sources) ?? (await this.deps.synthesizer.synthesize(request));
      const answer = this.toCached(synthesis, sources, this.deps.synthesizer.name);
      claim?.settle(answer);
      const result = this.present(
        question,
        retrieval.collection,
        answer,
        synthesis.usage ?? null,
        retrieval.tookMs,
        performance.now() - started,
      );
      this.count(result);
      return result;
    } catch (error) {
      claim?.fail(error);
      throw error;
    }
  }

  /**
   * {@link ask}, streamed: the events of {@link AskEvent}. Never throws once iterated: every failure, bad input
   * included, is a final `failed` event with the error's code (unexpected errors are masked as
   * INTERNAL_SERVER_ERROR). Not cached: a stream reports the synthesis as it runs. Ending the iteration early
   * (`return()`, e.g. the client disconnected) or aborting `signal` aborts the work at once, provider call included.
   */
  askStream(args: AskArgs, options: QueryOptions, signal?: AbortSignal): AsyncIterableIterator<AskEvent> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) controller.abort(signal.reason);
    else signal?.addEventListener('abort', onAbort, { once: true });
    const events = this.streamEvents(args, options, controller.signal);
    const stop = (): void => {
      signal?.removeEventListener('abort', onAbort);
      if (!controller.signal.aborted) controller.abort(new Error('stream closed by the consumer'));
    };
    // A generator's return() waits for the step it is running (e.g. a model token that never comes): abort first,
    // so that step fails at once and the generator's cleanup runs.
    const iterator: AsyncIterableIterator<AskEvent> = {
      next: () => events.next(),
      return: async (value?: unknown) => {
        stop();
        await events.return(undefined).catch(() => undefined);
        return { done: true, value: value as AskEvent };
      },
      throw: async (error?: unknown) => {
        stop();
        return events.throw(error);
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  private async *streamEvents(args: AskArgs, options: QueryOptions, signal: AbortSignal): AsyncGenerator<AskEvent> {
    const started = performance.now();
    const synthesizer = this.deps.streamSynthesizer ?? this.deps.synthesizer;
    let synthesisStarted: number | null = null;
    try {
      const scope = options.scope ?? accessScope(options.access);
      const question = this.validateText(args.question, 'question');
      const searchArgs: SearchArgs = { ...args, query: question, topK: args.topK ?? this.deps.defaults.askTopK };
      const facts = { mode: searchArgs.mode ?? 'HYBRID', topK: searchArgs.topK! };
      const retrieval = await (this.deps.telemetry ?? noTelemetry).run('kbql.retrieve', facts, async (note) => {
        const result = await this.retrieve(searchArgs, options.access, scope, false);
        note({ collection: result.collection.name, hitCount: result.hits.length });
        return result;
      });
      signal.throwIfAborted();
      const sources: AnswerSource[] = retrieval.hits.map((hit, i) => ({ n: i + 1, ...hit }));
      const highlights = highlightSources(question, sources);
      yield {
        kind: 'retrievalDone',
        sources: sources.map((s, i) => ({ ...s, highlight: highlights[i] ?? null })),
        latencyMs: retrieval.tookMs,
      };

      synthesisStarted = performance.now();
      let firstDeltaMs: number | null = null;
      let synthesis = this.gate(retrieval.mode, sources);
      if (!synthesis) {
        for await (const event of streamOf(synthesizer, { question, sources }, signal)) {
          if (event.type === 'done') {
            synthesis = event.synthesis;
            break;
          }
          if (!event.text) continue;
          firstDeltaMs ??= performance.now() - started;
          yield { kind: 'answerDelta', text: event.text };
        }
      }
      if (!synthesis) throw new Error(`synthesizer ${synthesizer.name} ended its stream without a result`);
      const synthesisMs = performance.now() - synthesisStarted;
      this.deps.answerMetrics?.synthesis(synthesizer.name, synthesis.abstained ? 'abstained' : 'answered', synthesisMs / 1000);
      synthesisStarted = null;
      const answer = this.toCached(synthesis, sources, synthesizer.name);
      const result = this.present(
        question,
        retrieval.collection,
        answer,
        synthesis.usage ?? null,
        retrieval.tookMs,
        performance.now() - started,
      );
      this.count(result);
      for (const citation of result.citations) yield { kind: 'citation', ...citation };
      const totalMs = performance.now() - started;
      yield {
        kind: 'completed',
        answer: { ...result, tookMs: totalMs },
        usage: result.usage,
        timings: { retrievalMs: retrieval.tookMs, firstDeltaMs, synthesisMs, totalMs },
      };
    } catch (error) {
      if (synthesisStarted !== null)
        this.deps.answerMetrics?.synthesis(synthesizer.name, 'error', (performance.now() - synthesisStarted) / 1000);
      if (signal.aborted) return; // the consumer left: nobody to tell
      yield isAppError(error)
        ? { kind: 'failed', code: error.code, message: error.message }
        : { kind: 'failed', code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' };
    }
  }

  /** An abstention decided before synthesis (no sources, or the best similarity below the calibrated floor), or null. */
  private gate(mode: SearchMode, sources: readonly AnswerSource[]): Synthesis | null {
    const abstain = (): Synthesis => ({
      answer: null,
      abstained: true,
      abstentionReason: NOT_FOUND_REASON,
      citations: [],
      unsupportedMarkers: [],
    });
    if (sources.length === 0) return abstain();
    const min = this.deps.abstention?.minVectorScore ?? 0;
    if (min <= 0 || mode === 'KEYWORD') return null;
    let best: number | null = null;
    for (const s of sources) if (s.vectorScore !== null && (best === null || s.vectorScore > best)) best = s.vectorScore;
    return best !== null && best < min ? abstain() : null;
  }

  private toCached(synthesis: Synthesis, sources: AnswerSource[], synthesizer: string): CachedAnswer {
    const byN = new Map(sources.map((s) => [s.n, s]));
    const citations = synthesis.citations.flatMap((c) => {
      const source = byN.get(c.marker);
      return source ? [{ ...c, source }] : [];
    });
    return {
      answer: synthesis.answer,
      abstained: synthesis.abstained,
      abstentionReason: synthesis.abstentionReason,
      citations,
      sources,
      unsupportedMarkers: synthesis.unsupportedMarkers,
      synthesizer,
    };
  }

  /** The answer as returned: sources with highlights (cited sentences first), citations pointing at those sources. */
  private present(
    question: string,
    collection: CollectionRecord,
    answer: CachedAnswer,
    usage: SynthesisUsage | null,
    retrievalMs: number,
    tookMs: number,
  ): AskResult {
    const cited = new Map<number, string[]>();
    for (const c of answer.citations) if (c.supported) cited.set(c.marker, [...(cited.get(c.marker) ?? []), c.sentence]);
    const highlights = highlightSources(question, answer.sources, cited);
    const sources: AnswerSourceView[] = answer.sources.map((s, i) => ({ ...s, highlight: highlights[i] ?? null }));
    const byN = new Map(sources.map((s) => [s.n, s]));
    const citations = answer.citations.flatMap((c) => {
      const source = byN.get(c.marker);
      return source ? [{ ...c, source }] : [];
    });
    return { ...answer, collection, citations, sources, usage, retrievalMs, tookMs };
  }

  private count(result: AskResult): void {
    const m = this.deps.answerMetrics;
    if (!m) return;
    const supported = result.citations.filter((c) => c.supported).length;
    m.citations(result.synthesizer, supported, result.unsupportedMarkers.length);
    if (result.abstained) m.abstained(result.synthesizer, result.abstentionReason === NOT_FOUND_REASON ? 'not_found' : 'unverified');
  }

  /** Validated arguments with defaults resolved: what a search computes from, and so what its cache key holds. */
  private normalise(args: SearchArgs, defaultTopK: number): NormalisedSearch {
    const query = this.validateText(args.query, 'query');
    const mode = args.mode ?? 'HYBRID';
    const alpha = this.validateAlpha(args.alpha);
    const topK = this.validateTopK(args.topK ?? defaultTopK);
    const offset = args.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0 || offset + topK > MAX_SEARCH_WINDOW) {
      throw badInput(`offset must be 0 or more, and offset + topK at most ${MAX_SEARCH_WINDOW}.`, {
        argument: 'offset',
        max: MAX_SEARCH_WINDOW,
      });
    }
    return { query, mode, alpha, topK, offset, filter: compileFilter(args.filter) ?? null };
  }

  /** The caller's filter narrowed to what `scope` may see. */
  private withAccess(filter: Filter | null, scope: string): Filter | undefined {
    const access = this.deps.accessFilter?.(scope) ?? null;
    if (!access) return filter ?? undefined;
    return filter ? { kind: 'and', filters: [filter, access] } : access;
  }

  private validateText(text: string, argument: string): string {
    const trimmed = text.trim();
    if (trimmed === '') throw badInput(`${argument} must not be empty.`, { argument });
    if (trimmed.length > this.deps.defaults.maxQueryChars) {
      throw badInput(`${argument} has at most ${this.deps.defaults.maxQueryChars} characters.`, {
        argument,
        max: this.deps.defaults.maxQueryChars,
      });
    }
    return trimmed;
  }

  private validateAlpha(alpha: number | null | undefined): number {
    if (alpha == null) return this.deps.defaults.hybridAlpha;
    if (!(alpha >= 0 && alpha <= 1)) throw badInput('alpha must be between 0 and 1.', { argument: 'alpha' });
    return alpha;
  }

  private validateTopK(topK: number): number {
    const max = this.deps.defaults.maxTopK;
    if (!Number.isInteger(topK) || topK < 1 || topK > max) throw badInput(`topK must be between 1 and ${max}.`, { argument: 'topK', max });
    return topK;
  }
}

/** The synthesizer's stream, or its finished answer as one delta for a synthesizer that cannot stream. */
async function* streamOf(synthesizer: AnswerSynthesizer, request: SynthesisRequest, signal: AbortSignal): AsyncGenerator<SynthesisEvent> {
  if (synthesizer.stream) {
    yield* synthesizer.stream(request, signal);
    return;
  }
  const synthesis = await synthesizer.synthesize(request, signal);
  if (synthesis.answer) yield { type: 'delta', text: synthesis.answer };
  yield { type: 'done', synthesis };
}
