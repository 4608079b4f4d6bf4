/**
 * The in-memory vector index of each collection searched: loaded from SQLite on first use, then kept up to date by
 * the writes made through this store, and reloaded when another writer moved the collection on.
 *
 * With `vectorIndex: 'auto'` each collection's index is an {@link AnnIndex} (HNSW graph at
 * `<dataDir>/ann/<collectionId>.usearch`, exact below its row threshold), sharing one builder thread per store;
 * with `'exact'` it is the exact {@link VectorIndex}. Wiring: docs/ann-index.md ("Wiring it into the store").
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AnnBuilderThread } from './ann-builder';
import { removeAnnFile } from './ann-file';
import { AnnIndex, type AnnIndexOptions, type AnnOpenResult, type AnnStats } from './ann-index';
import type { StoreWarmUpState, VectorIndexState } from '../../ports/knowledge-store.port';
import type { SqliteDatabase, VersionBumps } from './sqlite.database';
import type { CollectionRow } from './sqlite.rows';
import { FillMovedError, fillVectors, type FilledRows } from './vector-fill';
import { VectorIndex, type VectorSearchIndex } from './vector-index';

/** Changes to apply to a loaded vector index once the transaction that made them has committed, in order. */
export type IndexOp =
  | { kind: 'add'; collectionId: string; rowId: number; chunkId: string; vector: Float32Array }
  | { kind: 'remove'; collectionId: string; rowId: number };

/** `auto`: an ANN (HNSW) index per collection at or above its exact threshold, exact below; `exact`: exact scan. */
export type VectorIndexMode = 'auto' | 'exact';

/** Tuning of the ANN indexes (thresholds, graph parameters); the rest is set per collection by the store. */
export type AnnTuning = Omit<AnnIndexOptions, 'dimensions' | 'path' | 'embedder' | 'builder' | 'onError' | 'initialCapacity'>;

export interface VectorIndexesOptions {
  mode: VectorIndexMode;
  /** Directory of the store: graphs live in `<dataDir>/ann/`. */
  dataDir: string;
  ann?: AnnTuning;
  /** Background failures of an ANN index (it keeps serving, exactly if need be). */
  onAnnError?: (collectionId: string, error: Error) => void;
  /** An ANN index finished opening (loaded its saved graph, or why not). */
  onAnnOpened?: (collectionId: string, result: AnnOpenResult) => void;
}

/** Collections at or above this many rows are loaded on a fill thread at warm-up; smaller ones on the event loop. */
const FILL_THREAD_MIN_ROWS = 20_000;
/** Longest a fill thread may take before the load falls back to the event loop. */
const FILL_TIMEOUT_MS = 120_000;
/** Fill-thread attempts when writes keep moving the collection on while it reads; then the event loop loads it. */
const FILL_ATTEMPTS = 3;

interface Entry {
  index: VectorSearchIndex;
  version: number;
  ann: AnnIndex | null;
  /** `open()` of the ANN index, until it resolves (never rejects). */
  opening: Promise<void> | null;
  /** A commit reached the index while it was opening: a saved graph it trusted may be stale. */
  changedWhileOpening: boolean;
  retired: boolean;
}

export class LoadedVectorIndexes {
  private readonly indexes = new Map<string, Entry>();
  /** Closing ANN indexes by collection: a new index of the collection opens its file only after they are done. */
  private readonly closing = new Map<string, Promise<void>>();
  private builder: AnnBuilderThread | null = null;
  private closed = false;
  /** Loads running on a fill thread, by collection: searches of the collection wait for them. */
  private readonly loading = new Map<string, Promise<void>>();
  /** Aborted by close(): fill threads still reading stop at once. */
  private readonly shutdown = new AbortController();
  private warmState = { warming: false, collections: 0, loaded: 0, warmMs: null as number | null };

  constructor(
    private readonly db: SqliteDatabase,
    private readonly options: VectorIndexesOptions = { mode: 'exact', dataDir: '' },
  ) {}

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
        this.retire(collectionId, entry, false);
        continue;
      }
      for (const op of ops) {
        if (op.collectionId !== collectionId) continue;
        if (op.kind === 'remove') entry.index.remove(op.rowId);
        else entry.index.add(op.rowId, op.chunkId, op.vector);
      }
      entry.version = after;
      if (entry.opening) entry.changedWhileOpening = true;
      entry.ann?.setSourceVersion(after);
    }
  }

  /** The collection's vector index: loaded from SQLite on first use, and again if the collection moved on without it. */
  get(collection: CollectionRow): VectorSearchIndex {
    const entry = this.indexes.get(collection.id);
    if (entry && entry.version === collection.version) return entry.index;
    if (entry) this.retire(collection.id, entry, false);
    const ann = this.options.mode === 'auto' && !this.closed;
    // One read transaction, so the rows and the version they belong to are one snapshot.
    const loaded = this.db.open().transaction((): Entry => {
      const version = this.db.prepare('SELECT version FROM collections WHERE id = ?', 'pluck').get(collection.id) as number;
      const n = this.db.prepare('SELECT count(*) FROM chunks WHERE collection_id = ?', 'pluck').get(collection.id) as number;
      const annIndex = ann ? this.newAnnIndex(collection, n) : null;
      const index: VectorSearchIndex = annIndex ?? new VectorIndex(collection.embedder_dimensions, Math.max(64, n));
      // Raw rows: no per-row objects beyond the array and the BLOB buffer, copied straight into the matrix.
      const rows = this.db.prepare('SELECT seq, id, vector FROM chunks WHERE collection_id = ?', 'raw');
      for (const row of rows.iterate(collection.id) as IterableIterator<[number, string, Buffer]>) {
        index.addBytes(row[0], row[1], row[2]);
      }
      return { index, version, ann: annIndex, opening: null, changedWhileOpening: false, retired: false };
    })();
    this.install(collection.id, loaded);
    return loaded.index;
  }

  /**
   * Waits for a fill thread loading the collection's index, so a search does not load the same rows on the event
   * loop. True when it waited (the collection may have moved on meanwhile: read its row again).
   */
  async ready(collectionId: string): Promise<boolean> {
    const loading = this.loading.get(collectionId);
    if (!loading) return false;
    await loading;
    return true;
  }

  /**
   * Start-up: loads the index of every collection (large ones on a fill thread, one collection at a time) and waits
   * until each ANN index has opened its saved graph. Never rejects: a collection that fails here is loaded on its
   * first search instead. {@link summary} reports progress.
   */
  async warm(): Promise<void> {
    const started = performance.now();
    // From the documents' chunk counts: thousands of rows, where counting the chunks would scan a million.
    const counts = new Map(
      this.db.prepare('SELECT collection_id, sum(chunk_count) FROM documents GROUP BY collection_id', 'raw').all() as [string, number][],
    );
    const ids = this.db.prepare('SELECT id FROM collections ORDER BY created_at, id', 'pluck').all() as string[];
    this.warmState = { warming: true, collections: ids.length, loaded: 0, warmMs: null };
    try {
      for (const id of ids) {
        if (this.closed) break;
        const collection = this.db.collectionRow(id);
        try {
          if (collection && (counts.get(id) ?? 0) >= FILL_THREAD_MIN_ROWS) await this.load(collection);
          else if (collection) await this.loadHere(collection);
        } catch (error) {
          this.reportError(id, error);
        }
        this.warmState.loaded++;
        // Many small collections load on the event loop: let requests in between them.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      this.warmState.warming = false;
      this.warmState.warmMs = performance.now() - started;
    }
  }

  /** Warm-up progress and the share of loaded rows served by a graph or an exact index. */
  summary(): StoreWarmUpState {
    let rows = 0;
    let indexedRows = 0;
    for (const entry of this.indexes.values()) {
      const size = entry.index.size;
      rows += size;
      const ann = entry.ann?.stats();
      // Below the graph threshold (or in exact mode) the exact index serves every row.
      indexedRows += ann && graphInUse(ann) ? ann.indexed : size;
    }
    const { warming, collections, loaded, warmMs } = this.warmState;
    return { warming, collections, loadedCollections: loaded, rows, indexedRows, warmMs };
  }

  /** Loads the collection's index on a fill thread unless it is loaded at its current version, then opens its graph. */
  private load(collection: CollectionRow): Promise<void> {
    const entry = this.indexes.get(collection.id);
    if (entry && entry.version === collection.version) return entry.opening ?? Promise.resolve();
    let loading = this.loading.get(collection.id);
    if (!loading) {
      loading = this.loadInThread(collection.id).finally(() => this.loading.delete(collection.id));
      this.loading.set(collection.id, loading);
    }
    return loading;
  }

  private async loadInThread(collectionId: string): Promise<void> {
    for (let attempt = 0; attempt < FILL_ATTEMPTS && !this.closed; attempt++) {
      const before = this.db.collectionRow(collectionId);
      if (!before) return;
      let rows: FilledRows;
      try {
        rows = await fillVectors({
          filename: this.db.filename,
          collectionId,
          dimensions: before.embedder_dimensions,
          busyTimeoutMs: 5000,
          timeoutMs: FILL_TIMEOUT_MS,
          signal: this.shutdown.signal,
        });
      } catch (error) {
        if (this.closed) return;
        if (error instanceof FillMovedError) continue;
        this.reportError(collectionId, error);
        break;
      }
      const now = this.db.collectionRow(collectionId);
      if (this.closed || !now) return;
      const current = this.indexes.get(collectionId);
      if (current && current.version === now.version) return void (await current.opening);
      // Every write to a collection bumps its version: the same version means the thread read exactly the current rows.
      if (rows.version !== now.version) continue;
      if (current) this.retire(collectionId, current, false);
      const exact = VectorIndex.fromRows(now.embedder_dimensions, rows);
      const ann = this.options.mode === 'auto' ? this.newAnnIndex(now, exact.size, exact) : null;
      const entry: Entry = { index: ann ?? exact, version: rows.version, ann, opening: null, changedWhileOpening: false, retired: false };
      this.install(collectionId, entry);
      await entry.opening;
      return;
    }
    // The thread failed, or writes kept the collection moving: load it here, as a first search would.
    const collection = this.db.collectionRow(collectionId);
    if (collection && !this.closed) await this.loadHere(collection);
  }

  /** Loads the collection's index on the event loop (as a first search does) and waits for its graph to open. */
  private async loadHere(collection: CollectionRow): Promise<void> {
    this.get(collection);
    await this.indexes.get(collection.id)?.opening;
  }

  private install(collectionId: string, entry: Entry): void {
    this.indexes.set(collectionId, entry);
    if (entry.ann) this.startOpening(collectionId, entry, entry.ann);
  }

  /** Forgets the index of a deleted collection, and deletes its graph file. */
  drop(collectionId: string): void {
    const entry = this.indexes.get(collectionId);
    if (entry) this.retire(collectionId, entry, false);
    // Also in `exact` mode: a graph left by an earlier `auto` run goes with its collection.
    if (!this.options.dataDir) return;
    const path = this.annPath(collectionId);
    const prior = this.closing.get(collectionId) ?? Promise.resolve();
    this.track(
      collectionId,
      prior.then(() => removeAnnFile(path)),
    );
  }

  /**
   * Loads the collection's index and, for an ANN index, waits until it is open and its graph covers every row (the
   * builder caught up, saved, and the file is mapped): searches then go through the graph. For tests and benches.
   */
  async settle(collection: CollectionRow): Promise<void> {
    this.get(collection);
    const entry = this.indexes.get(collection.id);
    if (!entry?.ann) return;
    await entry.opening;
    await entry.ann.flush();
  }

  /**
   * How the collection's vector searches run now: through a graph once it exists or is being built, with the share
   * of rows it covers; exact otherwise (a collection below the graph's threshold, or not loaded).
   */
  state(collectionId: string): VectorIndexState {
    const ann = this.annStats(collectionId);
    return ann && graphInUse(ann)
      ? { approximate: true, indexedFraction: ann.indexedFraction }
      : { approximate: false, indexedFraction: 1 };
  }

  /** ANN statistics of a loaded collection index (null when exact or not loaded). */
  annStats(collectionId: string): AnnStats | null {
    return this.indexes.get(collectionId)?.ann?.stats() ?? null;
  }

  /**
   * Saves and closes every ANN index, then stops the builder thread. Indexes still answer (exactly) afterwards, but
   * nothing is loaded any more.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.shutdown.abort();
    await Promise.all([...this.loading.values()]);
    const entries = [...this.indexes.entries()];
    this.indexes.clear();
    const closes = entries.map(async ([collectionId, entry]) => {
      entry.retired = true;
      if (!entry.ann) return;
      await entry.opening;
      // A commit during opening may have met a stale trusted graph: not saved, so the next start checks every row.
      await entry.ann.close({ save: !entry.changedWhileOpening }).catch((error: unknown) => this.reportError(collectionId, error));
    });
    await Promise.all(closes);
    while (this.closing.size > 0) await Promise.all([...this.closing.values()]);
    await this.builder?.close();
    this.builder = null;
  }

  private newAnnIndex(collection: CollectionRow, rows: number, loaded?: VectorIndex): AnnIndex {
    this.builder ??= new AnnBuilderThread();
    mkdirSync(join(this.options.dataDir, 'ann'), { recursive: true });
    return new AnnIndex({
      ...this.options.ann,
      dimensions: collection.embedder_dimensions,
      embedder: collection.embedder_name,
      path: this.annPath(collection.id),
      initialCapacity: Math.max(64, rows),
      rows: loaded,
      builder: this.builder,
      onError: (error) => this.reportError(collection.id, error),
    });
  }

  /** Opens the ANN index once any closing index of the same collection is done with the file; searches stay exact meanwhile. */
  private startOpening(collectionId: string, entry: Entry, ann: AnnIndex): void {
    const prior = this.closing.get(collectionId) ?? Promise.resolve();
    const sourceVersion = entry.version;
    let trusted = false;
    entry.opening = prior
      .then(async () => {
        if (entry.retired) return;
        const result = await ann.open({ sourceVersion });
        trusted = result.status === 'loaded' && result.verified === 0;
        this.options.onAnnOpened?.(collectionId, result);
      })
      .catch((error: unknown) => this.reportError(collectionId, error))
      .finally(() => {
        entry.opening = null;
        // Rows changed between the fill and the graph's adoption, and the saved graph was taken as it is (same source
        // version): it may hold rows that are no longer current. Reload on next use (the version then differs, so
        // every row is checked). Without trust, open() compared every row with the file, so the graph is right.
        if (trusted && entry.changedWhileOpening && !entry.retired && this.indexes.get(collectionId) === entry)
          this.retire(collectionId, entry, false);
      });
  }

  /** Takes an index out of service; an ANN index is closed (saved when asked) before its file is used again. */
  private retire(collectionId: string, entry: Entry, save: boolean): void {
    if (this.indexes.get(collectionId) === entry) this.indexes.delete(collectionId);
    if (entry.retired) return;
    entry.retired = true;
    const ann = entry.ann;
    if (!ann) return;
    const opening = entry.opening ?? Promise.resolve();
    this.track(
      collectionId,
      opening.then(() => ann.close({ save })),
    );
  }

  /** Registers a closing step of a collection's ANN file; steps of one collection run one after the other. */
  private track(collectionId: string, step: Promise<void>): void {
    const prior = this.closing.get(collectionId);
    const done: Promise<void> = Promise.all([prior, step.catch((error: unknown) => this.reportError(collectionId, error))])
      .then(() => undefined)
      .finally(() => {
        if (this.closing.get(collectionId) === done) this.closing.delete(collectionId);
      });
    this.closing.set(collectionId, done);
  }

  private annPath(collectionId: string): string {
    return join(this.options.dataDir, 'ann', `${collectionId}.usearch`);
  }

  private reportError(collectionId: string, error: unknown): void {
    this.options.onAnnError?.(collectionId, error instanceof Error ? error : new Error(String(error)));
  }
}

/** A graph exists or is being built: searches go through it (its uncovered rows exactly). */
function graphInUse(stats: AnnStats): boolean {
  return stats.graphRows > 0 || stats.rebuilding || stats.builderLoaded;
}
