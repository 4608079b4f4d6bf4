/**
 * Checks of the re-embedding inputs every store adapter makes, so that the embedded and the Weaviate store refuse
 * the same requests with the same codes: a query or a write whose vectors are not of the collection's active
 * embedder (a switch happened meanwhile), and the alignment of a write's two sets of vectors.
 */
import { AppError, badInput } from '../errors';
import { embedderFingerprint, sameEmbedder } from '../ports/embedder.port';
import type { DocumentWrite, EmbedderInfo, SearchRequest, SecondaryEmbedding } from '../ports/knowledge-store.port';
import { checkVector } from './store-checks';

/** CONFLICT, reason EMBEDDER_CHANGED: the caller re-reads the collection and embeds again. */
export function embedderChanged(what: string, given: EmbedderInfo, active: EmbedderInfo): AppError {
  return new AppError(
    'CONFLICT',
    `The ${what} was embedded with ${embedderFingerprint(given)} but the collection now uses ${embedderFingerprint(active)}.`,
    {
      reason: 'EMBEDDER_CHANGED',
      given: embedderFingerprint(given),
      active: embedderFingerprint(active),
    },
  );
}

/** A search whose query vector names its embedder must be of the active one (see {@link SearchRequest.embedder}). */
export function checkQueryEmbedder(request: SearchRequest, active: EmbedderInfo): void {
  if (request.mode === 'KEYWORD' || !request.embedder) return;
  if (!sameEmbedder(request.embedder, active)) throw embedderChanged('query', request.embedder, active);
}

/** A document write with the active embedder's vectors in `chunks` and the secondary ones (null: none to store). */
export interface AlignedWrite {
  doc: DocumentWrite;
  secondary: Float32Array[] | null;
}

/**
 * Puts a write's vectors where they belong (see {@link DocumentWrite.embedder} and {@link DocumentWrite.secondary}):
 * the active embedder's into `chunks`, the collection's secondary embedder's aside. CONFLICT EMBEDDER_CHANGED when
 * the write has no vectors of the active embedder; BAD_USER_INPUT for a secondary vector of the wrong length.
 */
export function alignWriteVectors(doc: DocumentWrite, active: EmbedderInfo, secondary: SecondaryEmbedding | null): AlignedWrite {
  const main = doc.embedder ?? active;
  const extra = doc.secondary;
  if (extra && extra.vectors.length !== doc.chunks.length) {
    throw badInput(`Document "${doc.externalId}": ${extra.vectors.length} secondary vectors for ${doc.chunks.length} chunks.`);
  }
  let aligned = doc;
  let other: { embedder: EmbedderInfo; vectors: Float32Array[] } | null = extra
    ? { embedder: extra.embedder, vectors: extra.vectors }
    : null;
  if (!sameEmbedder(main, active)) {
    // A switch happened while the document was embedded: its second set is now the active one.
    if (!extra || !sameEmbedder(extra.embedder, active)) throw embedderChanged(`document "${doc.externalId}"`, main, active);
    aligned = { ...doc, chunks: doc.chunks.map((c, i) => ({ ...c, vector: extra.vectors[i]! })) };
    other = { embedder: main, vectors: doc.chunks.map((c) => c.vector) };
  }
  if (!secondary || !other || !sameEmbedder(other.embedder, secondary.embedder)) return { doc: aligned, secondary: null };
  other.vectors.forEach((v, i) =>
    checkVector(v, secondary.embedder.dimensions, `secondary vector of chunk ${i} of document "${doc.externalId}"`),
  );
  return { doc: aligned, secondary: other.vectors };
}
