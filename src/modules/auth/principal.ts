import { notFound } from '../../errors';
import { DEFAULT_TENANT, type CollectionRecord } from '../../ports/knowledge-store.port';

/** Roles, weakest first: each one may do everything the ones before it may. */
export const ROLES = ['READER', 'WRITER', 'ADMIN'] as const;
export type Role = (typeof ROLES)[number];
const RANK: Readonly<Record<Role, number>> = { READER: 1, WRITER: 2, ADMIN: 3 };

export const isRole = (value: unknown): value is Role => typeof value === 'string' && (ROLES as readonly string[]).includes(value);

/** What the services need to know about a caller to decide what it may see: its tenant. */
export interface Access {
  readonly tenant: string;
}

/** An identified caller. */
export interface Principal extends Access {
  /** `user`: a verified JWT; `development`: KBQL_AUTH_MODE=none (everyone is this one principal). */
  readonly kind: 'user' | 'development';
  /** The token's `sub`, or `development`. */
  readonly subject: string;
  readonly role: Role;
}

/** With KBQL_AUTH_MODE=none every caller is an ADMIN of the default tenant. */
export const DEVELOPMENT_PRINCIPAL: Principal = Object.freeze({ kind: 'development', subject: 'development', tenant: DEFAULT_TENANT, role: 'ADMIN' });

/** True when `principal` holds `required` or a stronger role; false for no principal. */
export function hasRole(principal: Principal | null, required: Role): boolean {
  return principal !== null && RANK[principal.role] >= RANK[required];
}

/**
 * The access scope of a caller (see `KbqlContext.scope`): callers who may see the same collections share it. Access
 * is decided by tenant alone, so the tenant is the scope.
 */
export const accessScope = (access: Access): string => `tenant:${access.tenant}`;

/** Whether `access` may see `collection` (and so its documents and chunks). */
export const canSee = (access: Access, collection: Pick<CollectionRecord, 'tenant'>): boolean => collection.tenant === access.tenant;

/** `collection` when `access` may see it, else null (another tenant's collection is indistinguishable from none). */
export const visible = <T extends Pick<CollectionRecord, 'tenant'>>(access: Access, collection: T | null): T | null =>
  collection && canSee(access, collection) ? collection : null;

/** Throws the NOT_FOUND a missing collection would give, so existence in another tenant never shows. */
export function assertVisible<T extends Pick<CollectionRecord, 'tenant'>>(access: Access, collection: T | null, what: string, id: string): T {
  const seen = visible(access, collection);
  if (!seen) throw notFound(what, id);
  return seen;
}
