/**
 * Document writes of the Weaviate store. Weaviate has no multi-object transaction: the document record is the
 * commit point (see the store's class comment for what a crash can leave).
 */
import { badInput, notFound } from '../../errors';
import { chunkId, documentId } from '../../ids';
import type { ChunkWrite, DeleteCounts, DocumentRecord, DocumentWrite, Metadata } from '../../ports/knowledge-store.port';
import { alignWriteVectors } from '../embedding-checks';
import { checkChunkVector } from '../store-checks';
import type { WriteObject } from './weaviate.client';
import { andOf, builtinProperties, byIds, cmp, eq, flattenMetadata } from './weaviate.filters';
import { chunkProperties, documentProperties, num0, str0 } from './weaviate.rows';
import type { WeaviateCollections } from './weaviate.collections';
import type { WeaviateReembedding } from './weaviate.embeddings';
import type { WeaviateReads } from './weaviate.reads';
import type { WeaviateSchema } from './weaviate.schema';
import type { WeaviateSession } from './weaviate.session';

export class WeaviateWrites {
  constructor(
    private readonly session: WeaviateSession,
    private readonly schema: WeaviateSchema,
    private readonly collections: WeaviateCollections,
    private readonly reads: WeaviateReads,
    /** Mirrors chunk writes into a collection's secondary vectors while it has some (re-embedding). */
    private readonly mirror?: WeaviateReembedding,
  ) {}

  async upsertDocument(collectionId: string, doc: DocumentWrite): Promise<DocumentRecord> {
    const collection = await this.collections.getCollection(collectionId);
    if (!collection) throw notFound('Collection', collectionId);
    // The active embedder's vectors go to the chunks, the secondary one's (if any) to their mirror.
    const aligned = alignWriteVectors(doc, collection.embedder, collection.secondary ?? null);
    doc = aligned.doc;
    const chunks = validateWrite(doc, collection.embedder.dimensions);
    const secondaryOf = new Map(doc.chunks.map((c, i) => [c.index, aligned.secondary?.[i]]));
    const id = documentId(collectionId, doc.externalId);
    const shard = this.schema.chunkTenant(collection.tenant);
    const chunkCollection = await this.schema.ensureChunkCollection(collectionId, true, shard);
    const docs = await this.schema.documentsCollection();
    const existing = (await this.reads.documentRecords([id])).get(id) ?? null;
    const now = Date.now();
    const record: DocumentRecord = {
      id,
      collectionId,
      externalId: doc.externalId,
      title: doc.title,
      source: doc.source,
      contentType: doc.contentType,
      metadata: doc.metadata ?? {},
      contentHash: doc.contentHash,
      charCount: doc.charCount,
      chunkCount: chunks.length,
      createdAt: existing?.createdAt ?? new Date(now),
      updatedAt: new Date(Math.max(now, existing?.updatedAt.getTime() ?? 0)),
    };
    const filterable = { ...builtinProperties(record), ...flattenMetadata(record.metadata) };
    await this.schema.ensureFlatProperties(chunkCollection, Object.keys(filterable));
    await this.schema.ensureFlatProperties(docs, Object.keys(filterable));

    // 1. The new chunks (invisible until step 2: their contentHash or index does not fit the current record).
    const chunkObjects = chunks.map((chunk) => ({
      id: chunkId(id, chunk.index),
      properties: chunkProperties(record, chunk, filterable),
      vector: Array.from(chunk.vector),
    }));
    try {
      await this.session.insertAll(chunkCollection, chunkObjects, `store chunks of document "${doc.externalId}"`, shard);
      if (aligned.secondary) {
        const mirrored = chunkObjects.map((o, i) => ({ ...o, vector: Array.from(secondaryOf.get(chunks[i]!.index)!) }));
        await this.mirror?.mirrorInsert(collectionId, mirrored, shard);
      }
    } catch (error) {
      // A new document leaves nothing behind; a replaced one keeps its old record (see the class comment).
      if (!existing)
        await this.session.deleteAll(chunkCollection, eq('documentId', id), 'remove partial chunks', shard).catch(() => undefined);
      throw error;
    }
    // 2. The commit point.
    await this.session.insertAll(docs, [{ id, properties: documentProperties(record, filterable) }], `store document "${doc.externalId}"`);
    // 3. Chunks of the previous version beyond the new count (already invisible).
    const stale = andOf(eq('documentId', id), cmp('GreaterThanEqual', 'chunkIndex', chunks.length));
    await this.session.deleteAll(chunkCollection, stale, 'delete stale chunks', shard);
    // A replaced chunk without a secondary vector must not keep its old one there: it is pending again.
    if (!aligned.secondary) await this.mirror?.mirrorDelete(collectionId, eq('documentId', id), shard);
    else await this.mirror?.mirrorDelete(collectionId, stale, shard);
    await this.collections.bumpVersions([collectionId]);
    return record;
  }

  async deleteDocuments(ids: string[]): Promise<DeleteCounts> {
    const docs = await this.reads.documentRecords(ids);
    if (docs.size === 0) return { documents: 0, chunks: 0 };
    const docsCollection = await this.schema.documentsCollection();
    let chunks = 0;
    for (const doc of docs.values()) {
      // The record first (its chunks turn invisible with it), then the chunks.
      await this.session.deleteAll(docsCollection, byIds([doc.id]), 'delete document');
      const shard = await this.collections.chunkTenantOf(doc.collectionId);
      if (shard !== null) {
        await this.session.deleteAll(this.schema.chunkCollectionName(doc.collectionId), eq('documentId', doc.id), 'delete chunks', shard);
        await this.mirror?.mirrorDelete(doc.collectionId, eq('documentId', doc.id), shard);
      }
      chunks += doc.chunkCount;
    }
    await this.collections.bumpVersions([...new Set([...docs.values()].map((d) => d.collectionId))]);
    return { documents: docs.size, chunks };
  }

  async updateDocumentMetadata(id: string, metadata: Metadata): Promise<DocumentRecord | null> {
    const current = (await this.reads.documentRecords([id])).get(id);
    if (!current) return null;
    const record: DocumentRecord = {
      ...current,
      metadata: metadata ?? {},
      updatedAt: new Date(Math.max(Date.now(), current.updatedAt.getTime())),
    };
    const shard = await this.collections.chunkTenantOf(current.collectionId);
    if (shard === null) return null;
    const chunkCollection = await this.schema.ensureChunkCollection(current.collectionId, true, shard);
    const docs = await this.schema.documentsCollection();
    const filterable = { ...builtinProperties(record), ...flattenMetadata(record.metadata) };
    await this.schema.ensureFlatProperties(chunkCollection, Object.keys(filterable));
    await this.schema.ensureFlatProperties(docs, Object.keys(filterable));

    // Batch import replaces whole objects, so each visible chunk is read with its vector and written back with
    // the new filter properties: same id, text and vector.
    const ids = Array.from({ length: current.chunkCount }, (_, i) => chunkId(id, i));
    const rewritten: WriteObject[] = [];
    for (const object of await this.session.fetchByIds(chunkCollection, ids, { includeVector: true }, shard)) {
      const p = object.properties;
      if (p['contentHash'] !== current.contentHash || !object.vector) continue;
      const chunk = {
        index: num0(p['chunkIndex']),
        text: str0(p['text']),
        startOffset: num0(p['startOffset']),
        endOffset: num0(p['endOffset']),
      };
      rewritten.push({ id: object.uuid, properties: chunkProperties(record, chunk, filterable), vector: object.vector });
    }
    await this.session.insertAll(chunkCollection, rewritten, `update metadata of document "${current.externalId}"`, shard);
    await this.mirror?.mirrorRewrite(current.collectionId, rewritten, shard);
    await this.session.insertAll(
      docs,
      [{ id, properties: documentProperties(record, filterable) }],
      `update document "${current.externalId}"`,
    );
    await this.collections.bumpVersions([current.collectionId]);
    return record;
  }
}

/** Checks a write before anything is stored; returns the chunks ordered by index. */
function validateWrite(doc: DocumentWrite, dimensions: number): ChunkWrite[] {
  const chunks = [...doc.chunks].sort((a, b) => a.index - b.index);
  chunks.forEach((chunk, position) => {
    // Visibility is "index < chunkCount", so indexes are positions: 0 … n-1, each once.
    if (chunk.index !== position) {
      throw badInput(`Document "${doc.externalId}": chunk indexes must be 0 to ${chunks.length - 1}, each once.`, {
        externalId: doc.externalId,
        index: chunk.index,
      });
    }
    checkChunkVector(doc.externalId, chunk, dimensions);
  });
  return chunks;
}
