import { badInput } from '../../errors';
import type { Metadata, MetadataValue } from '../../ports/knowledge-store.port';
import { METADATA_KEY_PATTERN } from '../query/filter';

/** Bounds on document metadata, so it stays filterable and cheap to store. */
export const METADATA_LIMITS = { maxBytes: 32 * 1024, maxDepth: 4, maxKeys: 128 } as const;

/** Validates client metadata: a JSON object whose top-level keys are filterable names. Returns a clean copy. */
export function validateMetadata(input: unknown): Metadata {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw badInput('metadata must be a JSON object.', { field: 'metadata' });
  }
  const keys = Object.keys(input);
  if (keys.length > METADATA_LIMITS.maxKeys) throw badInput(`metadata has at most ${METADATA_LIMITS.maxKeys} keys.`, { field: 'metadata' });
  for (const key of keys) {
    if (!METADATA_KEY_PATTERN.test(key)) {
      throw badInput(`metadata key "${key.slice(0, 80)}" must match ${METADATA_KEY_PATTERN.source}.`, { field: 'metadata' });
    }
  }
  const clean = copy(input, 1) as Metadata;
  const bytes = Buffer.byteLength(JSON.stringify(clean), 'utf8');
  if (bytes > METADATA_LIMITS.maxBytes)
    throw badInput(`metadata is at most ${METADATA_LIMITS.maxBytes} bytes as JSON.`, { field: 'metadata' });
  return clean;
}

function copy(value: unknown, depth: number): MetadataValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw badInput('metadata numbers must be finite.', { field: 'metadata' });
    return value;
  }
  if (depth > METADATA_LIMITS.maxDepth) throw badInput(`metadata nests at most ${METADATA_LIMITS.maxDepth} levels.`, { field: 'metadata' });
  if (Array.isArray(value)) return value.map((v) => copy(v, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, MetadataValue> = {};
    for (const [k, v] of Object.entries(value)) out[k] = copy(v, depth + 1);
    return out;
  }
  throw badInput('metadata holds only JSON values.', { field: 'metadata' });
}
