/**
 * The embedded store's in-memory exact vector index for one collection: one growable, contiguous Float32Array
 * matrix of L2-normalised vectors (row `slot` at `slot * dimensions`), plus slot ↔ row-id maps. Search is a brute
 * force dot product over every live slot (or a given subset), so recall is exact; cosine similarity of the raw
 * vectors equals the dot product of the normalised ones.
 *
 * Row ids are the store's integer chunk row ids; chunk ids are kept per slot to break score ties (ascending).
 * The top k are kept in a small heap while scanning (no full sort). Rows are removed by moving the last row into
 * the hole, so the matrix stays dense.
 */
export interface VectorMatch {
  rowId: number;
  chunkId: string;
  /** Cosine similarity to the query. */
  score: number;
}

/**
 * What the store needs from a collection's vector index; the exact {@link VectorIndex} and the approximate `AnnIndex`
 * (ann-index.ts) both provide it.
 */
export interface VectorSearchIndex {
  readonly dimensions: number;
  readonly size: number;
  has(rowId: number): boolean;
  add(rowId: number, chunkId: string, vector: ArrayLike<number>): void;
  addBytes(rowId: number, chunkId: string, bytes: Uint8Array): void;
  remove(rowId: number): boolean;
  reserve(capacity: number): void;
  scoreRows(query: ArrayLike<number>, rowIds: readonly number[]): (number | null)[];
  search(query: ArrayLike<number>, k: number, allowedRowIds?: Iterable<number>): VectorMatch[];
}

export class VectorIndex implements VectorSearchIndex {
  private matrix: Float32Array;
  private bytes: Uint8Array;
  private rowIds: Float64Array;
  private chunkIds: string[] = [];
  private readonly slotByRowId = new Map<number, number>();
  private count = 0;

  /**
   * @param dimensions floats per vector.
   * @param initialCapacity vectors to allocate room for up front (grows by doubling). @default 64
   */
  constructor(
    readonly dimensions: number,
    initialCapacity = 64,
  ) {
    if (!Number.isInteger(dimensions) || dimensions <= 0) throw new RangeError(`dimensions must be a positive integer, got ${dimensions}`);
    const capacity = Math.max(1, Math.floor(initialCapacity));
    this.matrix = new Float32Array(capacity * dimensions);
    this.bytes = new Uint8Array(this.matrix.buffer);
    this.rowIds = new Float64Array(capacity);
  }

  /**
   * An index over rows read elsewhere (a fill thread): `matrix` holds `chunkIds.length` normalised vectors, row
   * `rowIds[i]` at slot i. The arrays are adopted, not copied (a shared buffer stays shared until the index grows).
   */
  static fromRows(dimensions: number, rows: { matrix: Float32Array; rowIds: Float64Array; chunkIds: string[] }): VectorIndex {
    const count = rows.chunkIds.length;
    if (rows.matrix.length < count * dimensions || rows.rowIds.length < count)
      throw new RangeError('rows are shorter than their chunk ids');
    const index = new VectorIndex(dimensions, 1);
    index.matrix = rows.matrix;
    index.bytes = new Uint8Array(rows.matrix.buffer, rows.matrix.byteOffset, rows.matrix.byteLength);
    index.rowIds = rows.rowIds;
    index.chunkIds = rows.chunkIds;
    index.count = count;
    for (let slot = 0; slot < count; slot++) index.slotByRowId.set(rows.rowIds[slot]!, slot);
    return index;
  }

  /** Live vectors. */
  get size(): number {
    return this.count;
  }

  has(rowId: number): boolean {
    return this.slotByRowId.has(rowId);
  }

  /** The row's chunk id, or undefined when the row is not indexed. */
  chunkIdOf(rowId: number): string | undefined {
    const slot = this.slotByRowId.get(rowId);
    return slot === undefined ? undefined : this.chunkIds[slot];
  }

  /**
   * The row's normalised vector as a view into the matrix (no copy), or undefined when the row is not indexed.
   * Read it at once: the next add, remove or growth may move or overwrite it.
   */
  vectorOf(rowId: number): Float32Array | undefined {
    const slot = this.slotByRowId.get(rowId);
    if (slot === undefined) return undefined;
    const d = this.dimensions;
    return this.matrix.subarray(slot * d, slot * d + d);
  }

  /** The indexed row ids, in slot order (a copy). */
  rowIdList(): Float64Array {
    return this.rowIds.slice(0, this.count);
  }

  /** Adds (or overwrites) a row; the vector is copied and normalised. */
  add(rowId: number, chunkId: string, vector: ArrayLike<number>): void {
    if (vector.length !== this.dimensions) {
      throw new RangeError(`vector has ${vector.length} dimensions, the index ${this.dimensions}`);
    }
    const slot = this.slotFor(rowId, chunkId);
    this.matrix.set(vector, slot * this.dimensions);
    this.normaliseSlot(slot);
  }

  /**
   * Adds (or overwrites) a row from the raw bytes of a little-endian float32 vector (an SQLite BLOB), copying them
   * straight into the matrix: no intermediate Float32Array, and no alignment requirement on `bytes`.
   */
  addBytes(rowId: number, chunkId: string, bytes: Uint8Array): void {
    const expected = this.dimensions * 4;
    if (bytes.byteLength !== expected) {
      throw new RangeError(`vector blob has ${bytes.byteLength} bytes, expected ${expected}`);
    }
    const slot = this.slotFor(rowId, chunkId);
    this.bytes.set(bytes, slot * expected);
    this.normaliseSlot(slot);
  }

  /** Removes a row by moving the last slot into its place; false when the row was not indexed. */
  remove(rowId: number): boolean {
    const slot = this.slotByRowId.get(rowId);
    if (slot === undefined) return false;
    this.slotByRowId.delete(rowId);
    const last = this.count - 1;
    if (slot !== last) {
      const d = this.dimensions;
      this.matrix.copyWithin(slot * d, last * d, last * d + d);
      const movedRow = this.rowIds[last]!;
      this.rowIds[slot] = movedRow;
      this.chunkIds[slot] = this.chunkIds[last]!;
      this.slotByRowId.set(movedRow, slot);
    }
    this.chunkIds.length = last;
    this.count = last;
    return true;
  }

  /** Grows the matrix so at least `capacity` vectors fit without another reallocation. */
  reserve(capacity: number): void {
    if (capacity <= this.rowIds.length) return;
    const d = this.dimensions;
    const matrix = new Float32Array(capacity * d);
    matrix.set(this.matrix.subarray(0, this.count * d));
    const rowIds = new Float64Array(capacity);
    rowIds.set(this.rowIds.subarray(0, this.count));
    this.matrix = matrix;
    this.bytes = new Uint8Array(matrix.buffer);
    this.rowIds = rowIds;
  }

  /** Cosine similarity of `query` to each row (null for rows not indexed). */
  scoreRows(query: ArrayLike<number>, rowIds: readonly number[]): (number | null)[] {
    const q = this.prepareQuery(query);
    return rowIds.map((rowId) => {
      const slot = this.slotByRowId.get(rowId);
      return slot === undefined ? null : dotAt(this.matrix, slot * this.dimensions, q);
    });
  }

  /**
   * The `k` rows most similar to `query`, best first, ties by chunk id ascending.
   * @param allowedRowIds when given, only these rows are scored (ids not in the index are ignored).
   */
  search(query: ArrayLike<number>, k: number, allowedRowIds?: Iterable<number>): VectorMatch[] {
    const q = this.prepareQuery(query);
    if (k <= 0 || this.count === 0) return [];
    const d = this.dimensions;
    const m = this.matrix;
    let slots: Int32Array | null = null;
    if (allowedRowIds !== undefined) {
      const list: number[] = [];
      const taken = new Uint8Array(this.count);
      for (const rowId of allowedRowIds) {
        const slot = this.slotByRowId.get(rowId);
        if (slot !== undefined && taken[slot] === 0) {
          taken[slot] = 1;
          list.push(slot);
        }
      }
      slots = Int32Array.from(list);
    }
    const total = slots === null ? this.count : slots.length;
    const heap = new TopK(Math.min(k, total), this.chunkIds);
    // The inner loop is unrolled 4 ways across rows: each query element is loaded once and feeds four independent
    // accumulators (measured ~1.6x faster here than a 4-accumulator loop over one row). Every accumulator sums in
    // the same order as dotAt, so identical vectors score bit-identically whichever path scores them (exact ties).
    let i = 0;
    for (; i + 4 <= total; i += 4) {
      const s0 = slots === null ? i : slots[i]!;
      const s1 = slots === null ? i + 1 : slots[i + 1]!;
      const s2 = slots === null ? i + 2 : slots[i + 2]!;
      const s3 = slots === null ? i + 3 : slots[i + 3]!;
      const o0 = s0 * d;
      const o1 = s1 * d;
      const o2 = s2 * d;
      const o3 = s3 * d;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let j = 0; j < d; j++) {
        const x = q[j]!;
        a0 += m[o0 + j]! * x;
        a1 += m[o1 + j]! * x;
        a2 += m[o2 + j]! * x;
        a3 += m[o3 + j]! * x;
      }
      heap.offer(s0, a0);
      heap.offer(s1, a1);
      heap.offer(s2, a2);
      heap.offer(s3, a3);
    }
    for (; i < total; i++) {
      const slot = slots === null ? i : slots[i]!;
      heap.offer(slot, dotAt(m, slot * d, q));
    }
    return heap.drain().map(({ slot, score }) => ({ rowId: this.rowIds[slot]!, chunkId: this.chunkIds[slot]!, score }));
  }

  private prepareQuery(query: ArrayLike<number>): Float32Array {
    if (query.length !== this.dimensions) {
      throw new RangeError(`query has ${query.length} dimensions, the index ${this.dimensions}`);
    }
    return normalise(Float32Array.from(query));
  }

  private slotFor(rowId: number, chunkId: string): number {
    let slot = this.slotByRowId.get(rowId);
    if (slot === undefined) {
      if (this.count === this.rowIds.length) this.reserve(Math.max(64, this.rowIds.length * 2));
      slot = this.count++;
      this.slotByRowId.set(rowId, slot);
      this.rowIds[slot] = rowId;
    }
    this.chunkIds[slot] = chunkId;
    return slot;
  }

  private normaliseSlot(slot: number): void {
    const d = this.dimensions;
    normalise(this.matrix.subarray(slot * d, slot * d + d));
  }
}

/** Scales `v` in place to unit length (a zero vector stays zero) and returns it. */
export function normalise(v: Float32Array): Float32Array {
  normaliseAt(v, 0, v.length);
  return v;
}

/** Scales the `d` floats of `m` from `offset` in place to unit length (a zero vector stays zero). */
export function normaliseAt(m: Float32Array, offset: number, d: number): void {
  // Through a view indexed from 0: measured 1.3 µs per 1,024-float row against 2–7 µs with `m[offset + i]`.
  const v = m.subarray(offset, offset + d);
  let sum = 0;
  for (let i = 0; i < d; i++) {
    const x = v[i]!;
    sum += x * x;
  }
  if (sum > 0) {
    const inv = 1 / Math.sqrt(sum);
    for (let i = 0; i < d; i++) v[i] = v[i]! * inv;
  }
}

/** Dot product of the matrix row starting at `offset` with `q`, summed in index order (as in the 4-row loop). */
function dotAt(m: Float32Array, offset: number, q: Float32Array): number {
  let s = 0;
  for (let j = 0; j < q.length; j++) s += m[offset + j]! * q[j]!;
  return s;
}

/**
 * Keeps the k best (slot, score) pairs seen so far in a binary min-heap whose root is the worst kept one, so a
 * candidate costs one comparison unless it beats the root. "Worse" = lower score, or equal score and larger chunk id.
 */
class TopK {
  private readonly slots: Int32Array;
  private readonly scores: Float64Array;
  private size = 0;

  constructor(
    private readonly k: number,
    private readonly chunkIds: readonly string[],
  ) {
    this.slots = new Int32Array(k);
    this.scores = new Float64Array(k);
  }

  offer(slot: number, score: number): void {
    if (this.k === 0) return;
    if (this.size < this.k) {
      this.slots[this.size] = slot;
      this.scores[this.size] = score;
      this.siftUp(this.size++);
      return;
    }
    const rootScore = this.scores[0]!;
    if (score < rootScore) return;
    if (score === rootScore && this.chunkIds[slot]! >= this.chunkIds[this.slots[0]!]!) return;
    this.slots[0] = slot;
    this.scores[0] = score;
    this.siftDown(0);
  }

  /** The kept pairs, best first. */
  drain(): { slot: number; score: number }[] {
    const out: { slot: number; score: number }[] = [];
    for (let i = 0; i < this.size; i++) out.push({ slot: this.slots[i]!, score: this.scores[i]! });
    const ids = this.chunkIds;
    return out.sort((a, b) => (a.score !== b.score ? b.score - a.score : ids[a.slot]! < ids[b.slot]! ? -1 : 1));
  }

  /** True when entry i ranks below entry j. */
  private worse(i: number, j: number): boolean {
    const si = this.scores[i]!;
    const sj = this.scores[j]!;
    if (si !== sj) return si < sj;
    return this.chunkIds[this.slots[i]!]! > this.chunkIds[this.slots[j]!]!;
  }

  private swap(i: number, j: number): void {
    const slot = this.slots[i]!;
    const score = this.scores[i]!;
    this.slots[i] = this.slots[j]!;
    this.scores[i] = this.scores[j]!;
    this.slots[j] = slot;
    this.scores[j] = score;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.worse(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let worst = i;
      if (l < this.size && this.worse(l, worst)) worst = l;
      if (r < this.size && this.worse(r, worst)) worst = r;
      if (worst === i) return;
      this.swap(i, worst);
      i = worst;
    }
  }
}
