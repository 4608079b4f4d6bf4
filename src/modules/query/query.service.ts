import { badInput } from '../../errors';
import type { AnswerSource, AnswerSynthesizer, Citation } from '../../ports/answer-synthesizer.port';
import type { CollectionRecord, KnowledgeStore, SearchHit, SearchMode } from '../../ports/knowledge-store.port';
import type { CollectionService } from '../collections/collection.service';
import { compileFilter, type FilterSpec } from './filter';

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
    },
  ) {}

  async search(args: SearchArgs): Promise<SearchResult> {
    const started = performance.now();
    const { defaults } = this.deps;
    const query = this.validateText(args.query, 'query');
    const mode = args.mode ?? 'HYBRID';
    const alpha = this.validateAlpha(args.alpha);
    const topK = this.validateTopK(args.topK ?? defaults.searchTopK);
    const offset = args.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0 || offset + topK > MAX_SEARCH_WINDOW) {
      throw badInput(`offset must be 0 or more, and offset + topK at most ${MAX_SEARCH_WINDOW}.`, { argument: 'offset', max: MAX_SEARCH_WINDOW });
    }
    const filter = compileFilter(args.filter);
    const collection = await this.deps.collections.resolve(args.collection);
    this.deps.collections.assertSameEmbedder(collection);
    const vector = mode === 'KEYWORD' ? undefined : await this.deps.embedQuery(query);
    const hits = await this.deps.store.search({
      collectionId: collection.id,
      mode,
      text: query,
      vector,
      alpha,
      limit: topK,
      offset,
      filter,
    });
    return { collection, mode, alpha, hits, tookMs: performance.now() - started };
  }

  async ask(args: AskArgs): Promise<AskResult> {
    const started = performance.now();
    const question = this.validateText(args.question, 'question');
    const retrieval = await this.search({
      collection: args.collection,
      query: question,
      mode: args.mode,
      alpha: args.alpha,
      topK: args.topK ?? this.deps.defaults.askTopK,
      filter: args.filter,
    });
    const sources: AnswerSource[] = retrieval.hits.map((hit, i) => ({ n: i + 1, ...hit }));
    const synthesis = await this.deps.synthesizer.synthesize({ question, sources });
    const byN = new Map(sources.map((s) => [s.n, s]));
    const citations = synthesis.citations.flatMap((c) => {
      const source = byN.get(c.marker);
      return source ? [{ ...c, source }] : [];
    });
    return {
      collection: retrieval.collection,
      answer: synthesis.answer,
      abstained: synthesis.abstained,
      abstentionReason: synthesis.abstentionReason,
      citations,
      sources,
      unsupportedMarkers: synthesis.unsupportedMarkers,
      synthesizer: this.deps.synthesizer.name,
      retrievalMs: retrieval.tookMs,
      tookMs: performance.now() - started,
    };
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
