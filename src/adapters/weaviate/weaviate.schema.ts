/**
 * The Weaviate collections kbql creates (their properties, vector and BM25 settings), created and extended on first
 * use, their tenants, and the cached knowledge of their properties that filters are translated against.
 */
import { AppError } from '../../errors';
import { activeChunkClass } from './weaviate.embedding-state';
import { UUID_PATTERN } from '../../ids';
import type { Filter } from '../../ports/knowledge-store.port';
import type { CollectionSpec, PropertySpec } from './weaviate.client';
import {
  BUILTIN_PROPERTIES,
  FLAT_DATA_TYPES,
  flatTypeOf,
  referencedProperties,
  translateFilter,
  type TranslatedFilter,
} from './weaviate.filters';
import { weaviateTenantFor } from './weaviate.options';
import { isAlreadyExists } from './weaviate.resilience';
import type { WeaviateCore, WeaviateSession } from './weaviate.session';

/** Re-read a collection's schema at most this often when a filter names a property not seen yet. */
const SCHEMA_REFRESH_MS = 1_000;

export const VECTOR = 'default';
export const BM25 = { k1: 1.2, b: 0.75 } as const;

const text = (name: string, index: 'word' | 'field' | 'none'): PropertySpec => ({
  name,
  dataType: 'text',
  tokenization: index === 'word' ? 'word' : 'field',
  indexFilterable: index === 'field',
  indexSearchable: index === 'word',
});
const int = (name: string, filterable: boolean): PropertySpec => ({
  name,
  dataType: 'int',
  indexFilterable: filterable,
  indexSearchable: false,
});
const num = (name: string): PropertySpec => ({ name, dataType: 'number', indexFilterable: false, indexSearchable: false });
const builtinSpecs = Object.values(BUILTIN_PROPERTIES).map((name) => text(name, 'field'));

export const REGISTRY_PROPERTIES: PropertySpec[] = [
  text('kind', 'field'),
  text('collectionId', 'field'),
  text('ownerTenant', 'field'),
  text('name', 'none'),
  text('descriptionJson', 'none'),
  text('chunkingJson', 'none'),
  text('embedderName', 'none'),
  int('embedderDimensions', false),
  int('version', false),
  num('createdAtMs'),
  num('updatedAtMs'),
  text('createdKey', 'field'),
  text('className', 'none'),
  // Sharing: the grants as JSON, and the grantee tenants alone (filterable) for "collections shared with me".
  text('sharesJson', 'none'),
  // Re-embedding: a collection's embedding state object (kind `embedding`, see weaviate.embeddings.ts).
  text('embeddingJson', 'none'),
  { name: 'sharedTenants', dataType: 'text[]', tokenization: 'field', indexFilterable: true, indexSearchable: false },
];

export const DOCUMENT_PROPERTIES: PropertySpec[] = [
  text('collectionId', 'field'),
  text('externalId', 'none'),
  text('title', 'none'),
  text('source', 'none'),
  text('contentType', 'none'),
  text('contentHash', 'none'),
  int('charCount', false),
  int('chunkCount', true),
  num('createdAtMs'),
  num('updatedAtMs'),
  text('createdKey', 'field'),
  text('metadataJson', 'none'),
  ...builtinSpecs,
];

export const CHUNK_PROPERTIES: PropertySpec[] = [
  text('text', 'word'),
  text('documentId', 'field'),
  int('chunkIndex', true),
  int('startOffset', false),
  int('endOffset', false),
  text('contentHash', 'field'),
  text('externalId', 'none'),
  text('title', 'none'),
  text('source', 'none'),
  text('metadataJson', 'none'),
  ...builtinSpecs,
];

export class WeaviateSchema {
  private readonly core: WeaviateCore;
  private readonly tenant: string | undefined;

  constructor(private readonly session: WeaviateSession) {
    this.core = session.core;
    this.tenant = session.tenant;
  }

  private get prefix(): string {
    return this.core.options.collectionPrefix;
  }

  /**
   * The Weaviate collection of a kbql collection's active chunks: the base one, or the one its embedding state names
   * after a re-embedding (as last read with the collection, see `weaviate.embeddings.ts`).
   */
  chunkCollectionName(collectionId: string): string {
    return activeChunkClass(this.core, collectionId) ?? this.baseChunkCollectionName(collectionId);
  }

  /** The chunk collection a kbql collection is created with. */
  baseChunkCollectionName(collectionId: string): string {
    const encoded = UUID_PATTERN.test(collectionId)
      ? collectionId.replace(/-/g, '').toLowerCase()
      : Buffer.from(collectionId, 'utf8').toString('hex');
    return `${this.prefix}Chunks_${encoded}`;
  }

  ensureBase(): Promise<void> {
    if (!this.core.base) {
      this.core.base = (async () => {
        await this.ensureCollection(`${this.prefix}Registry`, 'kbql collections and name claims', REGISTRY_PROPERTIES, 'none');
        await this.ensureCollection(`${this.prefix}Documents`, 'kbql document records', DOCUMENT_PROPERTIES, 'none');
      })();
      this.core.base.catch(() => {
        this.core.base = null;
      });
    }
    return this.core.base;
  }

  async registryCollection(): Promise<string> {
    await this.ensureBase();
    return this.ready(`${this.prefix}Registry`);
  }

  async documentsCollection(): Promise<string> {
    await this.ensureBase();
    return this.ready(`${this.prefix}Documents`);
  }

  /** The chunk collection of a kbql collection, created (writes) or only looked up (reads) on first use. */
  async ensureChunkCollection(
    collectionId: string,
    create = true,
    shard: string | undefined = this.tenant,
    name = this.chunkCollectionName(collectionId),
  ): Promise<string> {
    if (!this.core.schema.has(name)) {
      if (create) await this.ensureCollection(name, `kbql chunks of collection ${collectionId}`, CHUNK_PROPERTIES, 'hnsw-cosine');
      else await this.readSchema(name);
    }
    return this.ready(name, shard);
  }

  /** The Weaviate tenant holding the chunks of a collection owned by kbql tenant `owner`. */
  chunkTenant(owner: string): string | undefined {
    return this.core.options.bindTenants ? weaviateTenantFor(owner) : this.tenant;
  }

  /** Creates the Weaviate collection unless it exists, adds missing base properties, caches its schema. */
  private async ensureCollection(
    name: string,
    description: string,
    properties: PropertySpec[],
    vectors: CollectionSpec['vectors'],
  ): Promise<void> {
    const exists = await this.session.call('check collection', (c) => c.collectionExists(name));
    if (!exists) {
      const spec: CollectionSpec = {
        name,
        description,
        properties,
        vectors,
        multiTenant: this.core.options.multiTenant,
        invertedIndex: { bm25K1: BM25.k1, bm25B: BM25.b, indexNullState: true },
      };
      try {
        await this.session.call('create collection', (c) => c.createCollection(spec), { write: true });
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
    }
    const known = await this.readSchema(name);
    for (const property of properties) if (!known.has(property.name)) await this.addProperty(name, property);
  }

  private async readSchema(name: string): Promise<Set<string>> {
    const properties = await this.session.call('read schema', (c) => c.listProperties(name));
    const set = new Set(properties.map((p) => p.name));
    this.core.schema.set(name, { properties: set, readAt: Date.now() });
    return set;
  }

  private async addProperty(name: string, property: PropertySpec): Promise<void> {
    try {
      await this.session.call('add property', (c) => c.addProperty(name, property), { write: true });
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
    this.core.schema.get(name)?.properties.add(property.name);
  }

  /** Forgets what is known of a Weaviate collection that was deleted. */
  forget(name: string): void {
    this.core.schema.delete(name);
    for (const key of [...this.core.tenants]) if (key.startsWith(`${name}\u0000`)) this.core.tenants.delete(key);
  }

  /** Adds the typed `meta_*` / `fx_*` properties a write needs (Weaviate's auto-schema would guess their types). */
  async ensureFlatProperties(name: string, properties: string[]): Promise<void> {
    const known = this.core.schema.get(name)?.properties ?? (await this.readSchema(name));
    for (const property of properties) {
      if (known.has(property)) continue;
      const type = flatTypeOf(property);
      if (!type) continue; // fx_* are base properties
      await this.addProperty(name, {
        name: property,
        dataType: FLAT_DATA_TYPES[type],
        tokenization: 'field',
        indexFilterable: true,
        indexSearchable: false,
      });
    }
  }

  /** Translates a filter against a collection's schema, re-reading it (throttled) when the filter names unseen properties. */
  async translate(name: string, filter: Filter): Promise<TranslatedFilter> {
    let entry = this.core.schema.get(name);
    if (!entry) {
      await this.readSchema(name);
      entry = this.core.schema.get(name)!;
    }
    const unseen = referencedProperties(filter).some((p) => !entry!.properties.has(p));
    if (unseen && Date.now() - entry.readAt > SCHEMA_REFRESH_MS) {
      await this.readSchema(name);
      entry = this.core.schema.get(name)!;
    }
    const known = entry.properties;
    return translateFilter(filter, (p) => known.has(p));
  }

  /** Makes sure this store's tenant exists on a multi-tenant collection; returns the collection name. */
  private async ready(name: string, shard: string | undefined = this.tenant): Promise<string> {
    const { multiTenant } = this.core.options;
    if (!multiTenant) return name;
    if (shard === undefined) {
      throw new AppError('INTERNAL_SERVER_ERROR', 'This Weaviate store is multi-tenant: use withTenant(tenant) or the tenant option.');
    }
    const key = `${name}\u0000${shard}`;
    if (!this.core.tenants.has(key)) {
      const tenant = shard;
      try {
        await this.session.call('create tenant', (c) => c.ensureTenant(name, tenant), { write: true });
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
      this.core.tenants.add(key);
    }
    return name;
  }
}
