import DataLoader from 'dataloader';
import type { CollectionRecord, KnowledgeStore } from '../../ports/knowledge-store.port';

/** Per-request loader (never shared between requests): collections by id, one store read per distinct id. */
export const createCollectionLoader = (store: KnowledgeStore) =>
  new DataLoader<string, CollectionRecord | null>((ids) => Promise.all(ids.map((id) => store.getCollection(id))));
