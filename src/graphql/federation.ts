/**
 * The `id` key of a representation. Null for anything but a non-empty string: a malformed representation is
 * treated like a missing entity rather than sent to the store.
 */
export function referenceId(reference: Record<string, unknown>): string | null {
  const id = reference['id'];
  return typeof id === 'string' && id.length > 0 ? id : null;
}
