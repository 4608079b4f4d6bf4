import { createHash } from 'node:crypto';

/** RFC 4122 v5 (SHA-1, name-based) UUID, so ids are deterministic across adapters and re-ingestion. */
export function uuidV5(name: string, namespace: string = KBQL_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** kbql's own namespace for v5 ids. */
export const KBQL_NAMESPACE = '6f1c2d3e-8a4b-5c6d-9e0f-1a2b3c4d5e6f';

export const documentId = (collectionId: string, externalId: string): string => uuidV5(`document\u0000${collectionId}\u0000${externalId}`);

export const chunkId = (docId: string, index: number): string => uuidV5(`chunk\u0000${docId}\u0000${index}`);

export const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
