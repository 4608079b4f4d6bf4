/**
 * Search in the Weaviate store: nearVector, bm25 and Weaviate's hybrid with relative-score fusion, each hit
 * re-checked against its document record; plus what the store reads from a query and from Weaviate's hybrid score
 * explanation.
 */
import type { FilterValue } from 'weaviate-client';
import { badInput, notFound } from '../../errors';
import { relativeScoreFusion } from '../../retrieval/fusion';
import type { DocumentRecord, SearchHit, SearchRequest } from '../../ports/knowledge-store.port';
import { checkQueryEmbedder } from '../embedding-checks';
import { checkQueryVector } from '../store-checks';
import type { WeaviateClientLike, WObject } from './weaviate.client';
import { matchesDocument } from './weaviate.filters';
import { CHUNK_RETURN, isVisible, str0, toChunk } from './weaviate.rows';
import type { WeaviateCollections } from './weaviate.collections';
import type { WeaviateReads } from './weaviate.reads';
import { VECTOR, type WeaviateSchema } from './weaviate.schema';
import type { WeaviateCore, WeaviateSession } from './weaviate.session';

/** Weaviate's `en` stopwords: removed from BM25 queries, so a query of only these has no keyword side. */
const STOPWORDS = new Set(
  'a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with'.split(
    ' ',
  ),
);

/** Query terms as Weaviate's `word` tokenization and `en` stopwords see them. */
export function queryTerms(query: string): string[] {
  return (query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).filter((t) => !STOPWORDS.has(t));
}

/**
 * Each side's raw score from a relativeScoreFusion `explainScore`, whose lines read
 * `Hybrid (Result Set vector,hybridVector) Document <id>: original score 0.87, normalized score: 0.4` (the vector
 * side's original score is 1 - cosine distance) and `Hybrid (Result Set keyword,bm25) …` (BM25).
 */
export function parseHybridExplain(explain: string): { vector: number | null; keyword: number | null } {
  const out: { vector: number | null; keyword: number | null } = { vector: null, keyword: null };
  const pattern = /Result Set (vector|keyword)[^)]*\) Document [^:]*: original score ([-+0-9.eE]+|NaN)/g;
  for (let m = pattern.exec(explain); m; m = pattern.exec(explain)) {
    const value = Number(m[2]);
    if (Number.isFinite(value)) out[m[1] as 'vector' | 'keyword'] = value;
  }
  return out;
}

export class WeaviateSearch {
  private readonly core: WeaviateCore;

  constructor(
    private readonly session: WeaviateSession,
    private readonly schema: WeaviateSchema,
    private readonly collections: WeaviateCollections,
    private readonly reads: WeaviateReads,
  ) {
    this.core = session.core;
  }

  /**
   * VECTOR → nearVector (score = cosine similarity = 1 - cosine distance), KEYWORD → bm25 on `text`, HYBRID →
   * Weaviate's hybrid with `fusionType: 'RelativeScore'` (the port's fusion; each side's raw score is read from
   * `explainScore`). Weaviate orders equal scores its own way and the port breaks ties by chunk id, so the store
   * asks for the first `offset + limit + 1` hits and widens the window until the page boundary is not inside a tie
   * (and until enough visible hits are in it), then sorts and slices. At alpha 0 or 1 Weaviate runs one side only,
   * so hits only the other side found are absent instead of scoring 0.
   */
  async search(request: SearchRequest): Promise<SearchHit[]> {
    const { offset, limit } = this.session.checkPage(request);
    const collection = await this.collections.getCollection(request.collectionId);
    if (!collection) throw notFound('Collection', request.collectionId);
    const mode = request.mode;
    if (mode !== 'VECTOR' && mode !== 'KEYWORD' && mode !== 'HYBRID') throw badInput(`Unknown search mode "${String(mode)}".`);
    let vector: number[] | null = null;
    if (mode !== 'KEYWORD') checkQueryEmbedder(request, collection.embedder);
    if (mode !== 'KEYWORD') vector = Array.from(checkQueryVector(request, collection.embedder.dimensions));
    if (mode === 'HYBRID' && (!Number.isFinite(request.alpha) || request.alpha < 0 || request.alpha > 1)) {
      throw badInput('alpha must be a number between 0 and 1.', {
        alpha: Number.isFinite(request.alpha) ? request.alpha : String(request.alpha),
      });
    }
    if (limit === 0) return [];
    const need = offset + limit;
    const max = this.core.options.maxQueryResults;

    const shard = this.schema.chunkTenant(collection.tenant);
    const chunkCollection = await this.schema.ensureChunkCollection(collection.id, false, shard);
    const where = request.filter ? await this.schema.translate(chunkCollection, request.filter) : ({ kind: 'all' } as const);
    if (where.kind === 'none') return [];
    const filters = where.kind === 'filter' ? where.filter : undefined;
    const hasTerms = queryTerms(request.text).length > 0;
    if (!hasTerms && (mode === 'KEYWORD' || (mode === 'HYBRID' && request.alpha === 0))) return [];

    const docs = new Map<string, DocumentRecord>();
    for (let k = Math.min(need + 1, max); ; k = Math.min(k * 2, max)) {
      const raw = await this.rank(chunkCollection, shard, request, vector, hasTerms, filters, k);
      const missing = raw.map((r) => str0(r.object.properties['documentId'])).filter((d) => !docs.has(d));
      for (const [id, doc] of await this.reads.documentRecords(missing)) docs.set(id, doc);
      const hits: SearchHit[] = [];
      for (const r of raw) {
        const chunk = toChunk(r.object, collection.id);
        const doc = docs.get(chunk.documentId);
        if (!isVisible(chunk, str0(r.object.properties['contentHash']), doc)) continue;
        if (request.filter && !matchesDocument(request.filter, doc!)) continue;
        hits.push({ chunk, document: doc!, score: r.score, vectorScore: r.vectorScore, keywordScore: r.keywordScore });
      }
      hits.sort((a, b) => (a.score !== b.score ? b.score - a.score : a.chunk.id < b.chunk.id ? -1 : a.chunk.id > b.chunk.id ? 1 : 0));
      const boundary = hits[need - 1];
      const exhausted = raw.length < k || k >= max;
      if (exhausted || (boundary && raw[raw.length - 1]!.score < boundary.score)) return hits.slice(offset, need);
    }
  }

  /** The first `k` candidates of one query, best first, with the port's scores. */
  private async rank(
    chunkCollection: string,
    shard: string | undefined,
    request: SearchRequest,
    vector: number[] | null,
    hasTerms: boolean,
    filters: FilterValue | undefined,
    k: number,
  ): Promise<{ object: WObject; score: number; vectorScore: number | null; keywordScore: number | null }[]> {
    const base = { filters, limit: k, offset: 0, returnProperties: CHUNK_RETURN };
    const col = (c: WeaviateClientLike) => c.collection(chunkCollection, shard);
    if (request.mode === 'KEYWORD') {
      const objects = await this.session.call('bm25 search', (c) =>
        col(c).bm25(request.text, { ...base, queryProperties: ['text'], returnMetadata: ['score'] }),
      );
      return objects.map((object) => {
        const score = object.metadata?.score ?? 0;
        return { object, score, vectorScore: null, keywordScore: score };
      });
    }
    if (request.mode === 'VECTOR' || !hasTerms) {
      // HYBRID without a searchable term has no keyword side: the vector side alone over Weaviate's hybrid
      // candidate count, fused like Weaviate would.
      const candidates = request.mode === 'VECTOR' ? k : Math.max(k, this.core.options.hybridCandidates);
      const objects = await this.session.call('vector search', (c) =>
        col(c).nearVector(vector!, { ...base, limit: candidates, targetVector: VECTOR, returnMetadata: ['distance'] }),
      );
      const scored = objects.map((object) => ({ object, similarity: 1 - (object.metadata?.distance ?? 1) }));
      if (request.mode === 'VECTOR') {
        return scored.map(({ object, similarity }) => ({ object, score: similarity, vectorScore: similarity, keywordScore: null }));
      }
      const byId = new Map(scored.map((s) => [s.object.uuid, s.object]));
      const fused = relativeScoreFusion(
        scored.map((s) => ({ id: s.object.uuid, score: s.similarity })),
        [],
        request.alpha,
      );
      return fused.slice(0, k).map((f) => ({ object: byId.get(f.id)!, score: f.score, vectorScore: f.vectorScore, keywordScore: null }));
    }
    const objects = await this.session.call('hybrid search', (c) =>
      col(c).hybrid(request.text, {
        ...base,
        alpha: request.alpha,
        fusionType: 'RelativeScore',
        vector: vector!,
        targetVector: VECTOR,
        queryProperties: ['text'],
        returnMetadata: ['score', 'explainScore'],
      }),
    );
    return objects.map((object) => {
      const sides = parseHybridExplain(object.metadata?.explainScore ?? '');
      return { object, score: object.metadata?.score ?? 0, vectorScore: sides.vector, keywordScore: sides.keyword };
    });
  }
}
