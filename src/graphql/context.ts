import type { CollectionService } from '../modules/collections/collection.service';
import { createCollectionLoader } from '../modules/collections/collection.loaders';
import type { DocumentService } from '../modules/documents/document.service';
import { createDocumentLoader } from '../modules/documents/document.loaders';
import type { IngestionService } from '../modules/ingestion/ingestion.service';
import type { QueryService } from '../modules/query/query.service';
import type { KnowledgeStore } from '../ports/knowledge-store.port';

export interface Services {
  collections: CollectionService;
  documents: DocumentService;
  ingestion: IngestionService;
  query: QueryService;
}

export interface Loaders {
  collection: ReturnType<typeof createCollectionLoader>;
  document: ReturnType<typeof createDocumentLoader>;
}

/** What every resolver receives; built fresh for each request. */
export interface KbqlContext {
  requestId: string;
  loaders: Loaders;
}

export function createContext(store: KnowledgeStore, requestId: string): KbqlContext {
  return { requestId, loaders: { collection: createCollectionLoader(store), document: createDocumentLoader(store) } };
}
