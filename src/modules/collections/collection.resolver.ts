import { Arg, Ctx, Directive, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { principalOf, type KbqlContext } from '../shared/request-context';
import type { CollectionRecord } from '../../ports/knowledge-store.port';
import { DocumentConnection } from '../documents/document.type';
import { DocumentService } from '../documents/document.service';
import { FilterInput } from '../query/query.type';
import { CreateCollectionInput, UpdateCollectionInput } from './collection.input';
import { CollectionService } from './collection.service';
import {
  Collection,
  CollectionConnection,
  CollectionShare,
  CollectionStats,
  DeleteCollectionPayload,
  ShareRoleEnum,
} from './collection.type';

@Resolver(() => Collection)
export class CollectionResolver {
  constructor(
    private readonly collectionService: CollectionService,
    private readonly documentService: DocumentService,
  ) {}

  @Directive('@auth(requires: READER)')
  @Query(() => Collection, { nullable: true, description: 'A collection by id or by name (give exactly one).' })
  collection(
    @Arg('id', () => ID, { nullable: true }) id: string | null,
    @Arg('name', () => String, { nullable: true }) name: string | null,
    @Ctx() ctx: KbqlContext,
  ): Promise<CollectionRecord | null> {
    return this.collectionService.find({ id, name }, principalOf(ctx));
  }

  @Directive('@auth(requires: READER)')
  @Query(() => CollectionConnection, { description: 'The collections of your tenant and those shared with it, oldest first.' })
  collections(
    @Arg('first', () => Int, { nullable: true }) first: number | null,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: KbqlContext,
  ) {
    return this.collectionService.list({ first, after }, principalOf(ctx));
  }

  @Directive('@auth(requires: WRITER)')
  @Mutation(() => Collection)
  createCollection(
    @Arg('input', () => CreateCollectionInput) input: CreateCollectionInput,
    @Ctx() ctx: KbqlContext,
  ): Promise<CollectionRecord> {
    return this.collectionService.create(input, principalOf(ctx));
  }

  @Directive('@auth(requires: WRITER)')
  @Mutation(() => Collection, { description: 'Renames or re-describes a collection (chunking and embedder are fixed).' })
  updateCollection(
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateCollectionInput) input: UpdateCollectionInput,
    @Ctx() ctx: KbqlContext,
  ): Promise<CollectionRecord> {
    return this.collectionService.update(id, input, principalOf(ctx));
  }

  @Directive('@auth(requires: ADMIN)')
  @Mutation(() => DeleteCollectionPayload, { description: 'Deletes a collection with all its documents and chunks.' })
  async deleteCollection(@Arg('id', () => ID) id: string, @Ctx() ctx: KbqlContext): Promise<DeleteCollectionPayload> {
    const counts = await this.collectionService.delete(id, principalOf(ctx));
    return { id: counts.id, deletedDocuments: counts.documents, deletedChunks: counts.chunks };
  }

  @Directive('@auth(requires: ADMIN)')
  @Mutation(() => Collection, {
    description:
      'Shares a collection of your tenant with another tenant (replacing an earlier share with it): its callers then see the collection, ' +
      'its documents and chunks; a WRITER share also lets its WRITERs ingest and edit documents.',
  })
  shareCollection(
    @Arg('collection', { description: 'Name or id of a collection of your tenant.' }) collection: string,
    @Arg('tenant') tenant: string,
    @Arg('role', () => ShareRoleEnum) role: ShareRoleEnum,
    @Ctx() ctx: KbqlContext,
  ): Promise<CollectionRecord> {
    return this.collectionService.share(collection, tenant, role, principalOf(ctx));
  }

  @Directive('@auth(requires: ADMIN)')
  @Mutation(() => Collection, { description: 'Withdraws the share of a collection of your tenant with another tenant (none: no change).' })
  unshareCollection(
    @Arg('collection', { description: 'Name or id of a collection of your tenant.' }) collection: string,
    @Arg('tenant') tenant: string,
    @Ctx() ctx: KbqlContext,
  ): Promise<CollectionRecord> {
    return this.collectionService.share(collection, tenant, null, principalOf(ctx));
  }

  @FieldResolver(() => [CollectionShare], {
    description: 'The tenants it is shared with (all of them for its owner; only your own share otherwise).',
  })
  shares(@Root() collection: CollectionRecord, @Ctx() ctx: KbqlContext) {
    return this.collectionService.sharesSeenBy(collection, ctx.principal);
  }

  @FieldResolver(() => CollectionStats, { description: 'Live document and chunk counts.' })
  stats(@Root() collection: CollectionRecord) {
    return this.collectionService.stats(collection.id);
  }

  @FieldResolver(() => DocumentConnection, { description: 'Documents of the collection, oldest first.' })
  documents(
    @Root() collection: CollectionRecord,
    @Arg('filter', () => FilterInput, { nullable: true }) filter: FilterInput | null,
    @Arg('first', () => Int, { nullable: true }) first: number | null,
    @Arg('after', () => String, { nullable: true }) after: string | null,
  ) {
    return this.documentService.listIn(collection.id, filter, { first, after });
  }
}
