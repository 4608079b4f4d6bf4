import DataLoader from 'dataloader';
import type { DocumentRecord, KnowledgeStore } from '../../ports/knowledge-store.port';

/** Per-request loader (never shared between requests): documents by id, batched into one store read per tick. */
export const createDocumentLoader = (store: KnowledgeStore) =>
  new DataLoader<string, DocumentRecord | null>((ids) => store.getDocuments([...ids]), { maxBatchSize: 500 });
