import type { KbqlContext } from '../../graphql/request-context';
import { referenceId } from '../../graphql/federation';
import type { ChunkRecord } from '../../ports/knowledge-store.port';

/**
 * `Chunk` entity (`@key(fields: "id")`) for the router: through the per-request chunk loader (one store read per
 * batch of references), and returned only when its document resolves through the per-request document loader — the
 * path of `Query.document` and `Chunk.document` — so a chunk is visible exactly when its document is. Null otherwise.
 */
export async function resolveChunkReference(reference: Record<string, unknown>, ctx: KbqlContext): Promise<ChunkRecord | null> {
  const id = referenceId(reference);
  if (!id) return null;
  const chunk = await ctx.loaders.chunk.load(id);
  if (!chunk) return null;
  return (await ctx.loaders.document.load(chunk.documentId)) ? chunk : null;
}
