/**
 * kbql collections on Weaviate: one registry object each, a name claim per name (`weaviate.claims.ts`), and the
 * chunk collection; version bumps and shares are read-modify-write under an in-process lock.
 */
import { randomUUID } from 'node:crypto';
import { badInput, notFound } from '../../errors';
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
import { conflict, WeaviateNameClaims } from './weaviate.claims';
import { andOf, byIds, eq, orOf } from './weaviate.filters';
import { collectionProperties, isCanonicalId, nameClaimId, toCollection } from './weaviate.rows';
import type { WeaviateSchema } from './weaviate.schema';
import type { WeaviateCore, WeaviateSession } from './weaviate.session';

export class WeaviateCollections {
  private readonly core: WeaviateCore;
  private readonly tenant: string | undefined;
  private readonly claims: WeaviateNameClaims;

  constructor(
    private readonly session: WeaviateSession,
    private readonly schema: WeaviateSchema,
  ) {
    this.core = session.core;
    this.tenant = session.tenant;
    this.claims = new WeaviateNameClaims(session, async (tenant, name, id) => {
      const record = await this.getCollection(id);
      return record?.name === name && record.tenant === tenant;
    });
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
    };
    const claim = await this.claims.acquire(record.tenant, record.name, record.id);
    try {
      await this.checkNameIndex(record.tenant, record.name);
      await this.schema.ensureChunkCollection(record.id, true, this.schema.chunkTenant(record.tenant));
      await this.writeCollection(record);
      await this.claims.confirm(record.tenant, record.name, claim);
      await this.writeNameIndex(record.tenant, record.name, record.id);
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
      const claim = renamed ? await this.claims.acquire(current.tenant, patch.name!, id) : null;
      const next: CollectionRecord = {
        ...current,
        name: patch.name ?? current.name,
        description: patch.description !== undefined ? patch.description : current.description,
        version: current.version + 1,
        updatedAt: new Date(Math.max(Date.now(), current.updatedAt.getTime())),
      };
      if (claim) {
        try {
          await this.checkNameIndex(current.tenant, next.name);
          await this.writeCollection(next);
          await this.claims.confirm(current.tenant, next.name, claim);
        } catch (error) {
          // Back to the old name: the record first (the new claim may already be another collection's), then the claim.
          await this.writeCollection(current).catch(() => undefined);
          await this.claims.release(current.tenant, next.name, id).catch(() => undefined);
          throw error;
        }
        await this.writeNameIndex(current.tenant, next.name, id);
        // Best effort: a claim left behind is stale (the record no longer carries the name) and is taken over later.
        await this.releaseClaim(current.tenant, current.name, id).catch(() => undefined);
        return next;
      }
      await this.writeCollection(next);
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
    const [object] = await this.session.fetchByIds(await this.schema.registryCollection(), [id]);
    if (!object || object.properties['kind'] !== 'collection') return null;
    const record = toCollection(object);
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
    // The index object first (one gRPC read); the claim collection (REST) when it is missing or out of date.
    const carries = (record: CollectionRecord | null): record is CollectionRecord => record?.name === name && record.tenant === tenant;
    const indexed = await this.readNameIndex(tenant, name);
    const hinted = indexed ? await this.getCollection(indexed.collectionId) : null;
    if (carries(hinted)) return hinted;
    const claim = await this.claims.read(tenant, name);
    if (!claim || claim.collectionId === indexed?.collectionId) return null;
    const record = await this.getCollection(claim.collectionId);
    return carries(record) ? record : null;
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
    return { items: objects.map(toCollection), total: total.totalCount };
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

  /** {@link chunkTenant} of a collection by id; null when the collection no longer exists. */
  async chunkTenantOf(collectionId: string): Promise<string | undefined | null> {
    if (!this.core.options.bindTenants) return this.tenant;
    let owner = this.core.owners.get(collectionId);
    if (owner === undefined) {
      const record = await this.getCollection(collectionId);
      if (!record) return null;
      owner = record.tenant;
    }
    return this.schema.chunkTenant(owner);
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
    await this.session.call('delete collection', (c) => c.deleteCollection(name), { write: true });
    this.schema.forget(name);
    await this.session.deleteAll(await this.schema.registryCollection(), byIds([record.id]), 'delete collection record');
    await this.releaseClaim(record.tenant, record.name, record.id);
  }

  /**
   * The name's index object in the registry (id derived from tenant and name): a hint from name to collection for
   * fast lookups, written after the claim is confirmed and checked against the record on every read. An older kbql
   * wrote it as the claim itself, so it is honoured as one ({@link checkNameIndex}).
   */
  private async readNameIndex(tenant: string, name: string): Promise<{ collectionId: string } | null> {
    const [index] = await this.session.fetchByIds(await this.schema.registryCollection(), [nameClaimId(tenant, name)]);
    const collectionId = index?.properties['collectionId'];
    return index && index.properties['kind'] === 'name' && typeof collectionId === 'string' ? { collectionId } : null;
  }

  /** Best effort: without the index a lookup by name reads the claim collection instead. */
  private async writeNameIndex(tenant: string, name: string, collectionId: string): Promise<void> {
    const index = { id: nameClaimId(tenant, name), properties: { kind: 'name', collectionId, name, ownerTenant: tenant } };
    await this.session.insertAll(await this.schema.registryCollection(), [index], 'index collection name').catch(() => undefined);
  }

  /** CONFLICT when the index (an older kbql's claim) gives the name to a live collection that carries it. */
  private async checkNameIndex(tenant: string, name: string): Promise<void> {
    const indexed = await this.readNameIndex(tenant, name);
    if (!indexed) return;
    const owner = await this.getCollection(indexed.collectionId);
    if (owner && owner.name === name && owner.tenant === tenant) throw conflict(name);
  }

  /** Releases the name's claim collection, then its index object if it points at `collectionId`. */
  private async releaseClaim(tenant: string, name: string, collectionId: string): Promise<void> {
    await this.claims.release(tenant, name, collectionId);
    const indexed = await this.readNameIndex(tenant, name);
    if (indexed?.collectionId !== collectionId) return;
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
