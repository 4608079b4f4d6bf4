import { DEVELOPMENT_PRINCIPAL } from '../modules/auth/principal';
import type { Principal } from '../ports/principal.port';
import { createCollectionLoader } from '../modules/collections/collection.loaders';
import { createChunkLoader, createDocumentLoader } from '../modules/documents/document.loaders';
import { PUBLIC_SCOPE } from '../modules/query/query-cache';
import type { KbqlContext, Services } from '../modules/shared/request-context';
import type { KnowledgeStore } from '../ports/knowledge-store.port';

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

/** A request's context: the caller, its scope and address, fresh loaders (see `Loaders`), the services. */
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
