/**
 * The embedding state of kbql collections on Weaviate (see `weaviate.embeddings.ts`): its registry object, and which
 * chunk collection each collection's searches, reads and writes use, as last read with the collection.
 */
import { uuidV5 } from '../../ids';
import type { CollectionRecord, SecondaryEmbedding } from '../../ports/knowledge-store.port';
import type { WObject } from './weaviate.client';
import { byIds } from './weaviate.filters';
import { str0 } from './weaviate.rows';
import type { WeaviateCore, WeaviateSession } from './weaviate.session';

/** The stored form of a collection's embedding state. */
export interface EmbeddingStateJson {
  active: { name: string; dimensions: number; className: string };
  secondary: { role: SecondaryEmbedding['role']; name: string; dimensions: number; expiresAt: number | null; className: string } | null;
  /** Chunk collections replaced by a switch or dropped, deleted by the next operation (searches may still read them). */
  retired: string[];
}

interface Known {
  active: string;
  secondary: string | null;
}

/** What this process last read of each collection's chunk collections, per store core. */
const KNOWN = new WeakMap<WeaviateCore, Map<string, Known>>();

export function known(core: WeaviateCore): Map<string, Known> {
  let map = KNOWN.get(core);
  if (!map) KNOWN.set(core, (map = new Map<string, Known>()));
  return map;
}

/** The id of a collection's embedding state object in the registry. */
export const embeddingStateId = (collectionId: string): string => uuidV5(`embedding\u0000${collectionId}`);

/** The Weaviate collection of `collectionId`'s active chunks, as last read; undefined: the base one. */
export function activeChunkClass(core: WeaviateCore, collectionId: string): string | undefined {
  return KNOWN.get(core)?.get(collectionId)?.active;
}

export function parseState(object: WObject | undefined): EmbeddingStateJson | null {
  if (!object || object.properties['kind'] !== 'embedding') return null;
  const text = str0(object.properties['embeddingJson']);
  return text ? (JSON.parse(text) as EmbeddingStateJson) : null;
}

/**
 * Applies a collection's embedding state (its registry object, read with the record) to the record: the active
 * embedder and the secondary one; and remembers which chunk collections are in use.
 */
export function applyEmbeddingState(core: WeaviateCore, record: CollectionRecord, stateObject: WObject | undefined): CollectionRecord {
  const state = parseState(stateObject);
  if (!state) {
    known(core).delete(record.id);
    return { ...record, secondary: null };
  }
  known(core).set(record.id, { active: state.active.className, secondary: state.secondary?.className ?? null });
  const s = state.secondary;
  return {
    ...record,
    embedder: { name: state.active.name, dimensions: state.active.dimensions },
    secondary: s
      ? {
          role: s.role,
          embedder: { name: s.name, dimensions: s.dimensions },
          expiresAt: s.expiresAt === null ? null : new Date(s.expiresAt),
        }
      : null,
  };
}

/**
 * Deletes a deleted collection's embedding state and every chunk collection it named besides `keep` (the caller
 * deletes that one): the base, shadow, previous and retired ones. `forget` drops a deleted name from the schema cache.
 */
export async function dropEmbeddingState(
  session: WeaviateSession,
  where: { registry: string; base: string; keep: string },
  collectionId: string,
  forget: (name: string) => void,
): Promise<void> {
  const [object] = await session.fetchByIds(where.registry, [embeddingStateId(collectionId)]);
  known(session.core).delete(collectionId);
  const state = parseState(object);
  if (!state) return;
  const names = new Set([where.base, state.active.className, ...(state.secondary ? [state.secondary.className] : []), ...state.retired]);
  names.delete(where.keep);
  for (const name of names) {
    await session.call('delete collection', (c) => c.deleteCollection(name), { write: true });
    forget(name);
  }
  await session.deleteAll(where.registry, byIds([embeddingStateId(collectionId)]), 'delete embedding state');
}
