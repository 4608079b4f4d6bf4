import { badInput, notFound } from '../../errors';
import type { ChunkRecord, DeleteCounts, DocumentRecord, KnowledgeStore, Metadata } from '../../ports/knowledge-store.port';
import type { CollectionService } from '../collections/collection.service';
import { compileFilter, type FilterSpec } from '../query/filter';
import { toConnection, toWindow, type Connection, type PageArgs } from '../shared/pagination';
import { validateMetadata } from './metadata';

/** Most ids one deleteDocuments call may carry. */
export const MAX_DELETE_IDS = 1000;

/** Reading, listing, deleting documents and editing their metadata (no re-embedding). */
export class DocumentService {
  constructor(private readonly deps: { store: KnowledgeStore; collections: CollectionService }) {}

  async get(id: string): Promise<DocumentRecord | null> {
    const [doc] = await this.deps.store.getDocuments([id]);
    return doc ?? null;
  }

  async list(collectionRef: string, filter: FilterSpec | null | undefined, args: PageArgs): Promise<Connection<DocumentRecord>> {
    const collection = await this.deps.collections.resolve(collectionRef);
    return this.listIn(collection.id, filter, args);
  }

  async listIn(collectionId: string, filter: FilterSpec | null | undefined, args: PageArgs): Promise<Connection<DocumentRecord>> {
    const compiled = compileFilter(filter);
    const window = toWindow(args);
    return toConnection(await this.deps.store.listDocuments(collectionId, window, compiled), window);
  }

  async delete(ids: readonly string[]): Promise<DeleteCounts> {
    if (ids.length === 0) throw badInput('Give at least one document id.', { argument: 'ids' });
    if (ids.length > MAX_DELETE_IDS) throw badInput(`At most ${MAX_DELETE_IDS} ids per call.`, { argument: 'ids', max: MAX_DELETE_IDS });
    return this.deps.store.deleteDocuments([...new Set(ids)]);
  }

  /** Replaces the metadata, or merges it into the existing object when `merge` (top-level keys; null removes a key). */
  async updateMetadata(id: string, metadata: unknown, merge: boolean): Promise<DocumentRecord> {
    const patch = validateMetadata(metadata);
    const existing = await this.get(id);
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
