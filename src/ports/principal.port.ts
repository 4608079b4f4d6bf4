/**
 * Who is calling: what the token verifier and the API-key service produce, the `@auth` directive checks and the
 * services decide access by. The role list and the tenant pattern are part of the contract (a verifier refuses a
 * credential whose claims do not match them), so they live here with the types they define.
 */

/** Roles, weakest first: each one may do everything the ones before it may. */
export const ROLES = ['READER', 'WRITER', 'ADMIN'] as const;
export type Role = (typeof ROLES)[number];
const RANK: Readonly<Record<Role, number>> = { READER: 1, WRITER: 2, ADMIN: 3 };

/** What a tenant name looks like (JWT claim, API key, share grantee). */
export const TENANT_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Whether `value` names a role (a claim or an argument read from outside is checked with this). */
export const isRole = (value: unknown): value is Role => typeof value === 'string' && (ROLES as readonly string[]).includes(value);

/** What the services need to know about a caller to decide what it may see: its tenant. */
export interface Access {
  readonly tenant: string;
}

/** An identified caller. */
export interface Principal extends Access {
  /**
   * `user`: a verified JWT; `service`: an API key (`kbql_…`, see `api-key.service.ts`); `development`:
   * KBQL_AUTH_MODE=none (everyone is this one principal).
   */
  readonly kind: 'user' | 'service' | 'development';
  /** The token's `sub`, `apikey:<key id>`, or `development`. */
  readonly subject: string;
  readonly role: Role;
}

/** True when `principal` holds `required` or a stronger role; false for no principal. */
export function hasRole(principal: Principal | null, required: Role): boolean {
  return principal !== null && RANK[principal.role] >= RANK[required];
}
