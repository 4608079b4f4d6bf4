import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { enableWal } from '../sqlite-wal';
import { AppError } from '../../errors';
import type { ApiKeyPage, ApiKeyRecord, ApiKeyRole, ApiKeyStore } from '../../ports/api-key-store.port';

export interface SqliteApiKeyStoreOptions {
  /** The data directory (KBQL_DATA_DIR); the keys live in `api-keys.sqlite` there. */
  dataDir: string;
  /** How long a write waits for another process's lock, in ms. @default 5000 */
  busyTimeoutMs?: number;
}

interface Row {
  id: string;
  tenant: string;
  name: string;
  role: string;
  secret_hash: string;
  created_by: string;
  created_at: number;
  last_used_at: number | null;
  expires_at: number | null;
  revoked_at: number | null;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at INTEGER,
    revoked_at INTEGER
  ) STRICT;
  CREATE INDEX IF NOT EXISTS api_keys_by_tenant ON api_keys(tenant, created_at DESC, id);
`;

/**
 * API keys in their own SQLite file next to the embedded store's (`<dataDir>/api-keys.sqlite`, WAL): a separate
 * file so the knowledge store's migrations and the keys never depend on each other, and so it also serves a
 * deployment whose knowledge lives in Weaviate (without Redis). Only hashes are stored.
 */
export class SqliteApiKeyStore implements ApiKeyStore {
  readonly kind = 'sqlite';
  readonly filename: string;
  private db: Database.Database | null = null;

  constructor(private readonly options: SqliteApiKeyStoreOptions) {
    this.filename = join(options.dataDir, 'api-keys.sqlite');
  }

  async init(): Promise<void> {
    if (this.db) return;
    mkdirSync(this.options.dataDir, { recursive: true });
    const db = new Database(this.filename, { timeout: this.options.busyTimeoutMs ?? 5000 });
    try {
      enableWal(db, this.options.busyTimeoutMs ?? 5000);
      db.pragma('synchronous = NORMAL');
      db.exec(SCHEMA);
    } catch (error) {
      db.close();
      throw error;
    }
    this.db = db;
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = null;
    db?.close();
  }

  async create(record: ApiKeyRecord): Promise<void> {
    try {
      this.open()
        .prepare(
          `INSERT INTO api_keys (id, tenant, name, role, secret_hash, created_by, created_at, last_used_at, expires_at, revoked_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          record.id,
          record.tenant,
          record.name,
          record.role,
          record.secretHash,
          record.createdBy,
          record.createdAt.getTime(),
          record.lastUsedAt?.getTime() ?? null,
          record.expiresAt?.getTime() ?? null,
          record.revokedAt?.getTime() ?? null,
        );
    } catch (error) {
      if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new AppError('CONFLICT', `An API key with id "${record.id}" exists.`, { id: record.id }, { cause: error });
      }
      throw error;
    }
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    const row = this.open().prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as Row | undefined;
    return row ? toRecord(row) : null;
  }

  async list(tenant: string, page: { offset: number; limit: number }): Promise<ApiKeyPage> {
    const db = this.open();
    const total = (db.prepare('SELECT count(*) AS n FROM api_keys WHERE tenant = ?').get(tenant) as { n: number }).n;
    const rows = db
      .prepare('SELECT * FROM api_keys WHERE tenant = ? ORDER BY created_at DESC, id LIMIT ? OFFSET ?')
      .all(tenant, page.limit, page.offset) as Row[];
    return { items: rows.map(toRecord), total };
  }

  async revoke(id: string, at: Date): Promise<ApiKeyRecord | null> {
    const row = this.open()
      .prepare('UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? RETURNING *')
      .get(at.getTime(), id) as Row | undefined;
    return row ? toRecord(row) : null;
  }

  async touch(id: string, at: Date): Promise<void> {
    this.open().prepare('UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE id = ?').run(at.getTime(), id);
  }

  private open(): Database.Database {
    if (!this.db) throw new AppError('INTERNAL_SERVER_ERROR', 'The API key store is not open.');
    return this.db;
  }
}

function toRecord(row: Row): ApiKeyRecord {
  return {
    id: row.id,
    tenant: row.tenant,
    name: row.name,
    role: row.role as ApiKeyRole,
    secretHash: row.secret_hash,
    createdBy: row.created_by,
    createdAt: new Date(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at),
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at),
  };
}
