/** Rows of the embedded store's tables as SQLite returns them, and their mapping to the port's records. */
import { parseShares } from '../store-checks';
import type {
  ChunkRecord,
  CollectionRecord,
  ContentType,
  DocumentRecord,
  Metadata,
  SecondaryEmbedding,
} from '../../ports/knowledge-store.port';

export interface CollectionRow {
  id: string;
  tenant: string;
  name: string;
  description: string | null;
  chunking: string;
  embedder_name: string;
  embedder_dimensions: number;
  fts_table: string;
  version: number;
  created_at: number;
  updated_at: number;
  shares: string;
  /** JSON of the secondary vectors' embedder and role (see sqlite.reembedding.ts); null when none. */
  secondary: string | null;
}

export interface DocumentRow {
  id: string;
  collection_id: string;
  external_id: string;
  title: string | null;
  source: string | null;
  content_type: string;
  metadata: string;
  content_hash: string;
  char_count: number;
  chunk_count: number;
  created_at: number;
  updated_at: number;
}

export interface ChunkRow {
  seq: number;
  id: string;
  document_id: string;
  collection_id: string;
  idx: number;
  start_offset: number;
  end_offset: number;
  text: string;
}

export const DOCUMENT_COLUMNS = `d.id, d.collection_id, d.external_id, d.title, d.source, d.content_type, json(d.metadata) AS metadata,
  d.content_hash, d.char_count, d.chunk_count, d.created_at, d.updated_at`;
export const CHUNK_COLUMNS = `c.seq, c.id, c.document_id, c.collection_id, c.idx, c.start_offset, c.end_offset, c.text`;

export function stringifyMetadata(metadata: Metadata): string {
  return JSON.stringify(metadata ?? {});
}

export function toCollection(row: CollectionRow): CollectionRecord {
  return {
    id: row.id,
    tenant: row.tenant,
    name: row.name,
    description: row.description,
    chunking: JSON.parse(row.chunking) as CollectionRecord['chunking'],
    embedder: { name: row.embedder_name, dimensions: row.embedder_dimensions },
    version: row.version,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    shares: parseShares(row.shares),
    secondary: parseSecondary(row.secondary),
  };
}

/** The stored form of {@link SecondaryEmbedding}. */
interface SecondaryJson {
  role: SecondaryEmbedding['role'];
  name: string;
  dimensions: number;
  expiresAt: number | null;
}

export function parseSecondary(text: string | null): SecondaryEmbedding | null {
  if (!text) return null;
  const j = JSON.parse(text) as SecondaryJson;
  return {
    role: j.role,
    embedder: { name: j.name, dimensions: j.dimensions },
    expiresAt: j.expiresAt === null ? null : new Date(j.expiresAt),
  };
}

export function stringifySecondary(secondary: SecondaryEmbedding | null): string | null {
  if (!secondary) return null;
  const j: SecondaryJson = {
    role: secondary.role,
    name: secondary.embedder.name,
    dimensions: secondary.embedder.dimensions,
    expiresAt: secondary.expiresAt?.getTime() ?? null,
  };
  return JSON.stringify(j);
}

export function toDocument(row: DocumentRow): DocumentRecord {
  return {
    id: row.id,
    collectionId: row.collection_id,
    externalId: row.external_id,
    title: row.title,
    source: row.source,
    contentType: row.content_type as ContentType,
    metadata: JSON.parse(row.metadata) as Metadata,
    contentHash: row.content_hash,
    charCount: row.char_count,
    chunkCount: row.chunk_count,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

export function toChunk(row: ChunkRow): ChunkRecord {
  return {
    id: row.id,
    documentId: row.document_id,
    collectionId: row.collection_id,
    index: row.idx,
    text: row.text,
    startOffset: row.start_offset,
    endOffset: row.end_offset,
  };
}
