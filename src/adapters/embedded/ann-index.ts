import { existsSync } from 'node:fs';
import { Index, MetricKind, ScalarKind } from 'usearch';
import { sharedAnnBuilderThread, type AnnBuilderThread } from './ann-builder';
import type { AnnBuilderRequest, AnnBuilderState } from './ann-builder.worker';
import { vectorCrc, type AnnFileCheck, type AnnFileRows, type AnnFingerprint, type AnnQuantization } from './ann-file';
import { VectorIndex, type VectorMatch, type VectorSearchIndex } from './vector-index';
import { RowMemberships } from './row-membership';

/**
 * An approximate (HNSW) vector index for one collection, behind the same contract as {@link VectorIndex}: add, remove
 * and search by row id, an optional set of allowed rows, cosine scores, ties by chunk id. Every score it returns is
 * the exact float32 cosine (the one `VectorIndex` would return): the graph only proposes candidates.
 *
 * It composes
 * - an exact copy of every live row (a `VectorIndex`): the truth for re-ranking, for small collections, for
 *   selective filters and for rows the graph does not hold yet;
 * - a usearch HNSW graph, memory-mapped read-only from the file it was last saved to, covering the changes up to a
 *   sequence number; every later change (a new row, a replaced vector, a delete) is "pending": pending rows are
 *   searched exactly and merged in, and the graph's entries for them (tombstones) are never returned;
 * - a builder thread that owns the writable graph, applies pending changes in batches, and saves the graph beside the
 *   database (atomically, with a fingerprint); each save is then mapped here and the pending set shrinks.
 *
 * Below {@link AnnIndexOptions.exactBelowRows} live rows no graph is built at all. Call {@link open} once the rows
 * present at start-up have been added: it loads a saved graph when one matches and starts background indexing.
 * Design and measurements: docs/ann-index.md.
 */
export interface AnnIndexOptions {
  /** Floats per vector. */
  dimensions: number;
  /** The graph file (its sidecar is `${path}.meta`), e.g. beside the SQLite database. */
  path: string;
  /** Name of the embedder whose vectors these are: a saved graph of another embedder is never used. */
  embedder: string;
  /**
   * Graph storage per vector: i8 halves f16's memory and bandwidth; exact re-ranking makes up its coarser distances.
   * @default 'i8'
   */
  quantization?: AnnQuantization;
  /** HNSW connectivity (M). @default 16 */
  connectivity?: number;
  /** HNSW expansion while inserting (efConstruction). @default 128 */
  expansionAdd?: number;
  /**
   * HNSW expansion while searching (ef); at least the number of candidates asked for. Larger graphs need more for the
   * same recall (kbql-hash-v1 SciFact passages: 128 gives recall@10 0.98 at 100k rows; 1M rows need 1,024 for 0.97).
   * @default max(128, graph rows / 1,000)
   */
  expansionSearch?: number;
  /** Graph candidates re-ranked exactly per query: `max(candidates, 2 × k)`. @default 20 */
  candidates?: number;
  /** Live rows under which no graph is built and every search is exact. @default 5000 */
  exactBelowRows?: number;
  /**
   * A filtered search scans its allowed rows exactly when they are at most {@link filterExactRows} or at most this
   * fraction of the live rows; otherwise it asks the graph for 1/fraction times the candidates, and more until k
   * allowed ones are found.
   * @default 0.01
   */
  filterExactFraction?: number;
  /** See {@link filterExactFraction}. @default 3000 */
  filterExactRows?: number;
  /** Graph removals (deletes and replacements) past this fraction of its rows trigger a rebuild. @default 0.25 */
  compactFraction?: number;
  /** Rows per batch sent to the builder thread. @default 1024 */
  batchRows?: number;
  /** Threads usearch uses for one batch in the builder (the calling builder thread included). @default 1 */
  buildThreads?: number;
  /** The thread that builds the graph. @default the process-wide one ({@link sharedAnnBuilderThread}) */
  builder?: AnnBuilderThread;
  /**
   * Least time between two saves, in ms; the gap also grows to ten times the last save's duration, so writing the
   * file takes at most a tenth of the builder's time. {@link flush} saves at once.
   * @default 1000
   */
  saveIntervalMs?: number;
  /**
   * Idle time after which the builder thread drops its writable copy of the graph (as large as the file), in ms; the
   * next change loads it again from the file.
   * @default 60000
   */
  builderIdleMs?: number;
  /**
   * The graph catches up only once no row has changed for this long, in ms, while the rows it does not hold yet are
   * fewer than {@link busyTailRows}: during a burst of writes the rows are searched exactly and the builder waits.
   * On a 2-core machine a builder running beside ingestion, even at nice 19, cost ingestion 9–11% (bench (2c)).
   * @default 500
   */
  quietMs?: number;
  /** See {@link quietMs}: past this many rows outside the graph it catches up during writes too. @default 20000 */
  busyTailRows?: number;
  /** Vectors to allocate room for in the exact copy. @default 64 */
  initialCapacity?: number;
  /** The rows present at start-up, already loaded (e.g. by a fill thread): adopted as the exact copy. */
  rows?: VectorIndex;
  /** Background failures (builder thread, save, mapping): the index keeps serving from what it has. */
  onError?: (error: Error) => void;
}

export interface AnnOpenResult {
  /** `loaded`: the saved graph is used; otherwise the reason it is not (the graph is rebuilt in the background). */
  status: 'loaded' | 'missing' | 'corrupt' | 'mismatch' | 'small';
  detail: string;
  /** Live rows the loaded graph holds with their current vector. */
  indexed: number;
  /** Live rows searched exactly until the builder catches up. */
  pending: number;
  /**
   * Rows whose vector was compared with the file's checksum (0 when the file's source version matched the one given
   * to {@link AnnIndex.open}).
   */
  verified: number;
  /** Whole call, in ms; then its steps: checking the file (builder thread), mapping it, verifying the rows. */
  ms: number;
  checkMs: number;
  mapMs: number;
  verifyMs: number;
}

export interface AnnStats {
  /** Live rows. */
  size: number;
  /** Live rows found through the graph. */
  indexed: number;
  /** Live rows not in the graph yet (searched exactly). */
  tail: number;
  /** Graph entries that are deleted or replaced rows (skipped by every search). */
  tombstones: number;
  /** indexed / size (1 when empty). */
  indexedFraction: number;
  /** Rows in the mapped graph. */
  graphRows: number;
  /** True while the builder rebuilds the graph from all live rows. */
  rebuilding: boolean;
  /** True while the builder thread holds a writable copy of the graph. */
  builderLoaded: boolean;
  /** Completed saves since start. */
  saves: number;
  /** Duration of the last save, in ms (null before the first). */
  lastSaveMs: number | null;
  /**
   * Searches since start by path: through the graph; exact (no graph yet, a small collection or a selective filter);
   * and graph searches that needed more candidates (`refills`) or gave up for an exact scan (`fallbacks`).
   */
  searches: { graph: number; exact: number; refills: number; fallbacks: number };
}

const DEFAULTS = {
  quantization: 'i8' as AnnQuantization,
  connectivity: 16,
  expansionAdd: 128,
  expansionSearch: 0,
  candidates: 20,
  exactBelowRows: 5000,
  filterExactFraction: 0.01,
  filterExactRows: 3000,
  compactFraction: 0.25,
  batchRows: 1024,
  buildThreads: 1,
  builderIdleMs: 60_000,
  saveIntervalMs: 1000,
  quietMs: 500,
  busyTailRows: 20_000,
};

/** Candidate growth factor of a filtered graph search that found too few allowed rows. */
const REFILL_GROWTH = 4;
/** Largest graph candidate list before a filtered search falls back to an exact scan of its allowed rows. */
const REFILL_CAP = 4096;
/** Back-off after a builder failure, in ms (doubles up to the cap). */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 5 * 60_000;

interface Batch {
  removeIds: Float64Array;
  upsertIds: Float64Array;
  vectors: Float32Array;
  /** The builder reflects every change up to this sequence number once the batch is applied. */
  seqTo: number;
}

export class AnnIndex implements VectorSearchIndex {
  readonly dimensions: number;
  readonly fingerprint: AnnFingerprint;
  private readonly options: Required<
    Omit<AnnIndexOptions, 'onError' | 'initialCapacity' | 'path' | 'embedder' | 'dimensions' | 'builder' | 'rows'>
  >;
  private readonly thread: AnnBuilderThread;
  private readonly exact: VectorIndex;

  /** The mapped graph and the change sequence number it covers. */
  private graph: Index | null = null;
  private graphSeq = 0;
  /** Change counter: every add or remove gets the next number. */
  private seq = 0;
  /** Rows whose latest change (its sequence number) is newer than the graph: searched exactly, skipped in the graph. */
  private readonly pending = new Map<number, number>();
  /** Pending rows that are live (the tail). */
  private tailLive = 0;
  /** Pending rows the graph holds an entry for (tombstones). */
  private tombstoneCount = 0;
  /** Every change newer than the graph, in order (a row may appear more than once; its latest entry counts). */
  private queueRows: number[] = [];
  private queueSeqs: number[] = [];
  /** Next queue entry to send to the builder. */
  private dispatchAt = 0;
  /** When a row last changed (ms since the epoch). */
  private lastChangeAt = 0;

  /** The builder's graph exists (loaded from the file or started empty) and reflects changes up to `builderSeq`. */
  private builderReady = false;
  private builderSeq = 0;
  private builderSize = 0;
  private builderRemovals = 0;
  /** The builder's graph holds changes the saved file does not. */
  private builderDirty = false;
  /** A rebuild from all live rows: the snapshot of row ids and how many were sent (cleared when it is saved). */
  private rebuild: { rowIds: Float64Array; at: number } | null = null;
  /** Removals passed the compaction fraction: the next builder starts empty. */
  private compactRequested = false;

  private opened = false;
  private closed = false;
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  private pumpTimer: NodeJS.Timeout | null = null;
  private releaseTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private retryAt = 0;
  private lastSaveEndedAt = 0;
  private lastSaveMs: number | null = null;
  private saves = 0;
  private readonly flushes: { seq: number; resolve: () => void }[] = [];
  /** Source versions by the change sequence number they were reported at (pruned as saves pass them). */
  private readonly versionAt = new Map<number, number>();
  private readonly searches = { graph: 0, exact: 0, refills: 0, fallbacks: 0 };
  /** Membership tests of allowed row ids for filtered graph searches (one reusable bitset). */
  private readonly memberships = new RowMemberships();

  constructor(private readonly config: AnnIndexOptions) {
    this.dimensions = config.dimensions;
    const {
      onError: _onError,
      initialCapacity,
      path: _path,
      embedder: _embedder,
      dimensions: _dimensions,
      builder,
      rows,
      ...rest
    } = config;
    this.options = { ...DEFAULTS, ...stripUndefined(rest) };
    this.thread = builder ?? sharedAnnBuilderThread();
    if (rows && rows.dimensions !== config.dimensions)
      throw new RangeError(`rows have ${rows.dimensions} dimensions, the index ${config.dimensions}`);
    this.exact = rows ?? new VectorIndex(config.dimensions, initialCapacity ?? 64);
    this.fingerprint = {
      embedder: config.embedder,
      dimensions: config.dimensions,
      metric: 'cos',
      quantization: this.options.quantization,
      connectivity: this.options.connectivity,
      expansionAdd: this.options.expansionAdd,
    };
  }

  /** Live vectors. */
  get size(): number {
    return this.exact.size;
  }

  has(rowId: number): boolean {
    return this.exact.has(rowId);
  }

  /** Adds (or overwrites) a row; it is searchable at once (exactly until the graph holds it). */
  add(rowId: number, chunkId: string, vector: ArrayLike<number>): void {
    const wasLive = this.exact.has(rowId);
    this.exact.add(rowId, chunkId, vector);
    this.changed(rowId, wasLive, true);
  }

  /** {@link add} from the raw bytes of a little-endian float32 vector (an SQLite BLOB). */
  addBytes(rowId: number, chunkId: string, bytes: Uint8Array): void {
    const wasLive = this.exact.has(rowId);
    this.exact.addBytes(rowId, chunkId, bytes);
    this.changed(rowId, wasLive, true);
  }

  /** Removes a row; it is never returned again. False when the row was not indexed. */
  remove(rowId: number): boolean {
    if (!this.exact.remove(rowId)) return false;
    this.changed(rowId, true, false);
    return true;
  }

  /** Grows the exact copy so at least `capacity` vectors fit without another reallocation. */
  reserve(capacity: number): void {
    this.exact.reserve(capacity);
  }

  /** Exact cosine similarity of `query` to each row (null for rows not indexed). */
  scoreRows(query: ArrayLike<number>, rowIds: readonly number[]): (number | null)[] {
    return this.exact.scoreRows(query, rowIds);
  }

  /**
   * The `k` rows most similar to `query`, best first, ties by chunk id ascending, with exact scores.
   * @param allowedRowIds when given, only these rows can be returned; k of them are returned whenever k exist.
   */
  search(query: ArrayLike<number>, k: number, allowedRowIds?: Iterable<number>): VectorMatch[] {
    if (query.length !== this.dimensions) {
      throw new RangeError(`query has ${query.length} dimensions, the index ${this.dimensions}`);
    }
    if (k <= 0 || this.exact.size === 0) return [];
    const graph = this.graph;
    // The graph pays only when it holds most rows: otherwise one exact pass is cheaper than graph + tail.
    if (!graph || this.exact.size - this.tailLive < this.options.exactBelowRows || this.pending.size * 2 > this.exact.size) {
      this.searches.exact++;
      return this.exact.search(query, k, allowedRowIds);
    }
    if (allowedRowIds === undefined) return this.graphSearch(graph, query, k, null, 1) ?? this.exact.search(query, k);
    const allowed = allowedRowIds instanceof Set || Array.isArray(allowedRowIds) ? allowedRowIds : [...allowedRowIds];
    const count = allowed instanceof Set ? allowed.size : allowed.length;
    if (count <= this.options.filterExactRows || count <= this.options.filterExactFraction * this.exact.size) {
      this.searches.exact++;
      return this.exact.search(query, k, allowed);
    }
    const membership = this.memberships.of(allowed);
    try {
      return this.graphSearch(graph, query, k, membership.has, count / this.exact.size) ?? this.exact.search(query, k, allowed);
    } finally {
      membership.release();
    }
  }

  /** Counts for monitoring: how much of the collection the graph serves. */
  stats(): AnnStats {
    const size = this.exact.size;
    const indexed = this.graph ? size - this.tailLive : 0;
    return {
      size,
      indexed,
      tail: size - indexed,
      tombstones: this.graph ? this.tombstoneCount : 0,
      indexedFraction: size === 0 ? 1 : indexed / size,
      graphRows: this.graph?.size() ?? 0,
      rebuilding: this.rebuild !== null,
      builderLoaded: this.builderReady,
      saves: this.saves,
      lastSaveMs: this.lastSaveMs,
      searches: { ...this.searches },
    };
  }

  /**
   * Loads the saved graph if it is intact and matches this index's fingerprint, keeps the graph entries whose row is
   * still live with the same vector (every other row is pending and searched exactly), and starts background
   * indexing. Call it once, after adding the rows present at start-up. Never throws for a bad file: the result says
   * why the file was not used, and the graph is rebuilt in the background.
   * @param options.sourceVersion the version of the rows just added (see {@link setSourceVersion}): when the file was
   *   saved at that same version, its rows are taken as they are instead of checking each row's vector.
   */
  async open(options: { sourceVersion?: number } = {}): Promise<AnnOpenResult> {
    if (this.opened) throw new Error('AnnIndex.open() was already called');
    const started = performance.now();
    let status: AnnOpenResult['status'] = 'small';
    let detail = `fewer than ${this.options.exactBelowRows} rows: exact search only`;
    let checked: AnnFileCheck;
    const path = this.config.path;
    try {
      checked = existsSync(path)
        ? ((await this.request({ op: 'check', path, fingerprint: this.fingerprint })) as AnnFileCheck)
        : { ok: false, reason: 'missing', detail: `no ${path}` };
    } catch (error) {
      checked = { ok: false, reason: 'corrupt', detail: (error as Error).message };
    }
    const checkMs = performance.now() - started;
    let mapMs = 0;
    let verifyMs = 0;
    let verified = 0;
    if (this.closed)
      return { status: 'missing', detail: 'closed', indexed: 0, pending: 0, verified, ms: checkMs, checkMs, mapMs, verifyMs };
    if (checked.ok) {
      try {
        const { meta } = checked;
        const graph = this.mapGraph(meta.count);
        mapMs = performance.now() - started - checkMs;
        const same = options.sourceVersion !== undefined && meta.sourceVersion === options.sourceVersion && meta.count === this.exact.size;
        verified = this.adopt(graph, checked.rows, same);
        verifyMs = performance.now() - started - checkMs - mapMs;
        status = 'loaded';
        detail = `${meta.count} rows saved ${meta.savedAt} at source version ${meta.sourceVersion ?? 'unknown'}`;
      } catch (error) {
        status = 'corrupt';
        detail = (error as Error).message;
      }
    } else if (checked.reason !== 'missing' || this.exact.size >= this.options.exactBelowRows) {
      status = checked.reason;
      detail = checked.detail;
    }
    this.opened = true;
    if (options.sourceVersion !== undefined) this.versionAt.set(this.seq, options.sourceVersion);
    this.schedulePump();
    const stats = this.stats();
    return {
      status,
      detail,
      indexed: stats.indexed,
      pending: stats.tail,
      verified,
      ms: performance.now() - started,
      checkMs,
      mapMs,
      verifyMs,
    };
  }

  /**
   * Tells the index that the rows it has been given so far are the source data at `version` (a store calls it after
   * applying a committed write, with the collection's new version). A save that reflects exactly that state records
   * the version, so that the next {@link open} with the same version can skip checking every row.
   */
  setSourceVersion(version: number): void {
    if (this.opened) this.versionAt.set(this.seq, version);
  }

  /**
   * Resolves once the graph covers every change made before the call (indexed, saved and mapped) and no rebuild is
   * running or due, or at once when no graph is wanted (a small collection). Resolves too when the index is closed.
   */
  flush(): Promise<void> {
    if (!this.opened) return Promise.reject(new Error('AnnIndex.flush() before open()'));
    return new Promise((resolve) => {
      this.flushes.push({ seq: this.seq, resolve });
      this.settle();
      if (this.flushes.length > 0) this.schedulePump();
    });
  }

  /**
   * Stops background indexing and frees this index's graph in the builder thread (the thread itself is shared). With
   * `save`, first saves what the builder has applied (unless it is halfway through a rebuild), so the next start maps
   * it. The exact copy stays usable: searches after close() are exact.
   */
  async close(options: { save?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.pumpTimer = null;
    this.releaseTimer = null;
    await this.pumping;
    try {
      if (options.save && this.builderReady && this.builderDirty && !this.rebuildSending()) {
        await this.request({ op: 'save', path: this.config.path, sourceVersion: this.versionAt.get(this.builderSeq) ?? null });
      }
      if (this.builderReady) await this.request({ op: 'release', path: this.config.path });
    } catch (error) {
      this.report(error);
    }
    this.builderReady = false;
    this.graph = null;
    for (const f of this.flushes.splice(0)) f.resolve();
  }

  // ---------------------------------------------------------------- changes

  /** Records a change of `rowId` (liveness before and after) as pending for the graph. */
  private changed(rowId: number, wasLive: boolean, isLive: boolean): void {
    // Before open() there is no graph: open() compares the file with the rows (or a rebuild takes them all).
    if (!this.opened) return;
    const seq = ++this.seq;
    this.lastChangeAt = Date.now();
    const before = this.pending.get(rowId);
    if (before === undefined) {
      if (isLive) this.tailLive++;
      if (this.graphHolds(rowId)) this.tombstoneCount++;
    } else {
      this.tailLive += (isLive ? 1 : 0) - (wasLive ? 1 : 0);
    }
    this.pending.set(rowId, seq);
    this.queueRows.push(rowId);
    this.queueSeqs.push(seq);
    this.schedulePump();
  }

  private graphHolds(rowId: number): boolean {
    return this.graph !== null && (this.graph.contains(BigInt(rowId)) as boolean);
  }

  /**
   * Makes `graph` (holding `rows`) the served graph at the current sequence number: rows live with the same vector
   * are indexed; every other live row, and every graph row no longer live or changed, becomes pending. With `trusted`
   * (same source version) the rows are taken as they are. Returns how many rows were checked.
   */
  private adopt(graph: Index, rows: AnnFileRows, trusted: boolean): number {
    this.pending.clear();
    this.queueRows = [];
    this.queueSeqs = [];
    this.dispatchAt = 0;
    this.tailLive = 0;
    this.tombstoneCount = 0;
    this.graph = graph;
    this.graphSeq = this.seq;
    if (trusted) return 0;
    const { rowIds, crcs } = rows;
    const mark = (rowId: number, live: boolean, inGraph: boolean) => {
      const seq = ++this.seq;
      this.pending.set(rowId, seq);
      this.queueRows.push(rowId);
      this.queueSeqs.push(seq);
      if (live) this.tailLive++;
      if (inGraph) this.tombstoneCount++;
    };
    for (let i = 0; i < rowIds.length; i++) {
      const rowId = rowIds[i]!;
      const vector = this.exact.vectorOf(rowId);
      if (!vector) mark(rowId, false, true);
      else if (vectorCrc(vector) !== crcs[i]) mark(rowId, true, true);
    }
    for (const rowId of this.exact.rowIdList()) if (!sortedHas(rowIds, rowId)) mark(rowId, true, false);
    return rowIds.length;
  }

  // ---------------------------------------------------------------- search

  /**
   * Graph candidates (re-ranked exactly) merged with an exact scan of the pending rows. Asks for more candidates until
   * k usable ones (allowed, not pending) are found; null when that would take more than {@link REFILL_CAP}.
   */
  private graphSearch(
    graph: Index,
    query: ArrayLike<number>,
    k: number,
    allowed: ((rowId: number) => boolean) | null,
    selectivity: number,
  ): VectorMatch[] | null {
    // A copy: usearch reads a typed array from its buffer's start, ignoring a view's offset.
    const q = Float32Array.from(query);
    const graphRows = graph.size();
    this.searches.graph++;
    if (graphRows === 0) {
      this.searches.fallbacks++;
      return null;
    }
    // A filter keeping a fraction s of the rows needs about 1/s times the candidates to keep as many.
    let wanted = Math.ceil((Math.max(this.options.candidates, 2 * k) * (selectivity < 1 ? 1.2 : 1)) / selectivity);
    let rowIds: number[] = [];
    for (;;) {
      wanted = Math.min(wanted, graphRows);
      const found = graph.search(q, wanted, 1);
      rowIds = [];
      for (const key of found.keys) {
        const rowId = Number(key);
        // Pending rows are scanned exactly below; their graph entries are stale or deleted.
        if (this.pending.has(rowId) || (allowed && !allowed(rowId))) continue;
        rowIds.push(rowId);
      }
      const exhausted = found.keys.length < wanted || wanted >= graphRows;
      if (rowIds.length >= k || exhausted) break;
      if (wanted >= REFILL_CAP) {
        this.searches.fallbacks++;
        return null;
      }
      this.searches.refills++;
      wanted = Math.min(REFILL_CAP, wanted * REFILL_GROWTH);
    }
    const scores = this.exact.scoreRows(q, rowIds);
    const matches: VectorMatch[] = [];
    for (let i = 0; i < rowIds.length; i++) {
      const score = scores[i];
      if (score === null || score === undefined) continue;
      matches.push({ rowId: rowIds[i]!, chunkId: this.exact.chunkIdOf(rowIds[i]!)!, score });
    }
    if (this.pending.size > 0) {
      const tail = allowed ? filterKeys(this.pending, allowed) : this.pending.keys();
      matches.push(...this.exact.search(q, k, tail));
    }
    return matches.sort(byScoreThenChunkId).slice(0, k);
  }

  // ---------------------------------------------------------------- background indexing

  /**
   * Runs the pump soon (after the current synchronous burst of changes, so they travel as one batch) unless it runs
   * already; it picks up every change made meanwhile.
   */
  private schedulePump(): void {
    if (!this.opened || this.closed) return;
    if (this.pumping) {
      // It may be past the point where it looks for work: it runs again when it ends.
      this.pumpAgain = true;
      return;
    }
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpTimer = null;
    this.pumpAgain = false;
    this.pumping = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.pump())
      .catch((error: unknown) => this.failed(error))
      .finally(() => {
        this.pumping = null;
        if (this.pumpAgain) this.schedulePump();
      });
  }

  /** Sends pending changes to the builder and saves, until nothing is due; arms a timer for a save that is not due yet. */
  private async pump(): Promise<void> {
    while (!this.closed) {
      if (Date.now() < this.retryAt) return this.wakeAt(this.retryAt);
      if (this.noGraphWanted()) return this.settle();
      const quietAt = this.quietAt();
      if (Date.now() < quietAt) return this.wakeAt(quietAt);
      if (!this.builderReady) {
        await this.beginBuilder();
        continue;
      }
      const batch = this.nextBatch();
      if (batch) {
        const state = (await this.request({ op: 'apply', path: this.config.path, ...batch, threads: this.options.buildThreads }, [
          batch.vectors.buffer as ArrayBuffer,
        ])) as AnnBuilderState;
        this.builderSeq = batch.seqTo;
        this.builderSize = state.size;
        this.builderRemovals = state.removals;
        this.builderDirty = true;
        this.failures = 0;
        if (!this.saveDue(Date.now())) continue;
      }
      if (this.builderDirty && !this.rebuildSending()) {
        if (!this.saveDue(Date.now())) return this.wakeAt(this.nextSaveAt());
        await this.save();
        continue;
      }
      if (!this.rebuild && !this.compactRequested && this.compactionDue()) {
        // Many removals degrade the graph: start over from all live rows (the old graph serves meanwhile).
        this.compactRequested = true;
        this.builderReady = false;
        continue;
      }
      this.settle();
      this.armRelease();
      return;
    }
  }

  /** Drops the builder's graph after an idle period (it is all in the file then). */
  private armRelease(): void {
    if (this.releaseTimer || !this.builderReady) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = null;
      if (this.closed || this.pumping || !this.builderReady || this.builderDirty || this.rebuild || !this.nextBatchIsEmpty()) return;
      this.builderReady = false;
      this.request({ op: 'release', path: this.config.path }).catch((error: unknown) => this.report(error));
    }, this.options.builderIdleMs);
    this.releaseTimer.unref();
  }

  /**
   * A save is due when the builder holds changes the file does not and is not halfway through a rebuild: at once
   * after a rebuild or for a waiting flush, else once the gap since the last save has passed and the builder has
   * caught up (or is far ahead).
   */
  private saveDue(now: number): boolean {
    if (!this.builderDirty || this.rebuildSending()) return false;
    if (this.rebuild) return true;
    if (this.flushes.length > 0 && this.nextBatchIsEmpty()) return true;
    return now >= this.nextSaveAt() && (this.nextBatchIsEmpty() || this.builderSeq - this.graphSeq >= this.options.batchRows * 8);
  }

  private nextSaveAt(): number {
    return this.lastSaveEndedAt + Math.max(this.options.saveIntervalMs, 10 * (this.lastSaveMs ?? 0));
  }

  private rebuildSending(): boolean {
    return this.rebuild !== null && this.rebuild.at < this.rebuild.rowIds.length;
  }

  /** When the builder may go on: after the writes' quiet period, at once when asked to flush or the tail is long. */
  private quietAt(): number {
    if (this.flushes.length > 0 || this.pending.size >= this.options.busyTailRows) return 0;
    return this.lastChangeAt + this.options.quietMs;
  }

  private noGraphWanted(): boolean {
    return !this.graph && !this.rebuild && !this.builderReady && this.exact.size < this.options.exactBelowRows;
  }

  private compactionDue(): boolean {
    return this.builderRemovals > this.options.compactFraction * Math.max(1, this.builderSize);
  }

  private wakeAt(at: number): void {
    if (this.closed || this.pumpTimer) return;
    this.pumpTimer = setTimeout(
      () => {
        this.pumpTimer = null;
        this.schedulePump();
      },
      Math.max(0, at - Date.now()),
    );
    // Background work never keeps the process alive; a caller waiting in flush() does.
    if (this.flushes.length === 0) this.pumpTimer.unref();
  }

  /** Starts the builder's graph: from the served file when it is still good, else empty with a rebuild of all rows. */
  private async beginBuilder(): Promise<void> {
    if (this.graph && !this.compactRequested) {
      const state = (await this.request({
        op: 'begin',
        from: 'file',
        path: this.config.path,
        fingerprint: this.fingerprint,
      })) as AnnBuilderState;
      this.builderSize = state.size;
      this.builderRemovals = state.removals;
      this.builderSeq = this.graphSeq;
      this.builderDirty = false;
      this.dispatchAt = 0;
    } else {
      await this.request({ op: 'begin', from: 'empty', path: this.config.path, fingerprint: this.fingerprint });
      this.builderSize = 0;
      this.builderRemovals = 0;
      // The snapshot holds every change up to now (no save happens before it is all sent); later changes follow it
      // from the queue.
      this.rebuild = { rowIds: this.exact.rowIdList(), at: 0 };
      this.builderSeq = this.seq;
      this.builderDirty = true;
      this.dispatchAt = lowerBound(this.queueSeqs, this.seq + 1);
    }
    this.builderReady = true;
  }

  /** The next batch for the builder: rows of a running rebuild first, then queued changes (each row's latest only). */
  private nextBatch(): Batch | null {
    const limit = this.options.batchRows;
    const d = this.dimensions;
    const upserts: number[] = [];
    const removes: number[] = [];
    let seqTo = this.builderSeq;
    const rebuild = this.rebuild;
    if (rebuild && rebuild.at < rebuild.rowIds.length) {
      while (rebuild.at < rebuild.rowIds.length && upserts.length < limit) {
        const rowId = rebuild.rowIds[rebuild.at++]!;
        if (this.exact.has(rowId)) upserts.push(rowId);
      }
    } else {
      while (this.dispatchAt < this.queueRows.length && upserts.length + removes.length < limit) {
        const rowId = this.queueRows[this.dispatchAt]!;
        const seq = this.queueSeqs[this.dispatchAt++]!;
        seqTo = seq;
        if (this.pending.get(rowId) !== seq) continue;
        if (this.exact.has(rowId)) upserts.push(rowId);
        else removes.push(rowId);
      }
    }
    if (upserts.length === 0 && removes.length === 0) {
      // Only superseded entries: the builder moves forward without work.
      if (seqTo > this.builderSeq) {
        this.builderSeq = seqTo;
        this.builderDirty = true;
      }
      return null;
    }
    const vectors = new Float32Array(upserts.length * d);
    for (let i = 0; i < upserts.length; i++) vectors.set(this.exact.vectorOf(upserts[i]!)!, i * d);
    return { removeIds: Float64Array.from(removes), upsertIds: Float64Array.from(upserts), vectors, seqTo };
  }

  private nextBatchIsEmpty(): boolean {
    if (this.rebuildSending()) return false;
    for (let i = this.dispatchAt; i < this.queueRows.length; i++) {
      if (this.pending.get(this.queueRows[i]!) === this.queueSeqs[i]) return false;
    }
    return true;
  }

  /** Saves the builder's graph, maps the new file and retires the changes it covers. */
  private async save(): Promise<void> {
    const seq = this.builderSeq;
    const started = performance.now();
    await this.request({ op: 'save', path: this.config.path, sourceVersion: this.versionAt.get(seq) ?? null });
    this.lastSaveMs = performance.now() - started;
    this.lastSaveEndedAt = Date.now();
    this.saves++;
    this.builderDirty = false;
    if (this.rebuild) {
      this.rebuild = null;
      this.compactRequested = false;
    }
    if (this.closed) return;
    this.graph = this.mapGraph(this.builderSize);
    this.graphSeq = seq;
    this.retire(seq);
  }

  /** Drops the queue entries the graph now covers; their rows stop being pending unless they changed again. */
  private retire(seq: number): void {
    let i = 0;
    for (; i < this.queueRows.length && this.queueSeqs[i]! <= seq; i++) {
      const rowId = this.queueRows[i]!;
      if (this.pending.get(rowId) === this.queueSeqs[i]) {
        this.pending.delete(rowId);
        if (this.exact.has(rowId)) this.tailLive--;
      }
    }
    this.queueRows = this.queueRows.slice(i);
    this.queueSeqs = this.queueSeqs.slice(i);
    for (const at of this.versionAt.keys()) if (at < seq) this.versionAt.delete(at);
    this.dispatchAt = Math.max(0, this.dispatchAt - i);
    // Tombstones: pending rows the new graph still holds (changed after the save).
    let tombstones = 0;
    for (const rowId of this.pending.keys()) if (this.graphHolds(rowId)) tombstones++;
    this.tombstoneCount = tombstones;
    this.settle();
  }

  /** Resolves the flushes the graph now satisfies. */
  private settle(): void {
    const noGraphWanted = this.noGraphWanted();
    const idle = this.graph !== null && !this.rebuild && !this.compactRequested && !this.compactionDue();
    for (let f = this.flushes.length - 1; f >= 0; f--) {
      if (noGraphWanted || (idle && this.flushes[f]!.seq <= this.graphSeq)) this.flushes.splice(f, 1)[0]!.resolve();
    }
  }

  /** Maps the graph file read-only (usearch `view`) and checks it holds the expected rows. */
  private mapGraph(expectedRows: number): Index {
    const graph = new Index({
      dimensions: this.dimensions,
      metric: MetricKind.Cos,
      quantization: this.options.quantization as ScalarKind,
      connectivity: this.options.connectivity,
      expansion_add: this.options.expansionAdd,
      expansion_search: this.options.expansionSearch || Math.max(128, Math.ceil(expectedRows / 1000)),
      multi: false,
    });
    graph.view(this.config.path);
    if (graph.dimensions() !== this.dimensions || graph.size() !== expectedRows) {
      throw new Error(
        `graph file holds ${graph.size()} rows of ${graph.dimensions()} dims, expected ${expectedRows} of ${this.dimensions}`,
      );
    }
    return graph;
  }

  private failed(error: unknown): void {
    this.report(error);
    // Start over from the served file (or from scratch): whatever the builder had applied is lost.
    this.builderReady = false;
    this.builderDirty = false;
    this.rebuild = null;
    this.dispatchAt = 0;
    this.failures++;
    this.retryAt = Date.now() + Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (this.failures - 1));
    this.wakeAt(this.retryAt);
  }

  private report(error: unknown): void {
    this.config.onError?.(error instanceof Error ? error : new Error(String(error)));
  }

  private request(message: AnnBuilderRequest, transfer: ArrayBuffer[] = []): Promise<unknown> {
    return this.thread.request(message, transfer);
  }
}

function byScoreThenChunkId(a: VectorMatch, b: VectorMatch): number {
  return a.score !== b.score ? b.score - a.score : a.chunkId < b.chunkId ? -1 : a.chunkId > b.chunkId ? 1 : 0;
}

function* filterKeys(map: Map<number, number>, keep: (rowId: number) => boolean): Iterable<number> {
  for (const rowId of map.keys()) if (keep(rowId)) yield rowId;
}

/** True when the ascending array holds `value`. */
function sortedHas(sorted: Float64Array, value: number): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid]!;
    if (v === value) return true;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** The first index of the ascending array whose value is at least `value`. */
function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
