/** Access policy: which collections (and so documents and chunks) a caller may see and change. */
import { AppError, notFound } from '../../errors';
import { DEFAULT_TENANT, type CollectionRecord, type ShareRole } from '../../ports/knowledge-store.port';
import type { Access, Principal } from '../../ports/principal.port';

/** With KBQL_AUTH_MODE=none every caller is an ADMIN of the default tenant. */
export const DEVELOPMENT_PRINCIPAL: Principal = Object.freeze({
  kind: 'development',
  subject: 'development',
  tenant: DEFAULT_TENANT,
  role: 'ADMIN',
});

/**
 * The access scope of a caller (see `KbqlContext.scope`): callers who may see the same collections share it.
 * Access is decided by the caller's tenant alone — its own collections plus the ones shared with that tenant (shares
 * are granted to tenants, never to single callers) — so callers of one tenant always see the same set and the
 * tenant is the scope. A share change needs nothing more: every search and ask re-reads its collection and checks
 * {@link canSee} before the result cache is consulted, and the change bumps the collection's version, which is part
 * of every result key (see `QueryResultCache.key`).
 */
export const accessScope = (access: Access): string => `tenant:${access.tenant}`;

type Shared = Pick<CollectionRecord, 'tenant' | 'shares'>;

/** The share `collection` grants `access`'s tenant: null for its owner's tenant and for tenants it is not shared with. */
export const shareOf = (access: Access, collection: Shared): ShareRole | null =>
  collection.tenant === access.tenant ? null : (collection.shares?.find((s) => s.tenant === access.tenant)?.role ?? null);

/** Whether `access` may see `collection` (and so its documents and chunks): its tenant owns it or it is shared with it. */
export const canSee = (access: Access, collection: Shared): boolean =>
  collection.tenant === access.tenant || shareOf(access, collection) !== null;

/**
 * Whether `access` may write the documents of `collection` (ingest, delete, edit metadata): its tenant owns it, or it
 * is shared with that tenant as WRITER. The caller's own role is checked by `@auth` on the mutation.
 */
export const canWrite = (access: Access, collection: Shared): boolean =>
  collection.tenant === access.tenant || shareOf(access, collection) === 'WRITER';

/** Throws FORBIDDEN when `access` may see `collection` but only read it (a READER share). */
export function assertWritable(access: Access, collection: Shared & Pick<CollectionRecord, 'id' | 'name'>): void {
  if (!canWrite(access, collection)) {
    throw new AppError('FORBIDDEN', `Collection "${collection.name}" is shared with your tenant read-only.`, {
      reason: 'READ_ONLY_SHARE',
      collection: collection.id,
    });
  }
}

/** Throws FORBIDDEN unless `access`'s tenant owns `collection` (renaming, deleting and sharing it are the owner's). */
export function assertOwner(access: Access, collection: Shared & Pick<CollectionRecord, 'id' | 'name'>): void {
  if (collection.tenant !== access.tenant) {
    throw new AppError('FORBIDDEN', `Collection "${collection.name}" belongs to another tenant; only its owner may change it.`, {
      reason: 'NOT_OWNER',
      collection: collection.id,
    });
  }
}

/** `collection` when `access` may see it, else null (another tenant's collection is indistinguishable from none). */
export const visible = <T extends Shared>(access: Access, collection: T | null): T | null =>
  collection && canSee(access, collection) ? collection : null;

/** Throws the NOT_FOUND a missing collection would give, so existence in another tenant never shows. */
export function assertVisible<T extends Shared>(access: Access, collection: T | null, what: string, id: string): T {
  const seen = visible(access, collection);
  if (!seen) throw notFound(what, id);
  return seen;
}
