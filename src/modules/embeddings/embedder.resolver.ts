import { Arg, Ctx, Directive, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import { embedderFingerprint } from '../../ports/embedder.port';
import type { CollectionRecord, EmbedderInfo } from '../../ports/knowledge-store.port';
import { Collection } from '../collections/collection.type';
import { IngestionJob } from '../jobs/ingestion-job.type';
import type { IngestionJobService } from '../jobs/ingestion-job.service';
import type { JobView } from '../jobs/ingestion-job.state';
import { principalOf, type KbqlContext } from '../shared/request-context';
import type { EmbedderCatalog } from './embedder-catalog';
import { CollectionEmbedding, Embedder, EmbeddingStateEnum, type EmbeddingIdentity } from './embedder.type';
import type { ReembedService } from './reembed.service';

@Resolver(() => Collection)
export class EmbedderResolver {
  constructor(
    private readonly catalog: EmbedderCatalog,
    private readonly reembed: ReembedService,
    private readonly jobs: IngestionJobService,
  ) {}

  @Directive('@auth(requires: READER)')
  @Query(() => [Embedder], { description: 'The configured embedders, the default one first.' })
  embedders(): Embedder[] {
    return this.catalog.list().map((e, i) => ({
      name: e.name,
      provider: e.provider,
      model: e.model,
      dimensions: e.info.dimensions,
      fingerprint: e.fingerprint,
      isDefault: i === 0,
    }));
  }

  @Directive('@auth(requires: WRITER)')
  @Directive('@rateLimit(window: "1m", max: 10)')
  @Mutation(() => IngestionJob, {
    description:
      'Re-embeds a collection with another configured embedder while it keeps serving: a job builds the new vectors, then one ' +
      'atomic switch. Follow it with ingestionJob / ingestionProgress or Collection.embedding; cancel with cancelReembedding.',
  })
  async reembedCollection(
    @Arg('collection', { description: 'Collection name or id.' }) collection: string,
    @Arg('embedder', { description: 'Name of a configured embedder (see embedders).' }) embedder: string,
    @Ctx() ctx: KbqlContext,
  ): Promise<JobView> {
    const access = principalOf(ctx);
    const job = await this.reembed.start(collection, embedder, access);
    return this.jobs.getJob(job.id, access);
  }

  @Directive('@auth(requires: WRITER)')
  @Mutation(() => Collection, {
    description: 'Within the grace period after a re-embedding switched, makes the previous vectors active again (atomically).',
  })
  rollbackEmbedding(@Arg('collection', { description: 'Collection name or id.' }) collection: string, @Ctx() ctx: KbqlContext) {
    return this.reembed.rollback(collection, principalOf(ctx));
  }

  @Directive('@auth(requires: WRITER)')
  @Mutation(() => Collection, { description: 'Stops a re-embedding and drops the vectors it built; searches never saw them.' })
  cancelReembedding(@Arg('collection', { description: 'Collection name or id.' }) collection: string, @Ctx() ctx: KbqlContext) {
    return this.reembed.cancel(collection, principalOf(ctx));
  }

  @FieldResolver(() => CollectionEmbedding, { description: 'Its embedder, and its re-embedding if any.' })
  async embedding(@Root() collection: CollectionRecord): Promise<CollectionEmbedding> {
    const view = await this.reembed.view(collection);
    return {
      active: identity(view.active)!,
      state: EmbeddingStateEnum[view.state],
      target: identity(view.target),
      previous: identity(view.previous),
      rollbackUntil: view.rollbackUntil,
      progress: view.progress,
    };
  }
}

function identity(info: EmbedderInfo | null): EmbeddingIdentity | null {
  return info ? { name: info.name, dimensions: info.dimensions, fingerprint: embedderFingerprint(info) } : null;
}
