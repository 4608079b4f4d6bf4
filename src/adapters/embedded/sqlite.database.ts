/**
 * The embedded store's SQLite file as its parts use it: the writing and the reading connection, prepared statements,
 * the gate that holds other writes while one is open on the writer thread, and SQLite's failures as AppErrors.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { enableWal } from '../sqlite-wal';
import { AppError, notFound } from '../../errors';
import type { CollectionRow } from './sqlite.rows';
import { assertFtsName, migrate } from './sqlite.schema';
import { WalCheckpointer } from './wal-checkpointer';

/** Distinct dynamic (filter-shaped) statements kept prepared. */
const MAX_CACHED_STATEMENTS = 256;

/** Per collection written in a transaction: its version before the transaction and after it. */
export type VersionBumps = Map<string, { before: number; after: number }>;

export interface FtsStatements {
  insert: Database.Statement;
  deleteByDocument: Database.Statement;
  deleteBySeqs: Database.Statement;
}

/** Page size of a new database file, in bytes. */
const PAGE_SIZE = 16_384;

/**
 * `main`: the store's connections (writing and reading), migrations and WAL checkpoints; `writer`: one writing
 * connection to an existing file, what the store's writer thread opens (`sqlite-writer.ts`).
 */
export type DatabaseRole = 'main' | 'writer';

export class SqliteDatabase {
  /** Full path of the database file. */
  readonly filename: string;

  private db: Database.Database | null = null;
  /** Reads while a write is open on the writer thread: a second connection sees only committed data (WAL). */
  private reader: Database.Database | null = null;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly readerStatements = new Map<string, Database.Statement>();
  /** Set while an exclusive write (on the writer thread) is open; resolves when it ends. Other writes wait for it. */
  private exclusiveWrite: Promise<void> | null = null;
  private checkpointer: WalCheckpointer | null = null;
  private readonly ftsStatements = new Map<string, FtsStatements>();
  private dataVersion: Database.Statement | null = null;

  constructor(
    private readonly dataDir: string,
    private readonly busyTimeoutMs: number,
    private readonly synchronousFull: boolean,
    private readonly role: DatabaseRole = 'main',
  ) {
    this.filename = join(dataDir, 'kbql.sqlite');
  }

  async init(): Promise<void> {
    if (this.db) return;
    if (this.role === 'writer') {
      this.db = this.configure(new Database(this.filename, { timeout: this.busyTimeoutMs, fileMustExist: true }));
      return;
    }
    mkdirSync(this.dataDir, { recursive: true });
    const db = new Database(this.filename, { timeout: this.busyTimeoutMs });
    try {
      // A new database gets 16 KiB pages (an existing one keeps its own: SQLite ignores this once it has tables). A
      // 1,024-dimension vector is 4 KiB: with 4 KiB pages every chunk row overflowed to a second page, and the
      // COMMIT of a 2 MiB document took 46 ms instead of 11.
      db.pragma(`page_size = ${PAGE_SIZE}`);
      this.configure(db);
      migrate(db);
    } catch (error) {
      db.close();
      throw storageError(error) ?? error;
    }
    this.db = db;
    this.reader = new Database(this.filename, { readonly: true, timeout: this.busyTimeoutMs });
    this.checkpointer = new WalCheckpointer(this.filename);
  }

  /** A writing connection's settings (every connection that writes has them: they are per connection). */
  private configure(db: Database.Database): Database.Database {
    enableWal(db, this.busyTimeoutMs);
    db.pragma('foreign_keys = ON');
    db.pragma(`synchronous = ${this.synchronousFull ? 'FULL' : 'NORMAL'}`);
    db.pragma('temp_store = MEMORY');
    // Checkpoints run on a worker thread (see WalCheckpointer), not inside a large COMMIT.
    db.pragma('wal_autocheckpoint = 0');
    return db;
  }

  /** Waits for an exclusive write to end, then checkpoints the WAL and closes both connections. */
  async close(): Promise<void> {
    await this.writable();
    const db = this.db;
    if (!db) return;
    this.db = null;
    await this.checkpointer?.close();
    this.checkpointer = null;
    this.reader?.close();
    this.reader = null;
    this.dataVersion = null;
    this.readerStatements.clear();
    this.statements.clear();
    this.ftsStatements.clear();
    try {
      db.pragma('optimize');
    } finally {
      db.close();
    }
  }

  /**
   * The connection for the code running now: the writing one, except while an exclusive write is open — then the
   * reading one, which sees only committed data.
   */
  open(): Database.Database {
    if (!this.db) throw new AppError('UPSTREAM_UNAVAILABLE', 'The embedded store is not open.');
    return this.exclusiveWrite && this.reader ? this.reader : this.db;
  }

  /**
   * Resolves when no exclusive write is open; the caller's transaction then runs alone, provided it runs synchronously
   * right after (an exclusive write starting meanwhile first lets such transactions end: see {@link exclusive}).
   */
  async writable(): Promise<void> {
    while (this.exclusiveWrite) await this.exclusiveWrite;
  }

  /**
   * Runs `write` (a write on the writer thread) as the one open exclusive write: until it settles, other writes wait
   * ({@link writable}) and reads here use the reading connection.
   */
  async exclusive<T>(write: () => Promise<T>): Promise<T> {
    for (;;) {
      await this.writable();
      // Writes whose wait ended before this one's did are queued as microtasks and write synchronously: one turn of
      // the event loop lets them all end before the gate closes (otherwise they would find the reading connection).
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.exclusiveWrite) break;
    }
    let done!: () => void;
    this.exclusiveWrite = new Promise<void>((resolve) => (done = resolve));
    try {
      return await write();
    } finally {
      this.exclusiveWrite = null;
      done();
    }
  }

  /**
   * A number that changes whenever any other connection commits — this store's writing connection included — read
   * on the reading connection (`PRAGMA data_version`, ~1 µs): rows read while it holds are still current. Null when a
   * transaction is open on the writing connection (its uncommitted rows would not match) or the store is closed.
   */
  committedVersion(): number | null {
    if (!this.reader || !this.db || this.db.inTransaction || this.exclusiveWrite) return null;
    this.dataVersion ??= this.reader.prepare('PRAGMA data_version').pluck();
    return this.dataVersion.get() as number;
  }

  /** After every committed write: a WAL checkpoint is due. */
  committed(): void {
    this.checkpointer?.poke();
  }

  /**
   * A cached prepared statement, keyed by mode and SQL (so every filter of one shape shares one), least recently
   * used evicted first. `pluck` returns the first column's value, `raw` rows as arrays.
   */
  prepare(sql: string, mode: 'object' | 'pluck' | 'raw' = 'object'): Database.Statement {
    const key = `${mode}:${sql}`;
    const db = this.open();
    const cache = db === this.reader ? this.readerStatements : this.statements;
    let statement = cache.get(key);
    if (statement) {
      cache.delete(key);
    } else {
      if (cache.size >= MAX_CACHED_STATEMENTS) cache.delete(cache.keys().next().value as string);
      statement = db.prepare(sql);
      if (mode === 'pluck') statement.pluck(true);
      if (mode === 'raw') statement.raw(true);
    }
    cache.set(key, statement);
    return statement;
  }

  fts(collectionId: string): FtsStatements {
    let statements = this.ftsStatements.get(collectionId);
    if (!statements) {
      const row = this.collectionRow(collectionId);
      if (!row) throw notFound('Collection', collectionId);
      const table = assertFtsName(row.fts_table);
      const db = this.open();
      statements = {
        insert: db.prepare(`INSERT INTO ${table} (rowid, text) VALUES (?, ?)`),
        deleteByDocument: db.prepare(`DELETE FROM ${table} WHERE rowid IN (SELECT seq FROM chunks WHERE document_id = ?)`),
        deleteBySeqs: db.prepare(`DELETE FROM ${table} WHERE rowid IN (SELECT value FROM json_each(?))`),
      };
      this.ftsStatements.set(collectionId, statements);
    }
    return statements;
  }

  /** Forgets the FTS statements of a collection whose FTS table is dropped. */
  dropFts(collectionId: string): void {
    this.ftsStatements.delete(collectionId);
  }

  collectionRow(id: string): CollectionRow | undefined {
    return this.prepare('SELECT * FROM collections WHERE id = ?').get(id) as CollectionRow | undefined;
  }

  /** Inside a write transaction: bumps the collection's version and records before/after in `bumps`. */
  bumpVersion(collectionId: string, now: number, bumps: VersionBumps): void {
    const version = this.prepare(
      'UPDATE collections SET version = version + 1, updated_at = ? WHERE id = ? RETURNING version',
      'pluck',
    ).get(now, collectionId) as number | undefined;
    if (version === undefined) return;
    const seen = bumps.get(collectionId);
    bumps.set(collectionId, { before: seen?.before ?? version - 1, after: version });
  }
}

/**
 * SQLite's "cannot write" failures (disk full, read-only file system or file, I/O error, cannot open) as AppError
 * STORAGE_UNAVAILABLE, or null for anything else. The failed transaction was rolled back in full, so nothing
 * partial is left: the caller may retry once space returns.
 */
export function storageError(error: unknown): AppError | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^SQLITE_(FULL|READONLY|IOERR|CANTOPEN)/.test(code)) return null;
  const reason = code.startsWith('SQLITE_FULL')
    ? 'disk full'
    : code.startsWith('SQLITE_READONLY')
      ? 'read-only'
      : code.startsWith('SQLITE_CANTOPEN')
        ? 'cannot open the database file: missing, read-only or full'
        : 'I/O error';
  return new AppError(
    'STORAGE_UNAVAILABLE',
    `The embedded store cannot write to its data directory (${reason}); nothing was changed.`,
    { reason, sqliteCode: code },
    { cause: error },
  );
}
