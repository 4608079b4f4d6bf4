/**
 * Re-embedding on Weaviate (see `ReembeddingStore` in the port): a shadow chunk collection per target embedder and a
 * pointer object, switched by one object write.
 *
 * - The **embedding state** of a kbql collection is one registry object of its own (kind `embedding`, id
 *   `uuidV5("embedding\0<collection id>")`): the active embedder and the Weaviate collection holding its chunks, and
 *   the secondary one (BUILDING or PREVIOUS) with its collection. A collection without one is on its creation
 *   embedder in `KbqlChunks_<id hex>`, as before.
 * - `getCollection` reads the collection's record and its state in one request, and this state decides which chunk
 *   collection searches, reads and writes use (`activeChunkClass`), so every search sees one embedder's vectors.
 * - The shadow collection `KbqlChunks_<id hex>_<fingerprint hash>` holds copies of the chunk objects (same ids and
 *   properties) with the target's vectors. Writes made while it exists are mirrored into it (`mirror*`): with the
 *   target's vector when the write carries one, else the chunk stays pending and the job embeds it.
 * - The switch writes the state object once: Weaviate replaces one object atomically, so a search reads the old state
 *   or the new one. A replaced collection that searches may still be reading is not deleted at once but retired and
 *   deleted by the next re-embedding operation on the collection (or with the collection).
 *
 * Limits: pending chunks are found by paging the active chunk collection with offsets, so a collection is re-embedded
 * only up to QUERY_MAXIMUM_RESULTS chunks (`maxQueryResults`, 10,000 by default); the state write and the version
 * bump are two writes (caches key on the embedder fingerprint too); locks are per process, as for version bumps.
 */
import { createHash } from 'node:crypto';
import { AppError, badInput, notFound } from '../../errors';
import { embedderFingerprint, sameEmbedder } from '../../ports/embedder.port';
import type { CollectionRecord, EmbedderInfo, PendingChunk, ReembeddingStore, SecondaryProgress } from '../../ports/knowledge-store.port';
import { checkVector } from '../store-checks';
import type { FilterValue } from 'weaviate-client';
import type { WriteObject } from './weaviate.client';
import type { WeaviateCollections } from './weaviate.collections';
import { str0 } from './weaviate.rows';
import { embeddingStateId, known, parseState, type EmbeddingStateJson } from './weaviate.embedding-state';
import type { WeaviateSchema } from './weaviate.schema';
import type { WeaviateCore, WeaviateSession } from './weaviate.session';

export class WeaviateReembedding implements ReembeddingStore {
  private readonly core: WeaviateCore;

  constructor(
    private readonly session: WeaviateSession,
    private readonly schema: WeaviateSchema,
    private readonly collections: WeaviateCollections,
  ) {
    this.core = session.core;
  }

  async startSecondary(collectionId: string, embedder: EmbedderInfo): Promise<CollectionRecord> {
    await this.session.withLock(collectionId, async () => {
      const { record, state, shard } = await this.read(collectionId);
      if (sameEmbedder(record.embedder, embedder))
        throw badInput('The collection already uses this embedder.', { reason: 'SAME_EMBEDDER' });
      const s = state.secondary;
      if (s?.role === 'BUILDING') {
        if (sameEmbedder(s, embedder)) return;
        throw new AppError('CONFLICT', `The collection is already being re-embedded with ${s.name}.`, {
          reason: 'REEMBED_IN_PROGRESS',
          embedder: s.name,
        });
      }
      const className = this.shadowName(collectionId, embedder);
      const retired = [...state.retired, ...(s ? [s.className] : [])].filter((n) => n !== className && n !== state.active.className);
      await this.deleteRetired(retired, shard);
      // A shadow left by an earlier, dropped attempt of the same target is started afresh.
      await this.deleteClass(className);
      await this.schema.ensureChunkCollection(collectionId, true, shard, className);
      await this.writeState(collectionId, {
        ...state,
        secondary: { role: 'BUILDING', name: embedder.name, dimensions: embedder.dimensions, expiresAt: null, className },
        retired: [],
      });
    });
    return this.bumped(collectionId);
  }

  async pendingChunks(collectionId: string, limit: number): Promise<PendingChunk[]> {
    const { state, shard } = await this.read(collectionId);
    if (!state.secondary || limit <= 0) return [];
    const page = 500;
    const max = this.core.options.maxQueryResults;
    const out: PendingChunk[] = [];
    for (let offset = 0; out.length < limit; offset += page) {
      if (offset >= max) {
        throw badInput(`Re-embedding on Weaviate handles collections of up to ${max} chunks (QUERY_MAXIMUM_RESULTS).`, {
          reason: 'REEMBED_TOO_LARGE',
          max,
        });
      }
      const objects = await this.session.call('list chunks to re-embed', (c) =>
        c
          .collection(state.active.className, shard)
          .fetchObjects({ limit: Math.min(page, max - offset), offset, returnProperties: ['text'] }),
      );
      if (objects.length === 0) break;
      const done = new Set(
        (
          await this.session.fetchByIds(
            state.secondary.className,
            objects.map((o) => o.uuid),
            { returnProperties: [] },
            shard,
          )
        ).map((o) => o.uuid),
      );
      for (const o of objects) if (!done.has(o.uuid) && out.length < limit) out.push({ id: o.uuid, text: str0(o.properties['text']) });
      if (objects.length < page) break;
    }
    return out;
  }

  async writeSecondaryVectors(
    collectionId: string,
    embedder: EmbedderInfo,
    vectors: { chunkId: string; vector: Float32Array }[],
  ): Promise<number> {
    vectors.forEach((v) => checkVector(v.vector, embedder.dimensions, `secondary vector of chunk ${v.chunkId}`));
    const { state, shard } = await this.read(collectionId);
    const s = state.secondary;
    if (!s || !sameEmbedder(s, embedder)) {
      throw new AppError('CONFLICT', 'The collection has no secondary vectors of this embedder (cancelled or replaced).', {
        reason: 'SECONDARY_CHANGED',
      });
    }
    const byId = new Map(vectors.map((v) => [v.chunkId, v.vector]));
    const objects = await this.session.fetchByIds(state.active.className, [...byId.keys()], {}, shard);
    const copies: WriteObject[] = objects.map((o) => ({ id: o.uuid, properties: o.properties, vector: Array.from(byId.get(o.uuid)!) }));
    await this.session.insertAll(s.className, copies, 'store re-embedded chunks', shard);
    return copies.length;
  }

  async secondaryProgress(collectionId: string): Promise<SecondaryProgress> {
    const { state, shard } = await this.read(collectionId);
    const count = (name: string) =>
      this.session.call('count chunks', (c) => c.collection(name, shard).aggregate({})).then((r) => r.totalCount);
    const total = await count(state.active.className);
    return { total, embedded: state.secondary ? await count(state.secondary.className) : 0 };
  }

  async swapEmbedding(collectionId: string, keepPreviousUntil: Date | null): Promise<CollectionRecord> {
    await this.session.withLock(collectionId, async () => {
      const { state } = await this.read(collectionId);
      const s = state.secondary;
      if (!s) throw new AppError('CONFLICT', 'The collection has no secondary vectors to switch to.', { reason: 'NO_SECONDARY' });
      const pending = await this.pendingCount(collectionId);
      if (pending > 0) {
        throw new AppError('CONFLICT', `${pending} chunks have no vector of ${s.name} yet.`, { reason: 'SECONDARY_INCOMPLETE', pending });
      }
      const old = state.active;
      // The one write that switches: searches read either this state or the previous one.
      await this.writeState(collectionId, {
        active: { name: s.name, dimensions: s.dimensions, className: s.className },
        secondary: keepPreviousUntil
          ? {
              role: 'PREVIOUS',
              name: old.name,
              dimensions: old.dimensions,
              expiresAt: keepPreviousUntil.getTime(),
              className: old.className,
            }
          : null,
        retired: keepPreviousUntil ? state.retired : [...state.retired, old.className],
      });
    });
    return this.bumped(collectionId);
  }

  async dropSecondary(collectionId: string): Promise<CollectionRecord> {
    let changed = false;
    await this.session.withLock(collectionId, async () => {
      const { state, shard } = await this.read(collectionId);
      await this.deleteRetired(state.retired, shard);
      if (!state.secondary && state.retired.length === 0) return;
      changed = state.secondary !== null;
      await this.writeState(collectionId, { ...state, secondary: null, retired: state.secondary ? [state.secondary.className] : [] });
    });
    return changed ? this.bumped(collectionId) : this.current(collectionId);
  }

  // ---------------------------------------------------------------- mirrored writes (weaviate.writes.ts)

  /** The secondary chunk collection of a collection, as read with `record`; null when none. */
  secondaryClassOf(collectionId: string): string | null {
    return known(this.core).get(collectionId)?.secondary ?? null;
  }

  /** Upserts chunk objects into the secondary collection too (best effort: a chunk it misses stays pending). */
  async mirrorInsert(collectionId: string, objects: WriteObject[], shard: string | undefined): Promise<void> {
    const name = this.secondaryClassOf(collectionId);
    if (!name || objects.length === 0) return;
    await this.session.insertAll(name, objects, 'mirror chunks to the secondary vectors', shard).catch(() => undefined);
  }

  /** Deletes matching chunk objects from the secondary collection too. */
  async mirrorDelete(collectionId: string, filters: FilterValue, shard: string | undefined): Promise<void> {
    const name = this.secondaryClassOf(collectionId);
    if (!name) return;
    await this.session.deleteAll(name, filters, 'delete mirrored chunks', shard);
  }

  /** Rewrites chunk properties in the secondary collection too, keeping its vectors. */
  async mirrorRewrite(collectionId: string, rewritten: WriteObject[], shard: string | undefined): Promise<void> {
    const name = this.secondaryClassOf(collectionId);
    if (!name || rewritten.length === 0) return;
    const vectors = new Map(
      (
        await this.session.fetchByIds(
          name,
          rewritten.map((o) => o.id),
          { includeVector: true, returnProperties: [] },
          shard,
        )
      ).map((o) => [o.uuid, o.vector]),
    );
    const copies = rewritten.filter((o) => vectors.get(o.id)).map((o) => ({ ...o, vector: vectors.get(o.id)! }));
    await this.session.insertAll(name, copies, 'update metadata of mirrored chunks', shard);
  }

  // ---------------------------------------------------------------- internals

  private async read(collectionId: string): Promise<{ record: CollectionRecord; state: EmbeddingStateJson; shard: string | undefined }> {
    const record = await this.collections.getCollection(collectionId);
    if (!record) throw notFound('Collection', collectionId);
    const [object] = await this.session.fetchByIds(await this.schema.registryCollection(), [embeddingStateId(collectionId)]);
    const state = parseState(object) ?? {
      active: { ...record.embedder, className: this.schema.baseChunkCollectionName(collectionId) },
      secondary: null,
      retired: [],
    };
    return { record, state, shard: this.schema.chunkTenant(record.tenant) };
  }

  private async pendingCount(collectionId: string): Promise<number> {
    const { total, embedded } = await this.secondaryProgress(collectionId);
    if (embedded < total) return total - embedded;
    return (await this.pendingChunks(collectionId, 1)).length;
  }

  private async writeState(collectionId: string, state: EmbeddingStateJson): Promise<void> {
    await this.session.insertAll(
      await this.schema.registryCollection(),
      [{ id: embeddingStateId(collectionId), properties: { kind: 'embedding', collectionId, embeddingJson: JSON.stringify(state) } }],
      'store embedding state',
    );
  }

  private async bumped(collectionId: string): Promise<CollectionRecord> {
    await this.collections.bumpVersions([collectionId]);
    return this.current(collectionId);
  }

  private async current(collectionId: string): Promise<CollectionRecord> {
    const record = await this.collections.getCollection(collectionId);
    if (!record) throw notFound('Collection', collectionId);
    return record;
  }

  private shadowName(collectionId: string, embedder: EmbedderInfo): string {
    const hash = createHash('sha256').update(embedderFingerprint(embedder)).digest('hex').slice(0, 10);
    return `${this.schema.baseChunkCollectionName(collectionId)}_${hash}`;
  }

  private async deleteRetired(names: readonly string[], _shard: string | undefined): Promise<void> {
    for (const name of names) await this.deleteClass(name);
  }

  private async deleteClass(name: string): Promise<void> {
    await this.session.call('delete collection', (c) => c.deleteCollection(name), { write: true });
    this.schema.forget(name);
  }
}
