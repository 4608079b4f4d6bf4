import { Arg, Ctx, Directive, Float, Int, Query, Resolver, Root, Subscription } from 'type-graphql';
import { principalOf, servicesOf, type KbqlContext } from '../shared/request-context';
import { SearchModeEnum } from '../../graphql/enums';
import { QueryService, type AskEvent } from './query.service';
import { Answer, AskStreamEvent, FilterInput, SearchPayload } from './query.type';

@Resolver()
export class QueryResolver {
  constructor(private readonly query: QueryService) {}

  @Directive('@auth(requires: READER)')
  @Directive('@rateLimit(window: "1m", max: 120)')
  @Query(() => SearchPayload, { description: 'Ranked chunks of a collection for a query.' })
  search(
    @Arg('collection', () => String, { description: 'Collection name or id.' }) collection: string,
    @Arg('query', () => String) query: string,
    @Arg('mode', () => SearchModeEnum, { defaultValue: SearchModeEnum.HYBRID }) mode: SearchModeEnum,
    @Arg('alpha', () => Float, { nullable: true, description: 'HYBRID weight of the vector side, 0–1.' }) alpha: number | null,
    @Arg('topK', () => Int, { nullable: true, description: 'Hits to return; default KBQL_DEFAULT_TOP_K, at most KBQL_MAX_TOP_K.' })
    topK: number | null,
    @Arg('offset', () => Int, { nullable: true, description: 'Hits to skip (for paging); offset + topK is at most 200.' })
    offset: number | null,
    @Arg('filter', () => FilterInput, { nullable: true }) filter: FilterInput | null,
    @Ctx() ctx: KbqlContext,
  ) {
    return this.query.search({ collection, query, mode, alpha, topK, offset, filter }, { access: principalOf(ctx), scope: ctx.scope });
  }

  @Directive('@auth(requires: READER)')
  @Directive('@rateLimit(window: "1m", max: 60, budget: "answer")')
  @Query(() => Answer, { description: 'An answer from the collection with [n] citations, or an abstention.' })
  ask(
    @Arg('collection', () => String) collection: string,
    @Arg('question', () => String) question: string,
    @Arg('topK', () => Int, { nullable: true, description: 'Sources to retrieve; default KBQL_ASK_TOP_K.' }) topK: number | null,
    @Arg('mode', () => SearchModeEnum, { defaultValue: SearchModeEnum.HYBRID }) mode: SearchModeEnum,
    @Arg('alpha', () => Float, { nullable: true }) alpha: number | null,
    @Arg('filter', () => FilterInput, { nullable: true }) filter: FilterInput | null,
    @Ctx() ctx: KbqlContext,
  ) {
    return this.query.ask({ collection, question, topK, mode, alpha, filter }, { access: principalOf(ctx), scope: ctx.scope });
  }

  @Directive('@auth(requires: READER)')
  @Directive('@rateLimit(window: "1m", max: 60, budget: "answer")')
  @Subscription(() => AskStreamEvent, {
    description:
      'ask, streamed: RetrievalDone, then AnswerDelta pieces as the answer is produced, a Citation per verified marker, then Completed (or Failed, e.g. UPSTREAM_TIMEOUT). Completing or disconnecting stops the work, model call included.',
    subscribe: ({ args, context }) => {
      const ctx = context as KbqlContext;
      const a = args as {
        collection: string;
        question: string;
        topK?: number | null;
        mode?: SearchModeEnum;
        alpha?: number | null;
        filter?: FilterInput | null;
      };
      return servicesOf(ctx).query.askStream(
        { collection: a.collection, question: a.question, topK: a.topK, mode: a.mode, alpha: a.alpha, filter: a.filter },
        { access: principalOf(ctx), scope: ctx.scope },
      );
    },
  })
  askStream(
    @Root() event: AskEvent,
    @Arg('collection', () => String) _collection: string,
    @Arg('question', () => String) _question: string,
    @Arg('topK', () => Int, { nullable: true, description: 'Sources to retrieve; default KBQL_ASK_TOP_K.' }) _topK: number | null,
    @Arg('mode', () => SearchModeEnum, { defaultValue: SearchModeEnum.HYBRID }) _mode: SearchModeEnum,
    @Arg('alpha', () => Float, { nullable: true }) _alpha: number | null,
    @Arg('filter', () => FilterInput, { nullable: true }) _filter: FilterInput | null,
  ): AskEvent {
    return event;
  }
}
