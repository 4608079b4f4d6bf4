/**
 * Re-embedding in the embedded store (see `ReembeddingStore` in the port): a collection's secondary vectors live in
 * `secondary_vectors`, one row per chunk (deleted with it), next to the active ones in `chunks.vector`. Searches never
 * read them; the switch swaps the two sets in one transaction, then the collection's loaded vector index (exact or
 * ANN, with its saved graph) is dropped and reloaded from SQLite on the next search, so it never mixes the two.
 */
import { AppError, badInput, notFound } from '../../errors';
import { sameEmbedder } from '../../ports/embedder.port';
import type {
  CollectionRecord,
  EmbedderInfo,
  PendingChunk,
  ReembeddingStore,
  SecondaryEmbedding,
  SecondaryProgress,
} from '../../ports/knowledge-store.port';
import { checkVector } from '../store-checks';
import { storageError, type SqliteDatabase, type VersionBumps } from './sqlite.database';
import { parseSecondary, stringifySecondary, toCollection, type CollectionRow } from './sqlite.rows';
import type { LoadedVectorIndexes } from './sqlite.vector-indexes';

export class SqliteReembedding implements ReembeddingStore {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly indexes: LoadedVectorIndexes,
  ) {}

  async startSecondary(collectionId: string, embedder: EmbedderInfo): Promise<CollectionRecord> {
    return this.write(collectionId, (row, secondary) => {
      if (sameEmbedder(activeOf(row), embedder)) {
        throw badInput('The collection already uses this embedder.', { reason: 'SAME_EMBEDDER' });
      }
      if (secondary?.role === 'BUILDING') {
        if (sameEmbedder(secondary.embedder, embedder)) return false;
        throw new AppError('CONFLICT', `The collection is already being re-embedded with ${secondary.embedder.name}.`, {
          reason: 'REEMBED_IN_PROGRESS',
          embedder: secondary.embedder.name,
        });
      }
      this.db.prepare('DELETE FROM secondary_vectors WHERE collection_id = ?').run(collectionId);
      this.setSecondary(collectionId, { role: 'BUILDING', embedder, expiresAt: null });
      return true;
    });
  }

  async pendingChunks(collectionId: string, limit: number): Promise<PendingChunk[]> {
    const row = this.db.collectionRow(collectionId);
    if (!row) throw notFound('Collection', collectionId);
    if (!row.secondary) return [];
    return this.db
      .prepare(
        `SELECT c.id, c.text FROM chunks c WHERE c.collection_id = ?
         AND NOT EXISTS (SELECT 1 FROM secondary_vectors s WHERE s.chunk_seq = c.seq) ORDER BY c.seq LIMIT ?`,
      )
      .all(collectionId, limit) as PendingChunk[];
  }

  async writeSecondaryVectors(
    collectionId: string,
    embedder: EmbedderInfo,
    vectors: { chunkId: string; vector: Float32Array }[],
  ): Promise<number> {
    vectors.forEach((v) => checkVector(v.vector, embedder.dimensions, `secondary vector of chunk ${v.chunkId}`));
    await this.db.writable();
    try {
      return this.db
        .open()
        .transaction((): number => {
          const row = this.db.collectionRow(collectionId);
          if (!row) throw notFound('Collection', collectionId);
          const secondary = parseSecondary(row.secondary);
          if (!secondary || !sameEmbedder(secondary.embedder, embedder)) {
            throw new AppError('CONFLICT', 'The collection has no secondary vectors of this embedder (cancelled or replaced).', {
              reason: 'SECONDARY_CHANGED',
            });
          }
          const seqOf = this.db.prepare('SELECT seq FROM chunks WHERE id = ? AND collection_id = ?', 'pluck');
          const put = this.db.prepare('INSERT OR REPLACE INTO secondary_vectors (chunk_seq, collection_id, vector) VALUES (?, ?, ?)');
          let written = 0;
          for (const { chunkId, vector } of vectors) {
            const seq = seqOf.get(chunkId, collectionId) as number | undefined;
            if (seq === undefined) continue;
            put.run(seq, collectionId, Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength));
            written++;
          }
          return written;
        })
        .immediate();
    } catch (error) {
      throw storageError(error) ?? error;
    } finally {
      this.db.committed();
    }
  }

  async secondaryProgress(collectionId: string): Promise<SecondaryProgress> {
    const row = this.db.collectionRow(collectionId);
    if (!row) throw notFound('Collection', collectionId);
    return this.counts(collectionId);
  }

  async swapEmbedding(collectionId: string, keepPreviousUntil: Date | null): Promise<CollectionRecord> {
    const swapped = await this.write(
      collectionId,
      (row, secondary) => {
        if (!secondary) throw new AppError('CONFLICT', 'The collection has no secondary vectors to switch to.', { reason: 'NO_SECONDARY' });
        const { total, embedded } = this.counts(collectionId);
        if (embedded < total) {
          throw new AppError('CONFLICT', `${total - embedded} chunks have no vector of ${secondary.embedder.name} yet.`, {
            reason: 'SECONDARY_INCOMPLETE',
            pending: total - embedded,
          });
        }
        const db = this.db.open();
        db.exec('CREATE TEMP TABLE IF NOT EXISTS kbql_vector_swap (seq INTEGER PRIMARY KEY, vector BLOB NOT NULL)');
        db.exec('DELETE FROM temp.kbql_vector_swap');
        this.db
          .prepare('INSERT INTO temp.kbql_vector_swap (seq, vector) SELECT seq, vector FROM chunks WHERE collection_id = ?')
          .run(collectionId);
        this.db
          .prepare(
            `UPDATE chunks SET vector = (SELECT s.vector FROM secondary_vectors s WHERE s.chunk_seq = chunks.seq)
           WHERE collection_id = ?`,
          )
          .run(collectionId);
        this.db.prepare('DELETE FROM secondary_vectors WHERE collection_id = ?').run(collectionId);
        if (keepPreviousUntil) {
          this.db
            .prepare('INSERT INTO secondary_vectors (chunk_seq, collection_id, vector) SELECT seq, ?, vector FROM temp.kbql_vector_swap')
            .run(collectionId);
        }
        db.exec('DELETE FROM temp.kbql_vector_swap');
        this.db
          .prepare('UPDATE collections SET embedder_name = ?, embedder_dimensions = ? WHERE id = ?')
          .run(secondary.embedder.name, secondary.embedder.dimensions, collectionId);
        this.setSecondary(
          collectionId,
          keepPreviousUntil ? { role: 'PREVIOUS', embedder: activeOf(row), expiresAt: keepPreviousUntil } : null,
        );
        return true;
      },
      true,
    );
    return swapped;
  }

  async dropSecondary(collectionId: string): Promise<CollectionRecord> {
    return this.write(collectionId, (_row, secondary) => {
      if (!secondary) return false;
      this.db.prepare('DELETE FROM secondary_vectors WHERE collection_id = ?').run(collectionId);
      this.setSecondary(collectionId, null);
      return true;
    });
  }

  /**
   * One write transaction on the collection's row: `change` returns whether it changed anything (then the version is
   * bumped). The loaded vector index only learns the new version (the active vectors did not change), except with
   * `reload` (the swap): then it (and an ANN graph file) holds the old vectors and is dropped in the same turn of the
   * event loop as the commit, so no search meets it; the next one loads the new vectors from SQLite.
   */
  private async write(
    collectionId: string,
    change: (row: CollectionRow, secondary: SecondaryEmbedding | null) => boolean,
    reload = false,
  ): Promise<CollectionRecord> {
    await this.db.writable();
    const bumps: VersionBumps = new Map();
    let row: CollectionRow;
    try {
      row = this.db
        .open()
        .transaction((): CollectionRow => {
          const current = this.db.collectionRow(collectionId);
          if (!current) throw notFound('Collection', collectionId);
          if (change(current, parseSecondary(current.secondary))) this.db.bumpVersion(collectionId, Date.now(), bumps);
          return this.db.collectionRow(collectionId)!;
        })
        .immediate();
    } catch (error) {
      throw storageError(error) ?? error;
    }
    if (reload) {
      this.db.committed();
      this.indexes.drop(collectionId);
    } else this.indexes.afterCommit([], bumps);
    return toCollection(row);
  }

  private setSecondary(collectionId: string, secondary: SecondaryEmbedding | null): void {
    this.db.prepare('UPDATE collections SET secondary = ? WHERE id = ?').run(stringifySecondary(secondary), collectionId);
  }

  private counts(collectionId: string): SecondaryProgress {
    const total = this.db.prepare('SELECT count(*) FROM chunks WHERE collection_id = ?', 'pluck').get(collectionId) as number;
    const embedded = this.db.prepare('SELECT count(*) FROM secondary_vectors WHERE collection_id = ?', 'pluck').get(collectionId) as number;
    return { total, embedded };
  }
}

function activeOf(row: CollectionRow): EmbedderInfo {
  return { name: row.embedder_name, dimensions: row.embedder_dimensions };
}
