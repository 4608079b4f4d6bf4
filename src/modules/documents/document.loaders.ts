import DataLoader from 'dataloader';
import type { CollectionRecord, ChunkRecord, DocumentRecord, KnowledgeStore } from '../../ports/knowledge-store.port';

/** The request's collection loader: it decides access (see `createCollectionLoader`). */
type CollectionLoader = DataLoader<string, CollectionRecord | null>;

/**
 * Per-request loader (never shared between requests): documents by id, batched into one store read per tick. A
 * document has its collection's access: it loads as null when `collections` (the request's collection loader) does
 * not give its collection — `document(id)`, `Chunk.document`, ingestion results and `_entities` all go through here.
 */
export const createDocumentLoader = (store: KnowledgeStore, collections: CollectionLoader) =>
  new DataLoader<string, DocumentRecord | null>(
    async (ids) => {
      const docs = await store.getDocuments([...ids]);
      const owners = await Promise.all(docs.map((d) => (d ? collections.load(d.collectionId) : Promise.resolve(null))));
      return docs.map((d, i) => (d && owners[i] ? d : null));
    },
    { maxBatchSize: 500 },
  );

/** Per-request loader (never shared between requests): chunks by id, batched; null unless its collection is visible. */
export const createChunkLoader = (store: KnowledgeStore, collections: CollectionLoader) =>
  new DataLoader<string, ChunkRecord | null>(
    async (ids) => {
      const chunks = await store.getChunks([...ids]);
      const owners = await Promise.all(chunks.map((c) => (c ? collections.load(c.collectionId) : Promise.resolve(null))));
      return chunks.map((c, i) => (c && owners[i] ? c : null));
    },
    { maxBatchSize: 500 },
  );
