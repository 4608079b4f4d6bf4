/** Items processed between two turns of the event loop by {@link mapCooperatively}. */
const SLICE = 128;

/**
 * `fn` over `items`, giving other requests a turn of the event loop after every {@link SLICE} items: for per-item
 * work that is cheap alone but long over the thousands of chunks of one large document (hashing, encoding).
 */
export async function mapCooperatively<T, R>(items: readonly T[], fn: (item: T, index: number) => R): Promise<R[]> {
  const out = new Array<R>(items.length);
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && i % SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    out[i] = fn(items[i]!, i);
  }
  return out;
}
