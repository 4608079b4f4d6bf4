/**
 * kbql collections on Weaviate: one registry object each, a name claim per name, and the chunk collection; version
 * bumps and shares are read-modify-write under an in-process lock.
 */
import { randomUUID } from 'node:crypto';
import { AppError, badInput, notFound } from '../../errors';
import type {
  CollectionListFilter,
  CollectionPatch,
  CollectionRecord,
  CollectionStats,
  DeleteCounts,
  NewCollection,
  Page,
  PageRequest,
  ShareRole,
} from '../../ports/knowledge-store.port';
import { DEFAULT_TENANT } from '../../ports/knowledge-store.port';
import { checkShareTenant, withShare } from '../store-checks';
import type { WriteObject } from './weaviate.client';
import { andOf, byIds, eq, orOf } from './weaviate.filters';
import { isAlreadyExists } from './weaviate.resilience';
import { applyEmbeddingState, dropEmbeddingState, embeddingStateId } from './weaviate.embedding-state';
import { collectionProperties, isCanonicalId, nameClaimId, str0, toCollection } from './weaviate.rows';
import type { WeaviateSchema } from './weaviate.schema';
import type { WeaviateCore, WeaviateSession } from './weaviate.session';

export class WeaviateCollections {
  private readonly core: WeaviateCore;
  private readonly tenant: string | undefined;

  constructor(
    private readonly session: WeaviateSession,
    private readonly schema: WeaviateSchema,
  ) {
    this.core = session.core;
    this.tenant = session.tenant;
  }

  async createCollection(input: NewCollection): Promise<CollectionRecord> {
    if (!Number.isSafeInteger(input.embedder.dimensions) || input.embedder.dimensions <= 0) {
      throw badInput('Embedder dimensions must be a positive integer.', { dimensions: input.embedder.dimensions });
    }
    await this.schema.ensureBase();
    const now = Date.now();
    const record: CollectionRecord = {
      id: randomUUID(),
      tenant: input.tenant ?? DEFAULT_TENANT,
      name: input.name,
      description: input.description,
      chunking: { ...input.chunking },
      embedder: { ...input.embedder },
      version: 1,
      createdAt: new Date(now),
      updatedAt: new Date(now),
      shares: [],
      secondary: null,
    };
    await this.claimName(record.tenant, record.name, record.id);
    try {
      await this.schema.ensureChunkCollection(record.id, true, this.schema.chunkTenant(record.tenant));
      await this.writeCollection(record);
      const claim = await this.readClaim(record.tenant, record.name);
      if (claim?.collectionId !== record.id) throw conflict(record.name);
      return record;
    } catch (error) {
      await this.dropCollectionObjects(record).catch(() => undefined);
      throw error;
    }
  }

  async updateCollection(id: string, patch: CollectionPatch): Promise<CollectionRecord> {
    return this.session.withLock(id, async () => {
      const current = await this.getCollection(id);
      if (!current) throw notFound('Collection', id);
      const renamed = patch.name !== undefined && patch.name !== current.name;
      if (renamed) await this.claimName(current.tenant, patch.name!, id);
      const next: CollectionRecord = {
        ...current,
        name: patch.name ?? current.name,
        description: patch.description !== undefined ? patch.description : current.description,
        version: current.version + 1,
        updatedAt: new Date(Math.max(Date.now(), current.updatedAt.getTime())),
      };
      await this.writeCollection(next);
      if (renamed) await this.releaseClaim(current.tenant, current.name, id);
      return next;
    });
  }

  async deleteCollection(id: string): Promise<DeleteCounts | null> {
    const record = await this.getCollection(id);
    if (!record) return null;
    const docs = await this.schema.documentsCollection();
    const byCollection = eq('collectionId', id);
    const counts = await this.session.call('count documents', (c) =>
      c.collection(docs, this.tenant).aggregate({ filters: byCollection, sumOf: 'chunkCount' }),
    );
    // Documents first: once their records are gone their chunks are invisible, so a crash at any later step
    // leaves a collection with fewer documents, never documents without a collection.
    await this.session.deleteAll(docs, byCollection, 'delete documents');
    await this.dropCollectionObjects(record);
    return { documents: counts.totalCount, chunks: counts.sum ?? 0 };
  }

  async getCollection(id: string): Promise<CollectionRecord | null> {
    if (!isCanonicalId(id)) return null;
    // The record and its embedding state in one request (see weaviate.embeddings.ts).
    const objects = await this.session.fetchByIds(await this.schema.registryCollection(), [id, embeddingStateId(id)]);
    const object = objects.find((o) => o.uuid === id);
    if (!object || object.properties['kind'] !== 'collection') return null;
    const record = applyEmbeddingState(
      this.core,
      toCollection(object),
      objects.find((o) => o.uuid !== id),
    );
    this.core.owners.set(record.id, record.tenant);
    return record;
  }

  async setCollectionShare(id: string, tenant: string, role: ShareRole | null): Promise<CollectionRecord> {
    return this.session.withLock(id, async () => {
      const current = await this.getCollection(id);
      if (!current) throw notFound('Collection', id);
      checkShareTenant(current.tenant, tenant);
      const shares = withShare(current.shares ?? [], tenant, role);
      const next: CollectionRecord = {
        ...current,
        shares,
        version: current.version + 1,
        updatedAt: new Date(Math.max(Date.now(), current.updatedAt.getTime())),
      };
      await this.writeCollection(next);
      return next;
    });
  }

  async getCollectionByName(name: string, tenant: string = DEFAULT_TENANT): Promise<CollectionRecord | null> {
    const claim = await this.readClaim(tenant, name);
    if (!claim) return null;
    const record = await this.getCollection(claim.collectionId);
    return record && record.name === name && record.tenant === tenant ? record : null;
  }

  async listCollections(page: PageRequest, filter: CollectionListFilter = {}): Promise<Page<CollectionRecord>> {
    const { offset, limit } = this.session.checkPage(page);
    const registry = await this.schema.registryCollection();
    const filters =
      filter.tenant === undefined
        ? eq('kind', 'collection')
        : andOf(
            eq('kind', 'collection'),
            filter.includeShared
              ? orOf(eq('ownerTenant', filter.tenant), {
                  operator: 'ContainsAny',
                  target: { property: 'sharedTenants' },
                  value: [filter.tenant],
                })
              : eq('ownerTenant', filter.tenant),
          );
    const [total, objects] = await Promise.all([
      this.session.call('count collections', (c) => c.collection(registry, this.tenant).aggregate({ filters })),
      limit === 0
        ? Promise.resolve([])
        : this.session.call('list collections', (c) =>
            c
              .collection(registry, this.tenant)
              .fetchObjects({ filters, limit, offset, sort: [{ property: 'createdKey', ascending: true }] }),
          ),
    ]);
    const states =
      objects.length === 0
        ? []
        : await this.session.fetchByIds(
            registry,
            objects.map((o) => embeddingStateId(o.uuid)),
          );
    const stateOf = new Map(states.map((o) => [str0(o.properties['collectionId']), o]));
    return { items: objects.map((o) => applyEmbeddingState(this.core, toCollection(o), stateOf.get(o.uuid))), total: total.totalCount };
  }

  async collectionStats(id: string): Promise<CollectionStats> {
    if (!(await this.getCollection(id))) throw notFound('Collection', id);
    const docs = await this.schema.documentsCollection();
    const counts = await this.session.call('count documents', (c) =>
      c.collection(docs, this.tenant).aggregate({ filters: eq('collectionId', id), sumOf: 'chunkCount' }),
    );
    return { documents: counts.totalCount, chunks: counts.sum ?? 0 };
  }

  async allCollections(): Promise<CollectionRecord[]> {
    const out: CollectionRecord[] = [];
    const page = 1000;
    for (let offset = 0; offset < this.core.options.maxQueryResults; offset += page) {
      const { items } = await this.listCollections({ offset, limit: Math.min(page, this.core.options.maxQueryResults - offset) });
      out.push(...items);
      if (items.length < page) break;
    }
    return out;
  }

  /**
   * {@link chunkTenant} of a collection by id; null when the collection no longer exists. Reads the collection each
   * time: that also refreshes which chunk collection is its active one (a re-embedding may have switched it).
   */
  async chunkTenantOf(collectionId: string): Promise<string | undefined | null> {
    const record = await this.getCollection(collectionId);
    if (!record) return null;
    return this.schema.chunkTenant(record.tenant);
  }

  private async writeCollection(record: CollectionRecord): Promise<void> {
    await this.session.insertAll(
      await this.schema.registryCollection(),
      [{ id: record.id, properties: collectionProperties(record, this.schema.chunkCollectionName(record.id)) }],
      'store collection',
    );
  }

  /** Removes a collection's chunk collection, registry record and name claim (documents are the caller's). */
  private async dropCollectionObjects(record: CollectionRecord): Promise<void> {
    const name = this.schema.chunkCollectionName(record.id);
    const where = { registry: await this.schema.registryCollection(), base: this.schema.baseChunkCollectionName(record.id), keep: name };
    await dropEmbeddingState(this.session, where, record.id, (n) => this.schema.forget(n));
    await this.session.call('delete collection', (c) => c.deleteCollection(name), { write: true });
    this.schema.forget(name);
    await this.session.deleteAll(await this.schema.registryCollection(), byIds([record.id]), 'delete collection record');
    await this.releaseClaim(record.tenant, record.name, record.id);
  }

  private async readClaim(tenant: string, name: string): Promise<{ collectionId: string } | null> {
    const [claim] = await this.session.fetchByIds(await this.schema.registryCollection(), [nameClaimId(tenant, name)]);
    const collectionId = claim?.properties['collectionId'];
    return claim && claim.properties['kind'] === 'name' && typeof collectionId === 'string' ? { collectionId } : null;
  }

  /** Reserves a collection name for `collectionId`; CONFLICT when a live collection holds it. */
  private async claimName(tenant: string, name: string, collectionId: string): Promise<void> {
    const registry = await this.schema.registryCollection();
    const claim: WriteObject = { id: nameClaimId(tenant, name), properties: { kind: 'name', collectionId, name, ownerTenant: tenant } };
    try {
      await this.session.call('claim collection name', (c) => c.collection(registry, this.tenant).insert(claim), { write: true });
      return;
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
    const holder = await this.readClaim(tenant, name);
    if (holder?.collectionId === collectionId) return; // our own earlier attempt
    const owner = holder ? await this.getCollection(holder.collectionId) : null;
    if (owner && owner.name === name && owner.tenant === tenant) throw conflict(name);
    // A stale claim (its collection was deleted or renamed and the release did not happen): take it over.
    await this.session.insertAll(registry, [claim], 'claim collection name');
  }

  private async releaseClaim(tenant: string, name: string, collectionId: string): Promise<void> {
    const holder = await this.readClaim(tenant, name);
    if (holder?.collectionId !== collectionId) return;
    await this.session.deleteAll(await this.schema.registryCollection(), byIds([nameClaimId(tenant, name)]), 'release collection name');
  }

  async bumpVersions(collectionIds: string[]): Promise<void> {
    for (const id of collectionIds) {
      await this.session.withLock(id, async () => {
        const record = await this.getCollection(id);
        if (!record) return;
        await this.writeCollection({
          ...record,
          version: record.version + 1,
          updatedAt: new Date(Math.max(Date.now(), record.updatedAt.getTime())),
        });
      });
    }
  }
}

const conflict = (name: string): AppError =>
  new AppError('CONFLICT', `A collection named "${name}" already exists.`, { field: 'name', name });
