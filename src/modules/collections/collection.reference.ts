import type { KbqlContext } from '../../graphql/request-context';
import { referenceId } from '../../graphql/federation';
import type { CollectionRecord } from '../../ports/knowledge-store.port';

/**
 * `Collection` entity (`@key(fields: "id")`) for the router: through the per-request collection loader, the path
 * `Document.collection` takes, so a batch of references is one read per distinct id and gets the loader's access
 * rules. Null when the collection does not exist or the caller may not see it.
 */
export function resolveCollectionReference(reference: Record<string, unknown>, ctx: KbqlContext): Promise<CollectionRecord | null> | null {
  const id = referenceId(reference);
  return id ? ctx.loaders.collection.load(id) : null;
}
