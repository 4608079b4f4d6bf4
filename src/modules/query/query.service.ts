import { badInput } from '../../errors';
import type { AnswerSource, AnswerSynthesizer, Citation } from '../../ports/answer-synthesizer.port';
import type { CollectionRecord, Filter, KnowledgeStore, SearchHit, SearchMode } from '../../ports/knowledge-store.port';
import { noTelemetry, type Telemetry } from '../../ports/telemetry.port';
import { accessScope, type Access } from '../auth/principal';
import type { CollectionService } from '../collections/collection.service';
import { compileFilter, type FilterSpec } from './filter';
import { QueryResultCache, type CachedAnswer, type CachedSearch, type Claim } from './query-cache';

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

export interface AskResult {
  collection: CollectionRecord;
  answer: string | null;
  abstained: boolean;
  abstentionReason: string | null;
  /** Each citation with the source its marker refers to. */
  citations: (Citation & { source: AnswerSource })[];
  sources: AnswerSource[];
  unsupportedMarkers: number[];
  synthesizer: string;
  retrievalMs: number;
  tookMs: number;
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
      embedQuery: (text: string) => Promise<Float32Array>;
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
  private async retrieve(args: SearchArgs, access: Access, scope: string, useCache: boolean, resolved?: CollectionRecord): Promise<SearchResult> {
    const started = performance.now();
    const request = this.normalise(args, this.deps.defaults.searchTopK);
    // Read on every request, cache or not: a deleted collection is NOT_FOUND, and its version keys the cache.
    const collection = resolved ?? (await this.deps.collections.resolve(args.collection, access));
    this.deps.collections.assertSameEmbedder(collection);
    const run = async (): Promise<CachedSearch> => {
      const vector = request.mode === 'KEYWORD' ? undefined : await this.deps.embedQuery(request.query);
      const hits = await this.deps.store.search({
        collectionId: collection.id,
        mode: request.mode,
        text: request.query,
        vector,
        alpha: request.alpha,
        limit: request.topK,
        offset: request.offset,
        filter: this.withAccess(request.filter, scope),
      });
      return { mode: request.mode, alpha: request.alpha, hits };
    };
    const cache = useCache ? this.deps.resultCache : undefined;
    const { value } = cache ? await cache.searches(QueryResultCache.key('search', collection, scope, request), run) : { value: await run() };
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
        const got = await cache.acquireAnswer(QueryResultCache.key('ask', collection, scope, { ...request, synthesizer: this.deps.synthesizer.name }));
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
    if (step.answer) return { collection: step.collection, ...step.answer, retrievalMs: 0, tookMs: performance.now() - started };

    const { retrieval, claim } = step;
    try {
      const sources: AnswerSource[] = retrieval.hits.map((hit, i) => ({ n: i + 1, ...hit }));
      const synthesis = await this.deps.synthesizer.synthesize({ question, sources });
      const byN = new Map(sources.map((s) => [s.n, s]));
      const citations = synthesis.citations.flatMap((c) => {
        const source = byN.get(c.marker);
        return source ? [{ ...c, source }] : [];
      });
      const answer: CachedAnswer = {
        answer: synthesis.answer,
        abstained: synthesis.abstained,
        abstentionReason: synthesis.abstentionReason,
        citations,
        sources,
        unsupportedMarkers: synthesis.unsupportedMarkers,
        synthesizer: this.deps.synthesizer.name,
      };
      claim?.settle(answer);
      return { collection: retrieval.collection, ...answer, retrievalMs: retrieval.tookMs, tookMs: performance.now() - started };
    } catch (error) {
      claim?.fail(error);
      throw error;
    }
  }

  /** Validated arguments with defaults resolved: what a search computes from, and so what its cache key holds. */
  private normalise(args: SearchArgs, defaultTopK: number): NormalisedSearch {
    const query = this.validateText(args.query, 'query');
    const mode = args.mode ?? 'HYBRID';
    const alpha = this.validateAlpha(args.alpha);
    const topK = this.validateTopK(args.topK ?? defaultTopK);
    const offset = args.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0 || offset + topK > MAX_SEARCH_WINDOW) {
      throw badInput(`offset must be 0 or more, and offset + topK at most ${MAX_SEARCH_WINDOW}.`, { argument: 'offset', max: MAX_SEARCH_WINDOW });
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
      throw badInput(`${argument} has at most ${this.deps.defaults.maxQueryChars} characters.`, { argument, max: this.deps.defaults.maxQueryChars });
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
