/** The embedded store's SQLite schema: migrations and the per-collection FTS5 tables. */
import Database from 'better-sqlite3';
import { AppError } from '../../errors';

export const FTS_TOKENIZE = `tokenize='porter unicode61 remove_diacritics 2'`;

/**
 * Schema migrations; `PRAGMA user_version` holds how many have run. Append, never edit a released one.
 * Each collection also gets its own FTS5 table (`fts_<id hex>`, created with the collection), so BM25 statistics
 * are per collection, as in Weaviate. The FTS tables are contentless with `contentless_delete=1`: the text lives
 * once, in `chunks`, and rows are removed by rowid in the same transaction as the chunk rows.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE collections (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    chunking TEXT NOT NULL,
    embedder_name TEXT NOT NULL,
    embedder_dimensions INTEGER NOT NULL,
    fts_table TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX collections_by_created ON collections(created_at, id);

  CREATE TABLE documents (
    id TEXT PRIMARY KEY NOT NULL,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    title TEXT,
    source TEXT,
    content_type TEXT NOT NULL,
    metadata BLOB NOT NULL,
    content_hash TEXT NOT NULL,
    char_count INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (collection_id, external_id)
  ) STRICT;
  CREATE INDEX documents_by_created ON documents(collection_id, created_at, id);

  CREATE TABLE chunks (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start_offset INTEGER NOT NULL,
    end_offset INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (document_id, idx)
  ) STRICT;
  CREATE INDEX chunks_by_collection ON chunks(collection_id);
  `,
  // 2: collections belong to a tenant; names are unique per tenant (a table rebuild: SQLite cannot drop the old
  // UNIQUE(name)). Runs with foreign keys off (see migrate), so dropping the old table cascades nowhere.
  `
  CREATE TABLE collections_v2 (
    id TEXT PRIMARY KEY NOT NULL,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    chunking TEXT NOT NULL,
    embedder_name TEXT NOT NULL,
    embedder_dimensions INTEGER NOT NULL,
    fts_table TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant, name)
  ) STRICT;
  INSERT INTO collections_v2 (id, tenant, name, description, chunking, embedder_name, embedder_dimensions, fts_table, version, created_at, updated_at)
    SELECT id, 'default', name, description, chunking, embedder_name, embedder_dimensions, fts_table, version, created_at, updated_at FROM collections;
  DROP TABLE collections;
  ALTER TABLE collections_v2 RENAME TO collections;
  CREATE INDEX collections_by_created ON collections(created_at, id);
  CREATE INDEX collections_by_tenant ON collections(tenant, created_at, id);
  `,
  // 3: collections shared with other tenants: a JSON array of {tenant, role}, sorted by tenant, written whole.
  `
  ALTER TABLE collections ADD COLUMN shares TEXT NOT NULL DEFAULT '[]';
  `,
  // 4: re-embedding. A collection's second set of vectors ({role, name, dimensions, expiresAt} as JSON, NULL when
  // none) and those vectors, one row per chunk, gone with their chunk (sqlite.reembedding.ts).
  `
  ALTER TABLE collections ADD COLUMN secondary TEXT;
  CREATE TABLE secondary_vectors (
    chunk_seq INTEGER PRIMARY KEY NOT NULL REFERENCES chunks(seq) ON DELETE CASCADE,
    collection_id TEXT NOT NULL,
    vector BLOB NOT NULL
  ) STRICT;
  CREATE INDEX secondary_vectors_by_collection ON secondary_vectors(collection_id);
  `,
];

export function migrate(db: Database.Database): void {
  // A migration may rebuild a table others reference: foreign keys are off while it runs (the pragma is a no-op
  // inside a transaction) and checked before the commit.
  const pending = (db.pragma('user_version', { simple: true }) as number) < MIGRATIONS.length;
  if (pending) db.pragma('foreign_keys = OFF');
  try {
    migrateInTransaction(db);
  } finally {
    if (pending) db.pragma('foreign_keys = ON');
  }
}

function migrateInTransaction(db: Database.Database): void {
  // IMMEDIATE: two processes opening a fresh file at once migrate one after the other.
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new AppError(
        'INTERNAL_SERVER_ERROR',
        `The database schema (version ${current}) is newer than this kbql understands (${MIGRATIONS.length}).`,
      );
    }
    if (current === MIGRATIONS.length) return;
    for (let version = current; version < MIGRATIONS.length; version++) db.exec(MIGRATIONS[version]!);
    const broken = db.pragma('foreign_key_check') as unknown[];
    if (broken.length > 0) throw new AppError('INTERNAL_SERVER_ERROR', `Migration left ${broken.length} rows with a dangling reference.`);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

export function ftsTableName(collectionId: string): string {
  return `fts_${collectionId.replace(/-/g, '')}`;
}

/** FTS table names are interpolated into SQL: accept only the shape this adapter creates. */
export function assertFtsName(name: string): string {
  if (!/^fts_[0-9a-f]{32}$/.test(name)) throw new AppError('INTERNAL_SERVER_ERROR', 'Corrupt collection row.');
  return name;
}
