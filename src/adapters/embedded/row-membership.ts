/** A membership test for a set of row ids; `release` readies the scratch buffer it used for the next test. */
export interface RowMembership {
  has: (rowId: number) => boolean;
  release: () => void;
}

/** Bitsets beyond this many 32-bit words (2^27 row ids, 16 MiB) fall back to a Set. */
const MAX_WORDS = 1 << 22;

/**
 * Membership tests for the rows a filter allows: a bitset when the row ids are small non-negative integers (SQLite
 * rowids, as the embedded store's are), else a Set. The bitset's buffer is kept between tests and grows as needed;
 * `release` clears only the bits the test set, so a test costs the size of its row list, not of the buffer.
 */
export class RowMemberships {
  #bits = new Uint32Array(0);

  of(allowed: Set<number> | readonly number[]): RowMembership {
    if (allowed instanceof Set) return { has: (rowId) => allowed.has(rowId), release: () => {} };
    let max = 0;
    for (const rowId of allowed) {
      if (!Number.isInteger(rowId) || rowId < 0 || rowId >= 2 ** 31) return setOf(allowed);
      if (rowId > max) max = rowId;
    }
    const words = (max >>> 5) + 1;
    if (words > MAX_WORDS) return setOf(allowed);
    if (this.#bits.length < words) this.#bits = new Uint32Array(Math.max(words, this.#bits.length * 2));
    const bits = this.#bits;
    for (const rowId of allowed) bits[rowId >>> 5]! |= 1 << (rowId & 31);
    return {
      has: (rowId) => rowId >>> 5 < words && (bits[rowId >>> 5]! & (1 << (rowId & 31))) !== 0,
      release: () => {
        for (const rowId of allowed) bits[rowId >>> 5] = 0;
      },
    };
  }
}

function setOf(allowed: readonly number[]): RowMembership {
  const set = new Set(allowed);
  return { has: (rowId) => set.has(rowId), release: () => {} };
}
