import DataLoader from 'dataloader';
import type { CollectionRecord, KnowledgeStore } from '../../ports/knowledge-store.port';
import { visible } from '../auth/principal';
import type { Access } from '../../ports/principal.port';

/**
 * Per-request loader (never shared between requests): collections by id, one store read per distinct id. A
 * collection `access` may not see (another tenant's; any, without access) loads as null, like a missing one.
 */
export const createCollectionLoader = (store: KnowledgeStore, access: Access | null) =>
  new DataLoader<string, CollectionRecord | null>((ids) =>
    Promise.all(ids.map(async (id) => (access ? visible(access, await store.getCollection(id)) : null))),
  );
