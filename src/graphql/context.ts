import { AppError } from '../errors';
import { DEVELOPMENT_PRINCIPAL } from '../modules/auth/principal';
import type { Principal } from '../ports/principal.port';
import type { CollectionService } from '../modules/collections/collection.service';
import { createCollectionLoader } from '../modules/collections/collection.loaders';
import type { DocumentService } from '../modules/documents/document.service';
import { createChunkLoader, createDocumentLoader } from '../modules/documents/document.loaders';
import type { IngestionService } from '../modules/ingestion/ingestion.service';
import type { IngestionJobService } from '../modules/jobs/ingestion-job.service';
import type { UploadService } from '../modules/jobs/upload.service';
import { PUBLIC_SCOPE } from '../modules/query/query-cache';
import type { QueryService } from '../modules/query/query.service';
import type { KnowledgeStore } from '../ports/knowledge-store.port';

export interface Services {
  collections: CollectionService;
  documents: DocumentService;
  ingestion: IngestionService;
  query: QueryService;
  /** Asynchronous ingestion jobs (startIngestion, ingestionProgress, …). */
  jobs: IngestionJobService;
  /** Files from POST /v1/uploads waiting for a job. */
  uploads: UploadService;
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

export interface ContextOptions {
  /**
   * The caller. In-process callers (tests, scripts) that give none act as the KBQL_AUTH_MODE=none caller, an ADMIN
   * of the default tenant; the HTTP server always passes the authenticated principal (or null).
   * @default DEVELOPMENT_PRINCIPAL
   */
  principal?: Principal | null;
  /** @default 'public' */
  scope?: string;
  /** @default '127.0.0.1' */
  clientIp?: string;
  /** The app's services (see `KbqlContext.services`). */
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

export function createContext(store: KnowledgeStore, requestId: string, options: ContextOptions = {}): KbqlContext {
  const principal = options.principal === undefined ? DEVELOPMENT_PRINCIPAL : options.principal;
  const collection = createCollectionLoader(store, principal);
  return {
    requestId,
    principal,
    scope: options.scope ?? PUBLIC_SCOPE,
    clientIp: options.clientIp ?? '127.0.0.1',
    loaders: { collection, document: createDocumentLoader(store, collection), chunk: createChunkLoader(store, collection) },
    services: options.services,
  };
}
