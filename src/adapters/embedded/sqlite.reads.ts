/** Document and chunk reads of the embedded store. */
import type { ChunkRecord, DocumentRecord, Filter, Page, PageRequest } from '../../ports/knowledge-store.port';
import { checkPage } from '../store-checks';
import type { SqliteDatabase } from './sqlite.database';
import { compileFilterSql } from './sqlite.filters';
import { CHUNK_COLUMNS, DOCUMENT_COLUMNS, toChunk, toDocument, type ChunkRow, type DocumentRow } from './sqlite.rows';

export class SqliteReads {
  constructor(private readonly db: SqliteDatabase) {}

  async getContentHashes(collectionId: string, externalIds: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (externalIds.length === 0) return out;
    const rows = this.db
      .prepare(
        `SELECT external_id, content_hash FROM documents
       WHERE collection_id = ? AND external_id IN (SELECT value FROM json_each(?))`,
      )
      .all(collectionId, JSON.stringify(externalIds)) as { external_id: string; content_hash: string }[];
    for (const row of rows) out.set(row.external_id, row.content_hash);
    return out;
  }

  async getDocuments(ids: string[]): Promise<(DocumentRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = this.db
      .prepare(`SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.id IN (SELECT value FROM json_each(?))`)
      .all(JSON.stringify(ids)) as DocumentRow[];
    const byId = new Map(rows.map((row) => [row.id, toDocument(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async getDocumentByExternalId(collectionId: string, externalId: string): Promise<DocumentRecord | null> {
    const row = this.db
      .prepare(`SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.collection_id = ? AND d.external_id = ?`)
      .get(collectionId, externalId) as DocumentRow | undefined;
    return row ? toDocument(row) : null;
  }

  async listDocuments(collectionId: string, page: PageRequest, filter?: Filter): Promise<Page<DocumentRecord>> {
    const { offset, limit } = checkPage(page);
    const where = compileFilterSql(filter);
    const total = this.db
      .prepare(`SELECT count(*) AS n FROM documents d WHERE d.collection_id = ? AND ${where.sql}`)
      .get(collectionId, ...where.params) as { n: number };
    const rows = this.db
      .prepare(
        `SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.collection_id = ? AND ${where.sql}
       ORDER BY d.created_at, d.id LIMIT ? OFFSET ?`,
      )
      .all(collectionId, ...where.params, limit, offset) as DocumentRow[];
    return { items: rows.map(toDocument), total: total.n };
  }

  async listChunks(documentId: string, page: PageRequest): Promise<Page<ChunkRecord>> {
    const { offset, limit } = checkPage(page);
    const total = this.db.prepare('SELECT count(*) AS n FROM chunks WHERE document_id = ?').get(documentId) as { n: number };
    const rows = this.db
      .prepare(`SELECT ${CHUNK_COLUMNS} FROM chunks c WHERE c.document_id = ? ORDER BY c.idx LIMIT ? OFFSET ?`)
      .all(documentId, limit, offset) as ChunkRow[];
    return { items: rows.map(toChunk), total: total.n };
  }

  async getChunks(ids: string[]): Promise<(ChunkRecord | null)[]> {
    if (ids.length === 0) return [];
    const rows = this.db
      .prepare(`SELECT ${CHUNK_COLUMNS} FROM chunks c WHERE c.id IN (SELECT value FROM json_each(?))`)
      .all(JSON.stringify(ids)) as ChunkRow[];
    const byId = new Map(rows.map((row) => [row.id, toChunk(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }
}
