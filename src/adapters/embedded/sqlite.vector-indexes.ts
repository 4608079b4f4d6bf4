/**
 * The in-memory exact vector index of each collection searched: loaded from SQLite on first use, then kept up to
 * date by the writes made through this store, and reloaded when another writer moved the collection on.
 */
import type { SqliteDatabase, VersionBumps } from './sqlite.database';
import type { CollectionRow } from './sqlite.rows';
import { VectorIndex } from './vector-index';

/** Changes to apply to a loaded vector index once the transaction that made them has committed, in order. */
export type IndexOp =
  | { kind: 'add'; collectionId: string; rowId: number; chunkId: string; vector: Float32Array }
  | { kind: 'remove'; collectionId: string; rowId: number };

export class LoadedVectorIndexes {
  private readonly indexes = new Map<string, { index: VectorIndex; version: number }>();

  constructor(private readonly db: SqliteDatabase) {}

  /**
   * After every committed write: a checkpoint is due, and the loaded indexes of the collections the transaction
   * bumped are brought up to date. An index that had missed a version (another writer got in between) is dropped
   * instead, to be reloaded on next use.
   */
  afterCommit(ops: readonly IndexOp[], bumps: VersionBumps): void {
    this.db.committed();
    for (const [collectionId, { before, after }] of bumps) {
      const entry = this.indexes.get(collectionId);
      if (!entry) continue;
      if (entry.version !== before) {
        this.indexes.delete(collectionId);
        continue;
      }
      for (const op of ops) {
        if (op.collectionId !== collectionId) continue;
        if (op.kind === 'remove') entry.index.remove(op.rowId);
        else entry.index.add(op.rowId, op.chunkId, op.vector);
      }
      entry.version = after;
    }
  }

  /** The collection's vector index: loaded from SQLite on first use, and again if the collection moved on without it. */
  get(collection: CollectionRow): VectorIndex {
    const entry = this.indexes.get(collection.id);
    if (entry && entry.version === collection.version) return entry.index;
    // One read transaction, so the rows and the version they belong to are one snapshot.
    const loaded = this.db.open().transaction(() => {
      const version = this.db.prepare('SELECT version FROM collections WHERE id = ?', 'pluck').get(collection.id) as number;
      const n = this.db.prepare('SELECT count(*) FROM chunks WHERE collection_id = ?', 'pluck').get(collection.id) as number;
      const index = new VectorIndex(collection.embedder_dimensions, Math.max(64, n));
      // Raw rows: no per-row objects beyond the array and the BLOB buffer, copied straight into the matrix.
      const rows = this.db.prepare('SELECT seq, id, vector FROM chunks WHERE collection_id = ?', 'raw');
      for (const row of rows.iterate(collection.id) as IterableIterator<[number, string, Buffer]>) {
        index.addBytes(row[0], row[1], row[2]);
      }
      return { index, version };
    })();
    this.indexes.set(collection.id, loaded);
    return loaded.index;
  }

  /** Forgets the index of a deleted collection. */
  drop(collectionId: string): void {
    this.indexes.delete(collectionId);
  }

  clear(): void {
    this.indexes.clear();
  }
}
