import type DataLoader from 'dataloader';
import { AppError } from '../errors';
import type { Principal } from '../modules/auth/principal';
import type { ChunkRecord, CollectionRecord, DocumentRecord } from '../ports/knowledge-store.port';

/**
 * The app's services, by name. Each module adds its own entry (`declare module` … `interface Services`, next to
 * its service), so this kit imports no module; the composition root builds one object of the merged type.
 */
export interface Services {}

/**
 * Entity loaders of one request. They batch and memoise reads for that request only: a new set is built for every
 * request, so nothing one caller loaded is ever handed to another, and nothing outlives a write made between requests.
 * A record the caller may not see loads as null, like a missing one.
 */
export interface Loaders {
  collection: DataLoader<string, CollectionRecord | null>;
  document: DataLoader<string, DocumentRecord | null>;
  chunk: DataLoader<string, ChunkRecord | null>;
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
