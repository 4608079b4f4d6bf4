import { badInput, notFound } from '../../errors';
import type { ChunkRecord, DeleteCounts, DocumentRecord, KnowledgeStore, Metadata } from '../../ports/knowledge-store.port';
import type { CollectionService } from '../collections/collection.service';
import { canSee } from '../auth/principal';
import type { Access } from '../../ports/principal.port';
import { compileFilter, type FilterSpec } from '../query/filter';
import { toConnection, toWindow, type Connection, type PageArgs } from '../../graphql/pagination';
import { validateMetadata } from './metadata';

/** Most ids one deleteDocuments call may carry. */
export const MAX_DELETE_IDS = 1000;

/**
 * Reading, listing, deleting documents and editing their metadata (no re-embedding). A document has the access of
 * its collection: methods that take a document id take the caller's {@link Access} and treat another tenant's
 * document as one that does not exist. (`listIn` and `chunks` take an already visible collection or document.)
 */
export class DocumentService {
  constructor(private readonly deps: { store: KnowledgeStore; collections: CollectionService }) {}

  /** The document when it exists and `access` may see its collection. */
  async get(id: string, access: Access): Promise<DocumentRecord | null> {
    const [doc] = await this.visibleDocuments([id], access);
    return doc ?? null;
  }

  async list(
    collectionRef: string,
    filter: FilterSpec | null | undefined,
    args: PageArgs,
    access: Access,
  ): Promise<Connection<DocumentRecord>> {
    const collection = await this.deps.collections.resolve(collectionRef, access);
    return this.listIn(collection.id, filter, args);
  }

  /**
   * The documents of `ids` that exist and `access` may see, in order, null elsewhere. `write`: the caller is about
   * to change them, so one in a collection shared with its tenant read-only is FORBIDDEN.
   */
  async visibleDocuments(ids: readonly string[], access: Access, write = false): Promise<(DocumentRecord | null)[]> {
    const docs = await this.deps.store.getDocuments([...ids]);
    const allowed = new Map<string, boolean>();
    for (const collectionId of new Set(docs.flatMap((d) => (d ? [d.collectionId] : [])))) {
      const collection = await this.deps.store.getCollection(collectionId);
      const seen = collection !== null && canSee(access, collection);
      if (seen && write) this.deps.collections.assertWritable(collection, access);
      allowed.set(collectionId, seen);
    }
    return docs.map((d) => (d && allowed.get(d.collectionId) ? d : null));
  }

  async listIn(collectionId: string, filter: FilterSpec | null | undefined, args: PageArgs): Promise<Connection<DocumentRecord>> {
    const compiled = compileFilter(filter);
    const window = toWindow(args);
    return toConnection(await this.deps.store.listDocuments(collectionId, window, compiled), window);
  }

  /** Ids that do not exist, or that `access` may not see, are skipped alike. */
  async delete(ids: readonly string[], access: Access): Promise<DeleteCounts> {
    if (ids.length === 0) throw badInput('Give at least one document id.', { argument: 'ids' });
    if (ids.length > MAX_DELETE_IDS) throw badInput(`At most ${MAX_DELETE_IDS} ids per call.`, { argument: 'ids', max: MAX_DELETE_IDS });
    const unique = [...new Set(ids)];
    const mine = (await this.visibleDocuments(unique, access, true)).flatMap((d) => (d ? [d.id] : []));
    if (mine.length === 0) return { documents: 0, chunks: 0 };
    return this.deps.store.deleteDocuments(mine);
  }

  /** Replaces the metadata, or merges it into the existing object when `merge` (top-level keys; null removes a key). */
  async updateMetadata(id: string, metadata: unknown, merge: boolean, access: Access): Promise<DocumentRecord> {
    const patch = validateMetadata(metadata);
    const [existing] = await this.visibleDocuments([id], access, true);
    if (!existing) throw notFound('Document', id);
    let next: Metadata = patch;
    if (merge) {
      next = { ...existing.metadata };
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete next[k];
        else next[k] = v;
      }
      next = validateMetadata(next);
    }
    const updated = await this.deps.store.updateDocumentMetadata(id, next);
    if (!updated) throw notFound('Document', id);
    return updated;
  }

  async chunks(documentId: string, args: PageArgs): Promise<Connection<ChunkRecord>> {
    const window = toWindow(args);
    return toConnection(await this.deps.store.listChunks(documentId, window), window);
  }
}
