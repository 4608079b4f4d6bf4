import { Arg, Ctx, Directive, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { principalOf, type KbqlContext } from '../shared/request-context';
import { JSONObjectScalar } from '../../graphql/scalars';
import { notFound } from '../../errors';
import type { ChunkRecord, CollectionRecord, DocumentRecord } from '../../ports/knowledge-store.port';
import { Collection } from '../collections/collection.type';
import { FilterInput } from '../query/query.type';
import { DocumentService } from './document.service';
import { Chunk, ChunkConnection, DeleteDocumentsPayload, Document, DocumentConnection } from './document.type';

@Resolver(() => Document)
export class DocumentResolver {
  constructor(private readonly documentService: DocumentService) {}

  @Directive('@auth(requires: READER)')
  @Query(() => Document, { nullable: true, description: 'A document by id; null when it does not exist or is not yours to see.' })
  document(@Arg('id', () => ID) id: string, @Ctx() ctx: KbqlContext): Promise<DocumentRecord | null> {
    return ctx.loaders.document.load(id);
  }

  @Directive('@auth(requires: READER)')
  @Query(() => DocumentConnection, { description: 'Documents of a collection (by name or id), oldest first.' })
  documents(
    @Arg('collection', () => String) collection: string,
    @Arg('filter', () => FilterInput, { nullable: true }) filter: FilterInput | null,
    @Arg('first', () => Int, { nullable: true }) first: number | null,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: KbqlContext,
  ) {
    return this.documentService.list(collection, filter, { first, after }, principalOf(ctx));
  }

  @Directive('@auth(requires: WRITER)')
  @Mutation(() => DeleteDocumentsPayload, { description: 'Deletes documents by id with their chunks; unknown ids are skipped.' })
  async deleteDocuments(@Arg('ids', () => [ID]) ids: string[], @Ctx() ctx: KbqlContext): Promise<DeleteDocumentsPayload> {
    const counts = await this.documentService.delete(ids, principalOf(ctx));
    return { deletedDocuments: counts.documents, deletedChunks: counts.chunks };
  }

  @Directive('@auth(requires: WRITER)')
  @Mutation(() => Document, { description: 'Replaces (or with merge: true, merges) metadata without re-embedding.' })
  updateDocumentMetadata(
    @Arg('id', () => ID) id: string,
    @Arg('metadata', () => JSONObjectScalar) metadata: Record<string, unknown>,
    @Arg('merge', () => Boolean, { defaultValue: false }) merge: boolean,
    @Ctx() ctx: KbqlContext,
  ): Promise<DocumentRecord> {
    return this.documentService.updateMetadata(id, metadata, merge, principalOf(ctx));
  }

  @FieldResolver(() => Collection)
  async collection(@Root() doc: DocumentRecord, @Ctx() ctx: KbqlContext): Promise<CollectionRecord> {
    const found = await ctx.loaders.collection.load(doc.collectionId);
    if (!found) throw notFound('Collection', doc.collectionId);
    return found;
  }

  @FieldResolver(() => ChunkConnection, { description: 'Chunks in document order.' })
  chunks(
    @Root() doc: DocumentRecord,
    @Arg('first', () => Int, { nullable: true }) first: number | null,
    @Arg('after', () => String, { nullable: true }) after: string | null,
  ) {
    return this.documentService.chunks(doc.id, { first, after });
  }
}

@Resolver(() => Chunk)
export class ChunkResolver {
  @FieldResolver(() => Document)
  async document(@Root() chunk: ChunkRecord, @Ctx() ctx: KbqlContext): Promise<DocumentRecord> {
    const found = await ctx.loaders.document.load(chunk.documentId);
    if (!found) throw notFound('Document', chunk.documentId);
    return found;
  }
}
