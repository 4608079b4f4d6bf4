/**
 * A small LRU of verified credentials: each entry carries its own deadline (the caller picks it, e.g. the earlier of
 * the credential's expiry and now + TTL) and is dropped when read after it. Only successes go in; a failure is
 * never cached, so a credential that becomes valid (a clock catching up, a key created a moment later) is not
 * refused from memory. Keys must already be digests: a raw token or secret is never a key.
 */
export class VerifiedCache<T> {
  readonly #entries = new Map<string, { value: T; expiresAtMs: number }>();

  /**
   * @param maxEntries entries kept; the least recently used one goes first. @default 10000
   * @param now the clock, in ms since the epoch. @default Date.now
   */
  constructor(
    readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    if (!(maxEntries >= 1)) throw new RangeError(`maxEntries must be at least 1, got ${maxEntries}`);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, while its deadline has not passed (and then it becomes the most recently used). */
  get(key: string): T | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAtMs <= this.now()) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Keeps `value` until `expiresAtMs` (nothing is stored when that is not in the future). */
  set(key: string, value: T, expiresAtMs: number): void {
    this.#entries.delete(key);
    if (!(expiresAtMs > this.now())) return;
    this.#entries.set(key, { value, expiresAtMs });
    while (this.#entries.size > this.maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}
