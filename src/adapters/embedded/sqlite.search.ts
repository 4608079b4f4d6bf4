/**
 * Search in the embedded store: VECTOR over the loaded exact vector index, KEYWORD over the collection's FTS5 table
 * (BM25), HYBRID as the relative-score fusion of both candidate lists.
 */
import { badInput, notFound } from '../../errors';
import { relativeScoreFusion } from '../../retrieval/fusion';
import type { SearchHit, SearchRequest } from '../../ports/knowledge-store.port';
import { checkQueryEmbedder } from '../embedding-checks';
import { checkPage, checkQueryVector } from '../store-checks';
import type { SqliteDatabase } from './sqlite.database';
import { compileFilterSql, type CompiledFilter } from './sqlite.filters';
import { CHUNK_COLUMNS, DOCUMENT_COLUMNS, toChunk, toDocument, type ChunkRow, type CollectionRow, type DocumentRow } from './sqlite.rows';
import { assertFtsName } from './sqlite.schema';
import type { LoadedVectorIndexes } from './sqlite.vector-indexes';

/**
 * Candidates each side of a HYBRID search contributes: max(limit + offset, floor) × factor. With the API's cap of
 * offset + topK ≤ 200 (MAX_SEARCH_WINDOW) the pool is always the same, so hybrid pages never shift.
 */
const HYBRID_CANDIDATE_FLOOR = 200;
const HYBRID_CANDIDATE_FACTOR = 1;
/** Query terms sent to FTS5 at most (the rest are ignored). */
const MAX_QUERY_TERMS = 64;

export class SqliteSearch {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly indexes: LoadedVectorIndexes,
  ) {}

  async search(request: SearchRequest): Promise<SearchHit[]> {
    const { offset, limit } = checkPage(request);
    let collection = this.db.collectionRow(request.collectionId);
    if (!collection) throw notFound('Collection', request.collectionId);
    // A vector search during start-up waits for the fill thread loading this collection's index.
    if (request.mode !== 'KEYWORD' && (await this.indexes.ready(collection.id))) {
      collection = this.db.collectionRow(request.collectionId);
      if (!collection) throw notFound('Collection', request.collectionId);
    }
    const filter = request.filter ? compileFilterSql(request.filter) : null;
    const wantsVector = request.mode === 'VECTOR' || request.mode === 'HYBRID';
    if (wantsVector) checkQueryEmbedder(request, { name: collection.embedder_name, dimensions: collection.embedder_dimensions });
    if (wantsVector) checkQueryVector(request, collection.embedder_dimensions);
    if (request.mode === 'HYBRID' && !(request.alpha >= 0 && request.alpha <= 1)) throw badInput('alpha must be between 0 and 1.');
    if (limit === 0) return [];

    if (request.mode === 'KEYWORD') {
      const hits = this.keywordCandidates(collection, request.text, filter, limit, offset);
      return this.hydrate(hits.map((h) => ({ rowId: h.rowId, score: h.score, vectorScore: null, keywordScore: h.score })));
    }

    const query = request.vector!;
    const index = this.indexes.get(collection);
    const allowed = filter ? this.allowedRowIds(collection.id, filter) : undefined;
    if (request.mode === 'VECTOR') {
      const hits = index.search(query, offset + limit, allowed).slice(offset);
      return this.hydrate(hits.map((h) => ({ rowId: h.rowId, score: h.score, vectorScore: h.score, keywordScore: null })));
    }

    const alpha = request.alpha;
    const candidates = Math.max(offset + limit, HYBRID_CANDIDATE_FLOOR) * HYBRID_CANDIDATE_FACTOR;
    const vectorHits = index.search(query, candidates, allowed);
    const keywordHits = this.keywordCandidates(collection, request.text, filter, candidates, 0);
    const rowIdByChunk = new Map<string, number>();
    for (const h of vectorHits) rowIdByChunk.set(h.chunkId, h.rowId);
    for (const h of keywordHits) rowIdByChunk.set(h.chunkId, h.rowId);
    const page = relativeScoreFusion(
      vectorHits.map((h) => ({ id: h.chunkId, score: h.score })),
      keywordHits.map((h) => ({ id: h.chunkId, score: h.score })),
      alpha,
    ).slice(offset, offset + limit);
    // Keyword-only hits still get their cosine similarity: one dot product each against the loaded index.
    const missing = page.filter((h) => h.vectorScore === null).map((h) => rowIdByChunk.get(h.id)!);
    const missingScores = index.scoreRows(query, missing);
    const filled = new Map(missing.map((rowId, i) => [rowId, missingScores[i] ?? null]));
    return this.hydrate(
      page.map((h) => {
        const rowId = rowIdByChunk.get(h.id)!;
        return { rowId, score: h.score, vectorScore: h.vectorScore ?? filled.get(rowId) ?? null, keywordScore: h.keywordScore };
      }),
    );
  }

  private allowedRowIds(collectionId: string, filter: CompiledFilter): number[] {
    return this.db
      .prepare(`SELECT c.seq FROM documents d JOIN chunks c ON c.document_id = d.id WHERE d.collection_id = ? AND ${filter.sql}`, 'pluck')
      .all(collectionId, ...filter.params) as number[];
  }

  /** BM25 hits (higher is better), best first, ties by chunk id; [] when the text has no searchable term. */
  private keywordCandidates(
    collection: CollectionRow,
    text: string,
    filter: CompiledFilter | null,
    limit: number,
    offset: number,
  ): { rowId: number; chunkId: string; score: number }[] {
    const match = ftsMatchExpression(text);
    if (match === null) return [];
    const table = assertFtsName(collection.fts_table);
    // CROSS JOIN keeps the FTS table the outer loop, which bm25() needs.
    const sql = filter
      ? `SELECT c.seq AS rowId, c.id AS chunkId, -bm25(${table}) AS score
         FROM ${table} CROSS JOIN chunks c ON c.seq = ${table}.rowid JOIN documents d ON d.id = c.document_id
         WHERE ${table} MATCH ? AND ${filter.sql}
         ORDER BY score DESC, c.id LIMIT ? OFFSET ?`
      : `SELECT c.seq AS rowId, c.id AS chunkId, -bm25(${table}) AS score
         FROM ${table} CROSS JOIN chunks c ON c.seq = ${table}.rowid
         WHERE ${table} MATCH ?
         ORDER BY score DESC, c.id LIMIT ? OFFSET ?`;
    const params = filter ? [match, ...filter.params, limit, offset] : [match, limit, offset];
    return this.db.prepare(sql).all(...params) as { rowId: number; chunkId: string; score: number }[];
  }

  /** Loads chunk and document rows for ranked hits, keeping their order. */
  private hydrate(hits: { rowId: number; score: number; vectorScore: number | null; keywordScore: number | null }[]): SearchHit[] {
    if (hits.length === 0) return [];
    const chunks = this.db
      .prepare(`SELECT ${CHUNK_COLUMNS} FROM chunks c WHERE c.seq IN (SELECT value FROM json_each(?))`)
      .all(JSON.stringify(hits.map((h) => h.rowId))) as ChunkRow[];
    const chunkBySeq = new Map(chunks.map((row) => [row.seq, row]));
    const docIds = [...new Set(chunks.map((row) => row.document_id))];
    const docs = this.db
      .prepare(`SELECT ${DOCUMENT_COLUMNS} FROM documents d WHERE d.id IN (SELECT value FROM json_each(?))`)
      .all(JSON.stringify(docIds)) as DocumentRow[];
    const docById = new Map(docs.map((row) => [row.id, toDocument(row)]));
    const out: SearchHit[] = [];
    for (const hit of hits) {
      const chunk = chunkBySeq.get(hit.rowId);
      const document = chunk && docById.get(chunk.document_id);
      if (!chunk || !document) continue;
      out.push({ chunk: toChunk(chunk), document, score: hit.score, vectorScore: hit.vectorScore, keywordScore: hit.keywordScore });
    }
    return out;
  }
}

/**
 * The FTS5 MATCH expression for free text: its letter/digit runs, each quoted (so no FTS syntax survives) and OR-ed;
 * null when there is no term.
 */
export function ftsMatchExpression(text: string): string | null {
  const terms = new Set<string>();
  for (const match of text.toLowerCase().matchAll(/[\p{L}\p{N}\p{M}]+/gu)) {
    terms.add(match[0]);
    if (terms.size >= MAX_QUERY_TERMS) break;
  }
  if (terms.size === 0) return null;
  return [...terms].map((t) => `"${t}"`).join(' OR ');
}
