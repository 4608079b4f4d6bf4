/**
 * Checks of the knowledge-store port's inputs that every store adapter makes before touching its storage, so that
 * the embedded and the Weaviate store refuse the same requests with the same BAD_USER_INPUT messages.
 */
import { badInput } from '../errors';
import type { ChunkWrite, CollectionShare, SearchRequest, ShareRole } from '../ports/knowledge-store.port';

/** A page request's offset and limit: each a non-negative safe integer. */
export function checkPage(page: { offset: number; limit: number }): { offset: number; limit: number } {
  if (!Number.isSafeInteger(page.offset) || page.offset < 0) throw badInput('offset must be a non-negative integer.');
  if (!Number.isSafeInteger(page.limit) || page.limit < 0) throw badInput('limit must be a non-negative integer.');
  return { offset: page.offset, limit: page.limit };
}

/** A vector of the collection embedder's length with finite components; `what` names it in the message. */
export function checkVector(vector: Float32Array, dimensions: number, what: string): void {
  if (vector.length !== dimensions) {
    throw badInput(`The ${what} has ${vector.length} dimensions; the collection's embedder has ${dimensions}.`, {
      expected: dimensions,
      actual: vector.length,
    });
  }
  if (!allFinite(vector)) throw badInput(`The ${what} contains a non-finite number.`);
}

/** x * 0 is 0 for every finite x and NaN for NaN and ±Infinity: one branch per vector, not per component. */
function allFinite(vector: Float32Array): boolean {
  let zero = 0;
  for (let i = 0; i < vector.length; i++) zero += vector[i]! * 0;
  return zero === 0;
}

/**
 * The vector of one chunk of a document write (see {@link checkVector}). Its message is built only for a vector that
 * fails: a 2 MiB document has thousands of chunks, and building one string each cost the event loop milliseconds.
 */
export function checkChunkVector(externalId: string, chunk: ChunkWrite, dimensions: number): void {
  if (chunk.vector.length === dimensions && allFinite(chunk.vector)) return;
  checkVector(chunk.vector, dimensions, `vector of chunk ${chunk.index} of document "${externalId}"`);
}

/** The query vector a VECTOR or HYBRID search needs (see {@link checkVector}). */
export function checkQueryVector(request: SearchRequest, dimensions: number): Float32Array {
  if (!request.vector) throw badInput(`A ${request.mode} search needs a query vector.`);
  checkVector(request.vector, dimensions, 'query vector');
  return request.vector;
}

/** A collection is shared with other tenants only: its owner already has every right. */
export function checkShareTenant(owner: string, tenant: string): void {
  if (owner === tenant) throw badInput('A collection cannot be shared with the tenant that owns it.', { tenant });
}

/** `shares` with `tenant` granted `role` (or revoked, for null), one grant per tenant, sorted by tenant. */
export function withShare(shares: readonly CollectionShare[], tenant: string, role: ShareRole | null): CollectionShare[] {
  const next = shares.filter((s) => s.tenant !== tenant);
  if (role) next.push({ tenant, role });
  return next.sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0));
}

/** Stored shares (a JSON array of grants, written whole), keeping the well-formed ones; none when absent. */
export function parseShares(json: string | undefined): CollectionShare[] {
  const parsed = JSON.parse(json ?? '[]') as unknown;
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((s: { tenant?: unknown; role?: unknown }) =>
    typeof s?.tenant === 'string' && (s.role === 'READER' || s.role === 'WRITER') ? [{ tenant: s.tenant, role: s.role }] : [],
  );
}
