import type { ResponseCacheRoot } from '../../graphql/plugins/response-cache.plugin';
import { embedderFingerprint } from '../../ports/embedder.port';
import type { CollectionService } from '../collections/collection.service';
import { principalOf, type KbqlContext } from '../shared/request-context';

/**
 * What a cached `search` or `ask` response may select: the fields whose values the result cache keeps (a function of
 * the collection's version, the arguments and the caller's scope). Not here, so such operations always execute:
 * timings (`tookMs`, `retrievalMs`), `usage` (a model call's, null when served from the result cache), `collection`
 * (its stats and re-embedding progress move without a new version) and fields that load more (`Chunk.document`,
 * `Document.chunks`, `Document.collection`).
 */
export const QUERY_RESPONSE_FIELDS: ReadonlySet<string> = new Set([
  'SearchPayload.hits',
  'SearchPayload.mode',
  'SearchPayload.alpha',
  ...['SearchHit', 'Source'].flatMap((type) => ['chunk', 'document', 'score', 'vectorScore', 'keywordScore'].map((f) => `${type}.${f}`)),
  'Source.n',
  'Source.highlight',
  'Highlight.text',
  'Highlight.startOffset',
  'Highlight.endOffset',
  ...['id', 'documentId', 'index', 'text', 'startOffset', 'endOffset'].map((f) => `Chunk.${f}`),
  ...['id', 'collectionId', 'externalId', 'title', 'source', 'contentType', 'contentHash', 'charCount', 'chunkCount', 'metadata']
    .concat(['createdAt', 'updatedAt'])
    .map((f) => `Document.${f}`),
  ...['answer', 'abstained', 'abstentionReason', 'citations', 'sources', 'synthesizer', 'unsupportedMarkers'].map((f) => `Answer.${f}`),
  ...['marker', 'sentence', 'supported', 'source'].map((f) => `Citation.${f}`),
]);

/**
 * `search` and `ask` depend on their collection as the caller sees it now: resolved by name for the caller on every
 * request (a deleted or unshared collection serves nothing), its version (every write bumps it) and its active
 * embedder — what keys the result cache too.
 */
export function queryResponseRoots(collections: CollectionService): Record<string, ResponseCacheRoot<KbqlContext>> {
  const root: ResponseCacheRoot<KbqlContext> = {
    async dependency(args, context) {
      const collection = await collections.resolve(String(args['collection']), principalOf(context));
      collections.assertSameEmbedder(collection);
      return `${collection.id}:${collection.version}:${embedderFingerprint(collection.embedder)}`;
    },
  };
  return { search: root, ask: root };
}
