/**
 * Where service API keys are kept (see `modules/auth/api-key.service.ts`): the embedded SQLite file
 * (`<KBQL_DATA_DIR>/api-keys.sqlite`, `adapters/auth/sqlite.api-key-store.ts`) or Redis (`redis.api-key-store.ts`,
 * with the Weaviate store and REDIS_URL set). A store never sees a key's secret: only the SHA-256 of it.
 */

import type { Role } from './principal.port';

/** The roles a key may carry (the same ladder as a JWT's role claim). */
export type ApiKeyRole = Role;

export interface ApiKeyRecord {
  /** The public part of the key (`kbql_<id>_<secret>`): 16 lowercase hex characters, unique. */
  id: string;
  /** The tenant the key acts for. */
  tenant: string;
  /** What the key is for, as its creator named it. */
  name: string;
  role: ApiKeyRole;
  /** SHA-256 of the secret part, lowercase hex (64 characters). */
  secretHash: string;
  /** The `subject` of the principal that created it. */
  createdBy: string;
  createdAt: Date;
  /** When a request last authenticated with it (updated at most once per verification-cache period). */
  lastUsedAt: Date | null;
  /** null: never expires. */
  expiresAt: Date | null;
  /** null: not revoked. */
  revokedAt: Date | null;
}

export interface ApiKeyPage {
  items: ApiKeyRecord[];
  total: number;
}

/** The keys of every tenant, by id. */
export interface ApiKeyStore {
  /** `sqlite` or `redis`, for logs. */
  readonly kind: string;
  /** Opens the file or connection, creates what is missing. Idempotent. */
  init(): Promise<void>;
  /** Closes the file or connection. */
  close(): Promise<void>;
  /** Stores a new key; throws CONFLICT when the id exists. */
  create(record: ApiKeyRecord): Promise<void>;
  /** The key with that id, revoked and expired ones included; null when unknown. */
  get(id: string): Promise<ApiKeyRecord | null>;
  /** A tenant's keys, newest first (then by id). */
  list(tenant: string, page: { offset: number; limit: number }): Promise<ApiKeyPage>;
  /** Sets `revokedAt` unless already set; the record as it is after; null when unknown. */
  revoke(id: string, at: Date): Promise<ApiKeyRecord | null>;
  /** Records a use (best effort: callers ignore its failure). */
  touch(id: string, at: Date): Promise<void>;
}
