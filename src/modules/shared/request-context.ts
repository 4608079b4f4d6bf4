/** The GraphQL context the resolvers of every module receive, and the two ways they read it. */
import { AppError } from '../../errors';
import type { Principal } from '../../ports/principal.port';
import type { CollectionService } from '../collections/collection.service';
import type { createCollectionLoader } from '../collections/collection.loaders';
import type { DocumentService } from '../documents/document.service';
import type { EmbedderCatalog } from '../embeddings/embedder-catalog';
import type { ReembedService } from '../embeddings/reembed.service';
import type { createChunkLoader, createDocumentLoader } from '../documents/document.loaders';
import type { IngestionService } from '../ingestion/ingestion.service';
import type { IngestionJobService } from '../jobs/ingestion-job.service';
import type { UploadService } from '../jobs/upload.service';
import type { QueryService } from '../query/query.service';

export interface Services {
  collections: CollectionService;
  documents: DocumentService;
  ingestion: IngestionService;
  query: QueryService;
  /** Asynchronous ingestion jobs (startIngestion, ingestionProgress, …). */
  jobs: IngestionJobService;
  /** Files from POST /v1/uploads waiting for a job. */
  uploads: UploadService;
  /** The configured embedders by name. */
  embedders: EmbedderCatalog;
  /** Re-embedding collections (reembedCollection, rollbackEmbedding). */
  reembed: ReembedService;
}

/**
 * Entity loaders of one request. They batch and memoise reads for that request only: a new set is built for every
 * request, so nothing one caller loaded is ever handed to another, and nothing outlives a write made between requests.
 */
export interface Loaders {
  collection: ReturnType<typeof createCollectionLoader>;
  document: ReturnType<typeof createDocumentLoader>;
  chunk: ReturnType<typeof createChunkLoader>;
}

/** What every resolver receives; built fresh for each request. */
export interface KbqlContext {
  requestId: string;
  /**
   * Who is calling; null when nobody was identified (KBQL_AUTH_MODE=jwt and no token): then every guarded field
   * fails with UNAUTHENTICATED (see the `@auth` directive) and the loaders see nothing.
   */
  principal: Principal | null;
  /**
   * The caller's access scope: callers with the same scope may see the same documents, so they may share cached
   * results; callers with different scopes never do (it is part of every result-cache key). The HTTP server sets it
   * from the principal (`tenant:<tenant>`, see `accessScope`).
   */
  scope: string;
  /** The client address (X-Forwarded-For only from trusted proxies); the rate-limit key of anonymous callers. */
  clientIp: string;
  loaders: Loaders;
  /**
   * The app's services, for resolvers that type-graphql runs without their resolver instance: a subscription's
   * `subscribe` function is static. Read it with {@link servicesOf}. Absent in contexts built without an app.
   */
  services?: Services;
}

/** The caller of a guarded resolver (the `@auth` check ran first, so there is one; UNAUTHENTICATED otherwise). */
export function principalOf(ctx: KbqlContext): Principal {
  if (!ctx.principal) throw new AppError('UNAUTHENTICATED');
  return ctx.principal;
}

/** The app's services from a context; a context built without them is a wiring bug (INTERNAL_SERVER_ERROR). */
export function servicesOf(ctx: KbqlContext): Services {
  if (!ctx.services) throw new Error('This context was built without the app services (pass `services` to createContext).');
  return ctx.services;
}
