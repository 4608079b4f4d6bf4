import type { KbqlContext } from '../../graphql/request-context';
import { referenceId } from '../../graphql/federation';
import type { DocumentRecord } from '../../ports/knowledge-store.port';

/**
 * `Document` entity (`@key(fields: "id")`) for the router: through the per-request document loader, exactly like
 * `Query.document`, so references batch into one store read and get the same access rules. Null when the document
 * does not exist or the caller may not see it.
 */
export function resolveDocumentReference(reference: Record<string, unknown>, ctx: KbqlContext): Promise<DocumentRecord | null> | null {
  const id = referenceId(reference);
  return id ? ctx.loaders.document.load(id) : null;
}
