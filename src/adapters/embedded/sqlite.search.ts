/**
 * Search in the embedded store: VECTOR over the loaded vector index, KEYWORD as BM25 with a title field and
 * pseudo-relevance feedback over the candidates the collection's FTS5 table finds, HYBRID as the relative-score
 * fusion of both candidate lists.
 */
import { badInput, notFound } from '../../errors';
import {
  analyzeChunk,
  analyzeQuery,
  DEFAULT_BM25_PARAMS,
  feedbackQuery,
  idf,
  scoreBm25,
  type AnalyzedChunk,
  type Bm25Params,
  type Bm25Stats,
  type QueryTerm,
  type Surfaces,
} from '../../retrieval/bm25';
import { relativeScoreFusion } from '../../retrieval/fusion';
import { stemCached } from '../embedders/hash.embedder';
import type { SearchHit, SearchRequest } from '../../ports/knowledge-store.port';
import { checkQueryEmbedder } from '../embedding-checks';
import { checkPage, checkQueryVector } from '../store-checks';
import type { SqliteDatabase } from './sqlite.database';
import { compileFilterSql, type CompiledFilter } from './sqlite.filters';
import { CHUNK_COLUMNS, DOCUMENT_COLUMNS, toChunk, toDocument, type ChunkRow, type CollectionRow, type DocumentRow } from './sqlite.rows';
import { assertFtsName } from './sqlite.schema';
import type { LoadedVectorIndexes } from './sqlite.vector-indexes';
import { RowMemberships, type RowMembership } from './row-membership';

/**
 * Candidates each side of a HYBRID search contributes: max(limit + offset, floor) × factor. With the API's cap of
 * offset + topK ≤ 200 (MAX_SEARCH_WINDOW) the pool is always the same, so hybrid pages never shift.
 */
const HYBRID_CANDIDATE_FLOOR = 200;
const HYBRID_CANDIDATE_FACTOR = 1;
/** Query terms sent to FTS5 at most (the rest are ignored). */
const MAX_QUERY_TERMS = 64;
/** Chunks FTS5's own BM25 proposes to the rescoring, per pass (the first query, then the expanded one). */
const KEYWORD_CANDIDATES = 500;
/** Chunks analysed to estimate a collection's mean chunk length (once per collection version). */
const LENGTH_SAMPLE = 1000;
/**
 * Analysed chunks (a few kB each: ~40 MB at the cap), document frequencies and surface forms kept per collection
 * version, and the collections kept: a cache that fills is emptied and refilled.
 */
const MAX_CACHED_CHUNKS = 10_000;
const MAX_CACHED_TERMS = 100_000;
const MAX_CACHED_COLLECTIONS = 4;

/** What the keyword side learned about one version of a collection; dropped when the version moves. */
interface KeywordCache {
  version: number;
  chunkCount: number;
  meanLength: number;
  documentFrequency: Map<string, number>;
  chunks: Map<number, AnalyzedChunk>;
  surfaces: Surfaces;
}

/** Porter, as FTS5's `porter` tokenizer stems, so query, rescoring and index agree on a term. */
const stem = (word: string): string => stemCached(word);

export class SqliteSearch {
  private readonly keywordCaches = new Map<string, KeywordCache>();
  private readonly memberships = new RowMemberships();

  constructor(
    private readonly db: SqliteDatabase,
    private readonly indexes: LoadedVectorIndexes,
    private readonly bm25: Readonly<Bm25Params> = DEFAULT_BM25_PARAMS,
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
      const allowed = filter ? this.allowedRowIds(collection.id, filter) : undefined;
      const hits = this.keywordCandidates(collection, request.text, allowed, limit, offset);
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
    const keywordHits = this.keywordCandidates(collection, request.text, allowed, candidates, 0);
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

  /**
   * BM25 hits (higher is better), best first, ties by chunk id; [] when the text has no searchable term.
   * FTS5 proposes candidates; they are rescored with BM25 over body and title, then the best ones expand the query
   * (pseudo-relevance feedback) and the same candidates are rescored with the expanded query. (Asking FTS5 again for
   * the expanded query's candidates cost twice the time and ranked no better on SciFact: 0.7102 against 0.7112.)
   */
  private keywordCandidates(
    collection: CollectionRow,
    text: string,
    allowed: readonly number[] | undefined,
    limit: number,
    offset: number,
  ): { rowId: number; chunkId: string; score: number }[] {
    const query = analyzeQuery(text, stem, MAX_QUERY_TERMS);
    if (query.length === 0) return [];
    const cache = this.keywordCache(collection);
    const stats = this.bm25Stats(collection, cache);
    const candidates = this.candidates(collection, cache, query, allowed);
    const first = rank(candidates, query, stats, this.bm25);
    const expanded = feedbackQuery(query, first, stats, this.bm25, cache.surfaces);
    const ranked = expanded.length > query.length ? rank(candidates, expanded, stats, this.bm25) : first;
    return ranked.slice(offset, offset + limit).map((h) => ({ rowId: h.rowId, chunkId: h.chunkId, score: h.score }));
  }

  /** The chunks FTS5's own BM25 ranks best for `terms` (among the `allowed` rows, when a filter gave them), analysed. */
  private candidates(
    collection: CollectionRow,
    cache: KeywordCache,
    terms: readonly QueryTerm[],
    allowed: readonly number[] | undefined,
  ): { rowId: number; chunkId: string; chunk: AnalyzedChunk }[] {
    const match = ftsMatchExpression(terms.map((t) => t.surface).join(' '));
    if (match === null) return [];
    if (allowed && allowed.length === 0) return [];
    const membership = allowed ? this.memberships.of(allowed) : null;
    let found: { rowId: number; chunkId: string }[];
    try {
      found = this.bestMatches(assertFtsName(collection.fts_table), match, membership);
    } finally {
      membership?.release();
    }
    const analyzed = this.analyzedChunks(
      cache,
      found.map((c) => c.rowId),
    );
    return found.map((c) => ({ ...c, chunk: analyzed.get(c.rowId)! }));
  }

  /**
   * The {@link KEYWORD_CANDIDATES} rows (of the `allowed` ones, when given) FTS5's BM25 ranks best, ties by chunk id:
   * what `ORDER BY bm25(), c.id LIMIT` over a join with `chunks` (and `documents`, for a filter) returns, without that
   * join's cost. The join reads the chunk row (with its vector) of every row that matches any term before sorting —
   * thousands of rows on a large collection, most of the time of a keyword search (measured 20–34 ms against 8 ms at
   * 37,000 chunks). Here FTS5 ranks alone, in growing windows, until the window holds enough allowed rows and the
   * last row fetched scores worse than the last one kept (so every tie at the cut is in) or every match is fetched;
   * then only those rows' chunk ids are read.
   */
  private bestMatches(table: string, match: string, allowed: RowMembership | null): { rowId: number; chunkId: string }[] {
    const ranked = `SELECT rowid AS rowId, bm25(${table}) AS score FROM ${table} WHERE ${table} MATCH ? ORDER BY score LIMIT ?`;
    let limit = KEYWORD_CANDIDATES + KEYWORD_CANDIDATES / 5;
    let kept: { rowId: number; score: number }[];
    for (;;) {
      const rows = this.db.prepare(ranked).all(match, limit) as { rowId: number; score: number }[];
      kept = allowed ? rows.filter((r) => allowed.has(r.rowId)) : rows;
      if (rows.length < limit) break;
      if (kept.length >= KEYWORD_CANDIDATES && kept[KEYWORD_CANDIDATES - 1]!.score !== rows[rows.length - 1]!.score) break;
      limit *= 4;
    }
    // Past the cut only ties matter: a window that ran to the last match may hold many more allowed rows.
    if (kept.length > KEYWORD_CANDIDATES) {
      const cut = kept[KEYWORD_CANDIDATES - 1]!.score;
      let end = KEYWORD_CANDIDATES;
      while (end < kept.length && kept[end]!.score === cut) end++;
      kept = kept.slice(0, end);
    }
    const ids = this.db
      .prepare('SELECT seq, id FROM chunks WHERE seq IN (SELECT value FROM json_each(?))', 'raw')
      .all(JSON.stringify(kept.map((r) => r.rowId))) as [number, string][];
    const idOf = new Map(ids);
    const found: { rowId: number; chunkId: string; score: number }[] = [];
    for (const row of kept) {
      const chunkId = idOf.get(row.rowId);
      if (chunkId !== undefined) found.push({ rowId: row.rowId, chunkId, score: row.score });
    }
    found.sort((a, b) => a.score - b.score || (a.chunkId < b.chunkId ? -1 : a.chunkId > b.chunkId ? 1 : 0));
    return found.slice(0, KEYWORD_CANDIDATES).map(({ rowId, chunkId }) => ({ rowId, chunkId }));
  }

  /** The keyword cache of the collection's current version (a write moves the version and retires the old one). */
  private keywordCache(collection: CollectionRow): KeywordCache {
    let cache = this.keywordCaches.get(collection.id);
    if (!cache || cache.version !== collection.version) {
      cache = {
        version: collection.version,
        chunkCount: -1,
        meanLength: 0,
        documentFrequency: new Map(),
        chunks: new Map(),
        surfaces: new Map(),
      };
      this.keywordCaches.delete(collection.id);
      // Least recently renewed first: a deleted collection's cache goes once enough others were searched.
      if (this.keywordCaches.size >= MAX_CACHED_COLLECTIONS) this.keywordCaches.delete(this.keywordCaches.keys().next().value!);
      this.keywordCaches.set(collection.id, cache);
    }
    return cache;
  }

  /** Chunk count, mean analysed length (from a sample) and document frequencies (FTS5 counts, cached). */
  private bm25Stats(collection: CollectionRow, cache: KeywordCache): Bm25Stats {
    const table = assertFtsName(collection.fts_table);
    if (cache.chunkCount < 0) {
      cache.chunkCount = this.db.prepare('SELECT count(*) FROM chunks WHERE collection_id = ?', 'pluck').get(collection.id) as number;
      const sample = this.db
        .prepare('SELECT seq FROM chunks WHERE collection_id = ? ORDER BY seq LIMIT ?', 'pluck')
        .all(collection.id, LENGTH_SAMPLE) as number[];
      const analyzed = [...this.analyzedChunks(cache, sample).values()];
      cache.meanLength = analyzed.length > 0 ? analyzed.reduce((sum, c) => sum + c.length, 0) / analyzed.length : 1;
    }
    const count = this.db.prepare(`SELECT count(*) FROM ${table} WHERE ${table} MATCH ?`, 'pluck');
    return {
      chunkCount: cache.chunkCount,
      meanLength: cache.meanLength,
      documentFrequency: (term) => {
        let df = cache.documentFrequency.get(term.term);
        if (df === undefined) {
          const phrase = ftsPhrase(term.surface);
          df = phrase === null ? 0 : (count.get(phrase) as number);
          if (cache.documentFrequency.size >= MAX_CACHED_TERMS) cache.documentFrequency.clear();
          cache.documentFrequency.set(term.term, df);
        }
        return df;
      },
    };
  }

  /** Analysed chunks by row id, from the cache or read and analysed now (one query for the missing ones). */
  private analyzedChunks(cache: KeywordCache, rowIds: readonly number[]): Map<number, AnalyzedChunk> {
    const out = new Map<number, AnalyzedChunk>();
    const missing: number[] = [];
    for (const id of rowIds) {
      const hit = cache.chunks.get(id);
      if (hit) out.set(id, hit);
      else missing.push(id);
    }
    if (missing.length === 0) return out;
    const rows = this.db
      .prepare(
        `SELECT c.seq AS seq, c.text AS text, d.title AS title FROM chunks c JOIN documents d ON d.id = c.document_id
         WHERE c.seq IN (SELECT value FROM json_each(?))`,
      )
      .all(JSON.stringify(missing)) as { seq: number; text: string; title: string | null }[];
    if (cache.chunks.size + rows.length > MAX_CACHED_CHUNKS) cache.chunks.clear();
    if (cache.surfaces.size > MAX_CACHED_TERMS) cache.surfaces.clear();
    for (const row of rows) {
      const chunk = analyzeChunk(row.text, row.title, stem, this.bm25.titleWeight, cache.surfaces);
      cache.chunks.set(row.seq, chunk);
      out.set(row.seq, chunk);
    }
    return out;
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

/** Candidates scored with BM25 for `terms`, best first, ties by chunk id; those matching no term left out. */
function rank(
  candidates: readonly { rowId: number; chunkId: string; chunk: AnalyzedChunk }[],
  terms: readonly QueryTerm[],
  stats: Bm25Stats,
  params: Readonly<Bm25Params>,
): { rowId: number; chunkId: string; score: number; chunk: AnalyzedChunk }[] {
  const idfs = terms.map((t) => idf(stats, t));
  return candidates
    .map((c) => ({ ...c, score: scoreBm25(terms, idfs, c.chunk, stats.meanLength, params) }))
    .filter((c) => c.score > 0)
    .sort((a, b) => b.score - a.score || (a.chunkId < b.chunkId ? -1 : a.chunkId > b.chunkId ? 1 : 0));
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

/** One word as an FTS5 phrase (`1.8` → `"1 8"`, as the index tokenizes it); null when it has no letter or digit. */
function ftsPhrase(word: string): string | null {
  const parts = word.toLowerCase().match(/[\p{L}\p{N}\p{M}]+/gu);
  return parts ? `"${parts.join(' ')}"` : null;
}
