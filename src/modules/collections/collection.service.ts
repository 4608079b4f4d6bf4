import { badInput, notFound } from '../../errors';
import type { CatalogEntry, EmbedderCatalog } from '../embeddings/embedder-catalog';
import { UUID_PATTERN } from '../../ids';
import type {
  ChunkingSettings,
  ChunkingStrategy,
  CollectionRecord,
  CollectionStats,
  DeleteCounts,
  CollectionShare,
  KnowledgeStore,
  ShareRole,
  VectorIndexState,
} from '../../ports/knowledge-store.port';
import { assertOwner, assertVisible, assertWritable, canSee, visible } from '../auth/principal';
import { TENANT_PATTERN, type Access } from '../../ports/principal.port';
import { toConnection, toWindow, type Connection, type PageArgs } from '../../graphql/pagination';

export const COLLECTION_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
export const MAX_DESCRIPTION_CHARS = 2000;
/** Bounds of chunking settings, in tokens. */
export const CHUNK_LIMITS = { minSize: 32, maxSize: 8192 } as const;

export interface CreateCollectionArgs {
  name: string;
  description?: string | null;
  chunking?: { strategy?: ChunkingStrategy | null; chunkSize?: number | null; chunkOverlap?: number | null } | null;
  /** A configured embedder's name; default: the `default` embedder. */
  embedder?: string | null;
}

export interface UpdateCollectionArgs {
  name?: string | null;
  description?: string | null;
}

export interface CollectionServiceOptions {
  store: KnowledgeStore;
  /** The configured embedders; new collections use the default one unless they name another. */
  embedders: EmbedderCatalog;
  defaults: { chunkSize: number; chunkOverlap: number };
}

/**
 * Collections: create, rename, delete, share, look up by id or name, and the embedder-compatibility guard. Every
 * method that names a collection takes the caller's {@link Access}: a collection of another tenant that is not shared
 * with the caller's tenant is NOT_FOUND (or null), exactly like one that does not exist. A shared one is seen (and,
 * with a WRITER share, written) but only its owner renames, deletes or re-shares it (FORBIDDEN otherwise).
 */
export class CollectionService {
  constructor(private readonly options: CollectionServiceOptions) {}

  async create(args: CreateCollectionArgs, access: Access): Promise<CollectionRecord> {
    const name = validateName(args.name);
    const description = validateDescription(args.description);
    const chunking = this.validateChunking(args.chunking);
    const embedder = args.embedder == null ? this.options.embedders.default : this.options.embedders.byName(args.embedder);
    return this.options.store.createCollection({ tenant: access.tenant, name, description, chunking, embedder: embedder.info });
  }

  async update(id: string, args: UpdateCollectionArgs, access: Access): Promise<CollectionRecord> {
    const patch: { name?: string; description?: string | null } = {};
    if (args.name != null) patch.name = validateName(args.name);
    if (args.description !== undefined) patch.description = validateDescription(args.description);
    assertOwner(access, assertVisible(access, await this.options.store.getCollection(id), 'Collection', id));
    return this.options.store.updateCollection(id, patch);
  }

  async delete(id: string, access: Access): Promise<DeleteCounts & { id: string }> {
    assertOwner(access, assertVisible(access, await this.options.store.getCollection(id), 'Collection', id));
    const counts = await this.options.store.deleteCollection(id);
    if (!counts) throw notFound('Collection', id);
    return { id, ...counts };
  }

  /**
   * By id or name (a name of the caller's tenant, or `<tenant>/<name>` for one shared with it); null when neither
   * matches or the caller may not see the collection.
   */
  async find(ref: { id?: string | null; name?: string | null }, access: Access): Promise<CollectionRecord | null> {
    if ((ref.id == null) === (ref.name == null)) throw badInput('Give exactly one of "id" or "name".');
    if (ref.id != null) return visible(access, await this.options.store.getCollection(ref.id));
    return this.byName(ref.name!, access);
  }

  /**
   * Resolves the `collection` argument of ingestion and query operations: a name of the caller's tenant, an id, or
   * `<tenant>/<name>` (a collection shared with the caller's tenant). Throws NOT_FOUND.
   */
  async resolve(ref: string, access: Access): Promise<CollectionRecord> {
    const store = this.options.store;
    const found = (await this.byName(ref, access)) ?? (UUID_PATTERN.test(ref) ? visible(access, await store.getCollection(ref)) : null);
    if (!found) throw notFound('Collection', ref);
    return found;
  }

  /** {@link resolve} for a write to the collection's documents: FORBIDDEN through a READER share. */
  async resolveForWrite(ref: string, access: Access): Promise<CollectionRecord> {
    const collection = await this.resolve(ref, access);
    assertWritable(access, collection);
    return collection;
  }

  /** Throws FORBIDDEN when `access` may see `collection` but not write its documents (a READER share). */
  assertWritable(collection: CollectionRecord, access: Access): void {
    assertWritable(access, collection);
  }

  /**
   * Grants another tenant `role` on a collection of the caller's tenant (replacing an earlier grant), or revokes the
   * grant (`role` null). NOT_FOUND for a collection the caller cannot see, FORBIDDEN for one it does not own,
   * BAD_USER_INPUT for a malformed tenant or the owner tenant itself.
   */
  async share(ref: string, tenant: string, role: ShareRole | null, access: Access): Promise<CollectionRecord> {
    if (!TENANT_PATTERN.test(tenant)) throw badInput(`A tenant matches ${TENANT_PATTERN.source}.`, { field: 'tenant' });
    const collection = await this.resolve(ref, access);
    assertOwner(access, collection);
    if (tenant === collection.tenant) throw badInput('A collection cannot be shared with the tenant that owns it.', { field: 'tenant' });
    return this.options.store.setCollectionShare(collection.id, tenant, role);
  }

  /** The grants of `collection` that `access` may know of: all of them for its owner's tenant, else its own. */
  sharesSeenBy(collection: CollectionRecord, access: Access | null): readonly CollectionShare[] {
    const shares = collection.shares ?? [];
    if (!access || !canSee(access, collection)) return [];
    return collection.tenant === access.tenant ? shares : shares.filter((s) => s.tenant === access.tenant);
  }

  private async byName(ref: string, access: Access): Promise<CollectionRecord | null> {
    const store = this.options.store;
    const slash = ref.indexOf('/');
    if (slash < 0) return store.getCollectionByName(ref, access.tenant);
    const tenant = ref.slice(0, slash);
    const name = ref.slice(slash + 1);
    if (!TENANT_PATTERN.test(tenant) || !COLLECTION_NAME_PATTERN.test(name)) return null;
    return visible(access, await store.getCollectionByName(name, tenant));
  }

  /**
   * The configured embedder of the collection's active vectors; CONFLICT (reason EMBEDDER_MISMATCH) when this server
   * has none of that identity (see {@link EmbedderCatalog.require}).
   */
  assertSameEmbedder(collection: CollectionRecord): CatalogEntry {
    return this.options.embedders.require(collection);
  }

  /** The caller's tenant's collections and those shared with it, oldest first. */
  async list(args: PageArgs, access: Access): Promise<Connection<CollectionRecord>> {
    const window = toWindow(args);
    return toConnection(await this.options.store.listCollections(window, { tenant: access.tenant, includeShared: true }), window);
  }

  /** Counts, and how vector searches run (null when the store does not say: Weaviate). */
  async stats(id: string): Promise<CollectionStats & { vectorIndex: VectorIndexState | null }> {
    const counts = await this.options.store.collectionStats(id);
    return { ...counts, vectorIndex: this.options.store.vectorIndexState?.(id) ?? null };
  }

  private validateChunking(input: CreateCollectionArgs['chunking']): ChunkingSettings {
    const chunkSize = input?.chunkSize ?? this.options.defaults.chunkSize;
    const chunkOverlap = input?.chunkOverlap ?? Math.min(this.options.defaults.chunkOverlap, Math.floor(chunkSize / 4));
    if (!Number.isInteger(chunkSize) || chunkSize < CHUNK_LIMITS.minSize || chunkSize > CHUNK_LIMITS.maxSize) {
      throw badInput(`chunkSize must be an integer between ${CHUNK_LIMITS.minSize} and ${CHUNK_LIMITS.maxSize} tokens.`, {
        field: 'chunkSize',
      });
    }
    if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0 || chunkOverlap > Math.floor(chunkSize / 2)) {
      throw badInput('chunkOverlap must be an integer between 0 and half of chunkSize.', { field: 'chunkOverlap' });
    }
    return { strategy: input?.strategy ?? 'AUTO', chunkSize, chunkOverlap };
  }
}

function validateName(name: string): string {
  if (!COLLECTION_NAME_PATTERN.test(name)) {
    throw badInput('A collection name starts with a letter and has 1 to 63 letters, digits, "_" or "-".', {
      field: 'name',
      pattern: COLLECTION_NAME_PATTERN.source,
    });
  }
  return name;
}

function validateDescription(description: string | null | undefined): string | null {
  if (description == null) return null;
  if (description.length > MAX_DESCRIPTION_CHARS) {
    throw badInput(`A description has at most ${MAX_DESCRIPTION_CHARS} characters.`, { field: 'description' });
  }
  return description;
}
