import { AppError, badInput } from '../../errors';
import type { Logger } from '../../logger';
import { embedderFingerprint, sameEmbedder } from '../../ports/embedder.port';
import type { CollectionRecord, KnowledgeStore, ReembeddingStore, SecondaryProgress } from '../../ports/knowledge-store.port';
import { noTelemetry, type Telemetry } from '../../ports/telemetry.port';
import type { Access } from '../../ports/principal.port';
import type { CollectionService } from '../collections/collection.service';
import type { EmbedderCatalog, CatalogEntry } from './embedder-catalog';

/** Chunks embedded and stored per step of a rebuild: one provider batch, and a cancel is noticed within one. */
export const REEMBED_BATCH = 256;

export interface ReembedMetricsHooks {
  chunks(count: number): void;
  remaining(collectionId: string, count: number | null): void;
  errors(count: number): void;
  switched(kind: 'switch' | 'rollback'): void;
}

export interface ReembedServiceDeps {
  store: KnowledgeStore;
  collections: CollectionService;
  embedders: EmbedderCatalog;
  /** Starts the job that runs {@link ReembedService.rebuild} (the ingestion job machinery: retry, cancel, resume). */
  startJob: (collection: CollectionRecord, embedderName: string, access: Access) => Promise<{ id: string }>;
  /** How long the old vectors stay for a rollback after a switch, in seconds. */
  graceSeconds: number;
  metrics?: ReembedMetricsHooks;
  telemetry?: Telemetry;
  logger?: Logger;
}

/** How a rebuild run reports and learns that it should stop. */
export interface RebuildHooks {
  /** Checked before every batch: true stops the run (the secondary vectors are dropped). */
  cancelled(): Promise<boolean>;
  /** After every batch: chunks with a vector of the target, out of all chunks. */
  progress(progress: SecondaryProgress): Promise<void>;
}

export type RebuildOutcome = { status: 'SWITCHED'; chunks: number; collection: CollectionRecord } | { status: 'CANCELLED' };

/** What a collection's embedding looks like now (`Collection.embedding`). */
export interface EmbeddingView {
  active: CollectionRecord['embedder'];
  state: 'STABLE' | 'REEMBEDDING' | 'ROLLBACK_AVAILABLE';
  target: CollectionRecord['embedder'] | null;
  previous: CollectionRecord['embedder'] | null;
  rollbackUntil: Date | null;
  progress: SecondaryProgress | null;
}

/**
 * Re-embedding a live collection with another configured embedder (docs/reembedding.md): a job fills the
 * collection's secondary vectors in batches while searches keep using the active ones, then swaps them in one atomic
 * step; the old vectors stay for `graceSeconds` for {@link rollback}, then {@link sweepExpired} drops them.
 */
export class ReembedService {
  constructor(private readonly deps: ReembedServiceDeps) {}

  /**
   * `reembedCollection`: WRITER of the collection (a WRITER share included). Starts the secondary vectors and the job;
   * BAD_USER_INPUT for an unknown embedder or the active one, CONFLICT REEMBED_IN_PROGRESS while another runs,
   * BAD_USER_INPUT (reason REEMBED_UNSUPPORTED) on a store that cannot re-embed.
   */
  async start(collectionRef: string, embedderName: string, access: Access): Promise<{ id: string }> {
    const store = this.reembedding();
    const collection = await this.deps.collections.resolveForWrite(collectionRef, access);
    const target = this.deps.embedders.byName(embedderName);
    if (sameEmbedder(target.info, collection.embedder)) {
      throw badInput(`Collection "${collection.name}" already uses ${target.fingerprint}.`, { field: 'embedder', reason: 'SAME_EMBEDDER' });
    }
    const started = await store.startSecondary(collection.id, target.info);
    return this.deps.startJob(started, target.name, access);
  }

  /**
   * `rollbackEmbedding`: within the grace period after a switch, makes the previous vectors active again (atomic, like
   * the switch) and drops the replaced ones. Chunks written since the switch get their previous-embedder vector first.
   * CONFLICT (reason NO_ROLLBACK) when there is nothing to roll back to.
   */
  async rollback(collectionRef: string, access: Access): Promise<CollectionRecord> {
    const store = this.reembedding();
    const collection = await this.deps.collections.resolveForWrite(collectionRef, access);
    const previous = collection.secondary;
    if (previous?.role !== 'PREVIOUS' || (previous.expiresAt && previous.expiresAt.getTime() <= Date.now())) {
      throw new AppError('CONFLICT', `Collection "${collection.name}" has no previous embedding to roll back to.`, {
        reason: 'NO_ROLLBACK',
      });
    }
    const entry = this.requireEntry(previous.embedder, collection);
    await this.fill(store, collection.id, entry, { cancelled: async () => false, progress: async () => undefined });
    const rolledBack = await store.swapEmbedding(collection.id, null);
    this.deps.metrics?.switched('rollback');
    this.deps.logger?.info('embedding rolled back', { collection: collection.id, embedder: entry.fingerprint });
    return rolledBack;
  }

  /**
   * The job's work: embeds every chunk that has no vector of the target yet, in batches, then switches. Resumable:
   * a run after a crash starts where the stored vectors end. Writes made meanwhile carry both vectors (or are
   * picked up by the loop), and the switch itself refuses while a chunk lacks one, so it loses nothing.
   */
  async rebuild(collectionId: string, embedderName: string, hooks: RebuildHooks): Promise<RebuildOutcome> {
    const store = this.reembedding();
    const target = this.deps.embedders.byName(embedderName);
    const telemetry = this.deps.telemetry ?? noTelemetry;
    return telemetry.run('kbql.reembed', { collection: collectionId, embedder: target.fingerprint }, async (note) => {
      try {
        // Idempotent for the same target: a resumed or retried job continues on the stored vectors.
        await store.startSecondary(collectionId, target.info);
        for (let attempt = 0; ; attempt++) {
          const chunks = await this.fill(store, collectionId, target, hooks);
          if (chunks === null) {
            await store.dropSecondary(collectionId);
            return { status: 'CANCELLED' as const };
          }
          try {
            const collection = await telemetry.run('kbql.reembed.switch', { collection: collectionId, embedder: target.fingerprint }, () =>
              store.swapEmbedding(collectionId, new Date(Date.now() + this.deps.graceSeconds * 1000)),
            );
            this.deps.metrics?.switched('switch');
            note({ chunkCount: chunks });
            this.deps.logger?.info('embedding switched', { collection: collectionId, embedder: target.fingerprint, chunks });
            return { status: 'SWITCHED' as const, chunks, collection };
          } catch (error) {
            // A write without the target's vector got in between the last batch and the switch: one more pass.
            if (attempt < 20 && reasonOf(error) === 'SECONDARY_INCOMPLETE') continue;
            throw error;
          }
        }
      } catch (error) {
        // cancelReembedding dropped the secondary vectors under the running job.
        if (reasonOf(error) === 'NO_SECONDARY' || reasonOf(error) === 'SECONDARY_CHANGED') return { status: 'CANCELLED' as const };
        throw error;
      } finally {
        this.deps.metrics?.remaining(collectionId, null);
      }
    });
  }

  /**
   * `cancelReembedding`: drops the vectors a re-embedding is building (its job then ends CANCELLED at its next batch).
   * CONFLICT (reason NOT_REEMBEDDING) when none is being built.
   */
  async cancel(collectionRef: string, access: Access): Promise<CollectionRecord> {
    const store = this.reembedding();
    const collection = await this.deps.collections.resolveForWrite(collectionRef, access);
    if (collection.secondary?.role !== 'BUILDING') {
      throw new AppError('CONFLICT', `Collection "${collection.name}" is not being re-embedded.`, { reason: 'NOT_REEMBEDDING' });
    }
    return store.dropSecondary(collection.id);
  }

  /** Drops previous vectors whose grace period is over; returns how many collections it cleaned. */
  async sweepExpired(now = new Date()): Promise<number> {
    const store = this.deps.store.reembedding;
    if (!store) return 0;
    let dropped = 0;
    for (let offset = 0; ; offset += 100) {
      const page = await this.deps.store.listCollections({ offset, limit: 100 });
      for (const c of page.items) {
        const s = c.secondary;
        if (s?.role === 'PREVIOUS' && s.expiresAt && s.expiresAt.getTime() <= now.getTime()) {
          await store.dropSecondary(c.id);
          dropped++;
        }
      }
      if (page.items.length < 100) return dropped;
    }
  }

  /** `Collection.embedding`. */
  async view(collection: CollectionRecord): Promise<EmbeddingView> {
    const s = collection.secondary ?? null;
    const building = s?.role === 'BUILDING';
    const previous = s?.role === 'PREVIOUS' && (!s.expiresAt || s.expiresAt.getTime() > Date.now());
    return {
      active: collection.embedder,
      state: building ? 'REEMBEDDING' : previous ? 'ROLLBACK_AVAILABLE' : 'STABLE',
      target: building ? s.embedder : null,
      previous: previous ? s.embedder : null,
      rollbackUntil: previous ? s.expiresAt : null,
      progress: building && this.deps.store.reembedding ? await this.deps.store.reembedding.secondaryProgress(collection.id) : null,
    };
  }

  /**
   * Embeds pending chunks with `entry` until none is left; returns how many, or null when cancelled. A failed batch
   * throws (the job then fails, transiently for a provider outage, and `retryIngestion` resumes it).
   */
  private async fill(store: ReembeddingStore, collectionId: string, entry: CatalogEntry, hooks: RebuildHooks): Promise<number | null> {
    const telemetry = this.deps.telemetry ?? noTelemetry;
    let done = 0;
    for (;;) {
      if (await hooks.cancelled()) return null;
      const pending = await store.pendingChunks(collectionId, REEMBED_BATCH);
      if (pending.length === 0) return done;
      try {
        await telemetry.run('kbql.reembed.batch', { collection: collectionId, chunkCount: pending.length }, async () => {
          const vectors = await entry.vectors.embedMany(pending.map((p) => p.text));
          await store.writeSecondaryVectors(
            collectionId,
            entry.info,
            pending.map((p, i) => ({ chunkId: p.id, vector: vectors[i]! })),
          );
        });
      } catch (error) {
        this.deps.metrics?.errors(1);
        throw error;
      }
      done += pending.length;
      this.deps.metrics?.chunks(pending.length);
      const progress = await store.secondaryProgress(collectionId);
      this.deps.metrics?.remaining(collectionId, progress.total - progress.embedded);
      await hooks.progress(progress);
    }
  }

  private reembedding(): ReembeddingStore {
    const store = this.deps.store.reembedding;
    if (!store) {
      throw badInput(`The ${this.deps.store.kind} store cannot re-embed a collection.`, { reason: 'REEMBED_UNSUPPORTED' });
    }
    return store;
  }

  private requireEntry(info: CollectionRecord['embedder'], collection: CollectionRecord): CatalogEntry {
    const entry = this.deps.embedders.forInfo(info);
    if (!entry) {
      throw new AppError('CONFLICT', `No configured embedder makes ${embedderFingerprint(info)} vectors any more.`, {
        reason: 'EMBEDDER_MISMATCH',
        collection: collection.name,
      });
    }
    return entry;
  }
}

function reasonOf(error: unknown): unknown {
  return error instanceof AppError ? error.details['reason'] : undefined;
}
