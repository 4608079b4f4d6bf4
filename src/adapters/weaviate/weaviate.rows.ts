/** kbql's records as Weaviate objects and back, and which chunk objects a document record makes visible. */
import type { FilterValue } from 'weaviate-client';
import { uuidV5, UUID_PATTERN } from '../../ids';
import { DEFAULT_TENANT } from '../../ports/knowledge-store.port';
import type { ChunkRecord, CollectionRecord, ContentType, DocumentRecord, Metadata } from '../../ports/knowledge-store.port';
import { parseShares } from '../store-checks';
import type { WObject, WProperties } from './weaviate.client';
import { andOf, BUILTIN_PROPERTIES, cmp, decodeFilterText, eq } from './weaviate.filters';

export const CHUNK_RETURN = ['text', 'documentId', 'chunkIndex', 'startOffset', 'endOffset', 'contentHash'];

/** Only lower-case canonical UUIDs can be ids here (kbql mints them so); anything else is simply not found. */
export const isCanonicalId = (id: string): boolean => typeof id === 'string' && UUID_PATTERN.test(id) && id === id.toLowerCase();

/** The default tenant keeps the claim ids of the time before tenants, so existing claims stay valid. */
export const nameClaimId = (tenant: string, name: string): string =>
  uuidV5(tenant === DEFAULT_TENANT ? `collection-name\u0000${name}` : `collection-name\u0000${tenant}\u0000${name}`);

const createdKey = (ms: number, id: string): string => `${String(ms).padStart(15, '0')}_${id}`;

/** The chunks of a document that its record makes visible. */
export function visibleChunksOf(doc: DocumentRecord): FilterValue {
  return andOf(eq('documentId', doc.id), cmp('LessThan', 'chunkIndex', doc.chunkCount), eq('contentHash', doc.contentHash));
}

export function isVisible(chunk: ChunkRecord, contentHash: string, doc: DocumentRecord | undefined): boolean {
  return doc !== undefined && chunk.index < doc.chunkCount && contentHash === doc.contentHash;
}

export function chunkProperties(
  doc: DocumentRecord,
  chunk: { index: number; text: string; startOffset: number; endOffset: number },
  filterable: Record<string, unknown>,
): WProperties {
  return {
    text: chunk.text,
    documentId: doc.id,
    chunkIndex: chunk.index,
    startOffset: chunk.startOffset,
    endOffset: chunk.endOffset,
    contentHash: doc.contentHash,
    externalId: doc.externalId,
    ...(doc.title !== null ? { title: doc.title } : {}),
    ...(doc.source !== null ? { source: doc.source } : {}),
    metadataJson: JSON.stringify(doc.metadata),
    ...filterable,
  };
}

export function documentProperties(doc: DocumentRecord, filterable: Record<string, unknown>): WProperties {
  return {
    collectionId: doc.collectionId,
    externalId: doc.externalId,
    ...(doc.title !== null ? { title: doc.title } : {}),
    ...(doc.source !== null ? { source: doc.source } : {}),
    contentType: doc.contentType,
    contentHash: doc.contentHash,
    charCount: doc.charCount,
    chunkCount: doc.chunkCount,
    createdAtMs: doc.createdAt.getTime(),
    updatedAtMs: doc.updatedAt.getTime(),
    createdKey: createdKey(doc.createdAt.getTime(), doc.id),
    metadataJson: JSON.stringify(doc.metadata),
    ...filterable,
  };
}

export function collectionProperties(record: CollectionRecord, className: string): WProperties {
  return {
    kind: 'collection',
    collectionId: record.id,
    ownerTenant: record.tenant,
    name: record.name,
    descriptionJson: JSON.stringify(record.description),
    chunkingJson: JSON.stringify(record.chunking),
    embedderName: record.embedder.name,
    embedderDimensions: record.embedder.dimensions,
    version: record.version,
    createdAtMs: record.createdAt.getTime(),
    updatedAtMs: record.updatedAt.getTime(),
    createdKey: createdKey(record.createdAt.getTime(), record.id),
    className,
    sharesJson: JSON.stringify(record.shares ?? []),
    sharedTenants: (record.shares ?? []).map((s) => s.tenant),
  };
}

export const str0 = (v: unknown): string => (typeof v === 'string' ? v : '');
export const num0 = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const decodedOrNull = (v: unknown): string | null => (typeof v === 'string' ? decodeFilterText(v) : null);

export function toCollection(object: WObject): CollectionRecord {
  const p = object.properties;
  return {
    id: object.uuid,
    // Records written before tenants existed have none: they belong to the default tenant.
    tenant: str0(p['ownerTenant']) || DEFAULT_TENANT,
    name: str0(p['name']),
    description: JSON.parse(str0(p['descriptionJson']) || 'null') as string | null,
    chunking: JSON.parse(str0(p['chunkingJson'])) as CollectionRecord['chunking'],
    embedder: { name: str0(p['embedderName']), dimensions: num0(p['embedderDimensions']) },
    version: num0(p['version']),
    createdAt: new Date(num0(p['createdAtMs'])),
    updatedAt: new Date(num0(p['updatedAtMs'])),
    // Records written before sharing existed have none.
    shares: parseShares(str0(p['sharesJson']) || '[]'),
  };
}

export function toDocument(object: WObject): DocumentRecord {
  const p = object.properties;
  return {
    id: object.uuid,
    collectionId: str0(p['collectionId']),
    // The encoded builtins round-trip exactly (null when absent, '' kept as '').
    externalId: decodedOrNull(p[BUILTIN_PROPERTIES.externalId]) ?? str0(p['externalId']),
    title: decodedOrNull(p[BUILTIN_PROPERTIES.title]),
    source: decodedOrNull(p[BUILTIN_PROPERTIES.source]),
    contentType: str0(p['contentType']) as ContentType,
    metadata: JSON.parse(str0(p['metadataJson']) || '{}') as Metadata,
    contentHash: str0(p['contentHash']),
    charCount: num0(p['charCount']),
    chunkCount: num0(p['chunkCount']),
    createdAt: new Date(num0(p['createdAtMs'])),
    updatedAt: new Date(num0(p['updatedAtMs'])),
  };
}

export function toChunk(object: WObject, collectionId: string): ChunkRecord {
  const p = object.properties;
  return {
    id: object.uuid,
    documentId: str0(p['documentId']),
    collectionId,
    index: num0(p['chunkIndex']),
    text: str0(p['text']),
    startOffset: num0(p['startOffset']),
    endOffset: num0(p['endOffset']),
  };
}
