/**
 * A Map of strings bounded by size: the least recently used entries are evicted once the keys and values together
 * exceed `maxBytes` (UTF-16 size, 2 bytes a character, plus a fixed overhead per entry). It is the in-process store
 * behind Keyv when there is no Redis (Keyv accepts any Map-like object); expiry stays Keyv's job (it stores the
 * deadline with the value and drops an expired entry when it is read).
 */
export class LruMap extends Map<string, string> {
  #bytes = 0;

  /**
   * @param maxBytes upper bound of the approximate memory held, in bytes (at least one entry is always kept).
   * @param entryOverheadBytes bytes counted per entry on top of its strings. @default 64
   */
  constructor(
    readonly maxBytes: number,
    private readonly entryOverheadBytes = 64,
  ) {
    super();
    if (!(maxBytes > 0)) throw new RangeError(`maxBytes must be positive, got ${maxBytes}`);
  }

  /** Approximate bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  override get(key: string): string | undefined {
    const value = super.get(key);
    if (value !== undefined) {
      // Re-insert: Map iteration order is insertion order, so the first key is the least recently used one.
      super.delete(key);
      super.set(key, value);
    }
    return value;
  }

  override set(key: string, value: string): this {
    const previous = super.get(key);
    if (previous !== undefined) {
      this.#bytes -= this.#cost(key, previous);
      super.delete(key);
    }
    super.set(key, value);
    this.#bytes += this.#cost(key, value);
    while (this.#bytes > this.maxBytes && this.size > 1) {
      const oldest = this.keys().next().value as string;
      this.delete(oldest);
    }
    return this;
  }

  override delete(key: string): boolean {
    const value = super.get(key);
    if (value === undefined) return false;
    this.#bytes -= this.#cost(key, value);
    return super.delete(key);
  }

  override clear(): void {
    super.clear();
    this.#bytes = 0;
  }

  #cost(key: string, value: string): number {
    return 2 * (key.length + value.length) + this.entryOverheadBytes;
  }
}
