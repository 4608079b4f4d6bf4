/** Document and chunk reads of the Weaviate store: document records by id, and the chunks they make visible. */
import { documentId } from '../../ids';
import type { ChunkRecord, DocumentRecord, Filter, Page, PageRequest } from '../../ports/knowledge-store.port';
import type { WeaviateClientLike, WObject } from './weaviate.client';
import { andFilters, eq } from './weaviate.filters';
import { CHUNK_RETURN, isCanonicalId, isVisible, str0, toChunk, toDocument, visibleChunksOf } from './weaviate.rows';
import type { WeaviateCollections } from './weaviate.collections';
import type { WeaviateSchema } from './weaviate.schema';
import type { WeaviateSession } from './weaviate.session';

export class WeaviateReads {
  private readonly tenant: string | undefined;

  constructor(
    private readonly session: WeaviateSession,
    private readonly schema: WeaviateSchema,
    private readonly collections: WeaviateCollections,
  ) {
    this.tenant = session.tenant;
  }

  async getContentHashes(collectionId: string, externalIds: string[]): Promise<Map<string, string>> {
    const docs = await this.documentRecords(externalIds.map((e) => documentId(collectionId, e)));
    const out = new Map<string, string>();
    for (const doc of docs.values()) if (doc.collectionId === collectionId) out.set(doc.externalId, doc.contentHash);
    return out;
  }

  async getDocuments(ids: string[]): Promise<(DocumentRecord | null)[]> {
    if (ids.length === 0) return [];
    const docs = await this.documentRecords(ids);
    return ids.map((id) => docs.get(id) ?? null);
  }

  async getDocumentByExternalId(collectionId: string, externalId: string): Promise<DocumentRecord | null> {
    const id = documentId(collectionId, externalId);
    const doc = (await this.documentRecords([id])).get(id);
    return doc && doc.collectionId === collectionId ? doc : null;
  }

  async listDocuments(collectionId: string, page: PageRequest, filter?: Filter): Promise<Page<DocumentRecord>> {
    const { offset, limit } = this.session.checkPage(page);
    const docs = await this.schema.documentsCollection();
    const where = andFilters([
      { kind: 'filter', filter: eq('collectionId', collectionId) },
      filter ? await this.schema.translate(docs, filter) : { kind: 'all' },
    ]);
    if (where.kind === 'none') return { items: [], total: 0 };
    const filters = where.kind === 'filter' ? where.filter : undefined;
    const col = (c: WeaviateClientLike) => c.collection(docs, this.tenant);
    const [total, objects] = await Promise.all([
      this.session.call('count documents', (c) => col(c).aggregate({ filters })),
      limit === 0
        ? Promise.resolve([])
        : this.session.call('list documents', (c) =>
            col(c).fetchObjects({ filters, limit, offset, sort: [{ property: 'createdKey', ascending: true }] }),
          ),
    ]);
    return { items: objects.map(toDocument), total: total.totalCount };
  }

  async listChunks(docId: string, page: PageRequest): Promise<Page<ChunkRecord>> {
    const { offset, limit } = this.session.checkPage(page);
    const doc = (await this.documentRecords([docId])).get(docId);
    if (!doc) return { items: [], total: 0 };
    const shard = await this.collections.chunkTenantOf(doc.collectionId);
    if (shard === null) return { items: [], total: 0 };
    const chunkCollection = await this.schema.ensureChunkCollection(doc.collectionId, false, shard);
    const filters = visibleChunksOf(doc);
    const col = (c: WeaviateClientLike) => c.collection(chunkCollection, shard);
    const [total, objects] = await Promise.all([
      this.session.call('count chunks', (c) => col(c).aggregate({ filters })),
      limit === 0
        ? Promise.resolve([])
        : this.session.call('list chunks', (c) =>
            col(c).fetchObjects({
              filters,
              limit,
              offset,
              sort: [{ property: 'chunkIndex', ascending: true }],
              returnProperties: CHUNK_RETURN,
            }),
          ),
    ]);
    return { items: objects.map((o) => toChunk(o, doc.collectionId)), total: total.totalCount };
  }

  /**
   * Chunk ids do not name their collection, so this asks each chunk collection of the registry in turn (stopping
   * once every id is found): a cost linear in the number of collections. Nothing in kbql's services calls it on a
   * hot path.
   */
  async getChunks(ids: string[]): Promise<(ChunkRecord | null)[]> {
    if (ids.length === 0) return [];
    const wanted = new Set(ids.filter(isCanonicalId));
    const found = new Map<string, { object: WObject; collectionId: string }>();
    if (wanted.size > 0) {
      for (const collection of await this.collections.allCollections()) {
        const missing = [...wanted].filter((id) => !found.has(id));
        if (missing.length === 0) break;
        const shard = this.schema.chunkTenant(collection.tenant);
        const name = await this.schema.ensureChunkCollection(collection.id, false, shard);
        for (const object of await this.session.fetchByIds(name, missing, { returnProperties: CHUNK_RETURN }, shard)) {
          found.set(object.uuid, { object, collectionId: collection.id });
        }
      }
    }
    const docs = await this.documentRecords([...found.values()].map((f) => str0(f.object.properties['documentId'])));
    const out = new Map<string, ChunkRecord>();
    for (const [id, { object, collectionId }] of found) {
      const chunk = toChunk(object, collectionId);
      if (isVisible(chunk, str0(object.properties['contentHash']), docs.get(chunk.documentId))) out.set(id, chunk);
    }
    return ids.map((id) => out.get(id) ?? null);
  }

  async documentRecords(ids: string[]): Promise<Map<string, DocumentRecord>> {
    const valid = ids.filter(isCanonicalId);
    if (valid.length === 0) return new Map();
    const objects = await this.session.fetchByIds(await this.schema.documentsCollection(), valid);
    return new Map(objects.map((o) => [o.uuid, toDocument(o)]));
  }
}
