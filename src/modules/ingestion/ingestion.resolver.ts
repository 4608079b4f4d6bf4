import { Arg, Ctx, Directive, FieldResolver, Mutation, Resolver, Root } from 'type-graphql';
import { principalOf, type KbqlContext } from '../shared/request-context';
import type { DocumentRecord } from '../../ports/knowledge-store.port';
import { Document } from '../documents/document.type';
import { IngestionService, type DocumentIngestResult as Result } from './ingestion.service';
import { DocumentIngestResult, DocumentInput, IngestDocumentsPayload } from './ingestion.type';

@Resolver(() => DocumentIngestResult)
export class IngestionResolver {
  constructor(private readonly ingestion: IngestionService) {}

  @Directive('@auth(requires: WRITER)')
  @Directive('@rateLimit(window: "1m", max: 60)')
  @Mutation(() => IngestDocumentsPayload, {
    description:
      'Parses, chunks, embeds and stores documents (upsert by id). Each document gets its own status; one bad document never fails the others.',
  })
  ingestDocuments(
    @Arg('collection', () => String, { description: 'Collection name or id.' }) collection: string,
    @Arg('documents', () => [DocumentInput]) documents: DocumentInput[],
    @Ctx() ctx: KbqlContext,
  ) {
    return this.ingestion.ingest(collection, documents, principalOf(ctx));
  }

  @FieldResolver(() => Document, { nullable: true })
  document(@Root() result: Result, @Ctx() ctx: KbqlContext): Promise<DocumentRecord | null> | null {
    return result.documentId ? ctx.loaders.document.load(result.documentId) : null;
  }
}
