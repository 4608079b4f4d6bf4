/**
 * Child process for the embedded store's kill -9 test with the ANN index on: opens the store at argv[2], seeds
 * {@link STORE_CRASH.docs} documents (first run only), loads the collection's index, then commits round after round —
 * one transaction each: document `d<r % churnDocs>` re-ingested with new vectors and a new document `n<r>` — printing
 * `round <r>` after each commit, while the builder thread indexes and saves the graph, until the parent SIGKILLs it.
 * Run as `node store-ann-crash.child.js <dataDir>` (compiled). {@link crashState} rebuilds any round's documents.
 */
import { EmbeddedKnowledgeStore, type EmbeddedStoreOptions } from '../../src/adapters/embedded/sqlite.knowledge-store';
import type { DocumentWrite } from '../../src/ports/knowledge-store.port';
import { mulberry32 } from './fixtures';

export const STORE_CRASH = { dimensions: 24, docs: 40, churnDocs: 10, chunksPerDoc: 50, newChunks: 5, collection: 'crash' } as const;

/** The store options of the child and of the test's restarts: a graph from 200 rows, saved as often as it can be. */
export const STORE_CRASH_OPTIONS: Omit<EmbeddedStoreOptions, 'dataDir'> = {
  vectorIndex: 'auto',
  annIndex: { exactBelowRows: 200, saveIntervalMs: 0 },
};

const centres = (() => {
  const rng = mulberry32(91);
  return Array.from({ length: 30 }, () => Float32Array.from({ length: STORE_CRASH.dimensions }, () => rng() * 2 - 1));
})();

/** Chunk `index` of document `externalId` as written in `version`. */
export function crashChunkVector(externalId: string, version: number, index: number): Float32Array {
  let seed = version * 7919 + index * 104729;
  for (const ch of externalId) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0;
  const rng = mulberry32(seed);
  const c = centres[seed % centres.length]!;
  return Float32Array.from(c, (x) => x + 0.4 * (rng() * 2 - 1));
}

export function crashDocument(externalId: string, version: number, chunks: number): DocumentWrite {
  const texts = Array.from({ length: chunks }, (_, i) => `${externalId} v${version} chunk ${i}`);
  return {
    externalId,
    title: externalId,
    source: null,
    contentType: 'TEXT',
    metadata: { version },
    contentHash: `${externalId}-v${version}`,
    charCount: texts.join('').length,
    chunks: texts.map((text, index) => ({
      index,
      text,
      startOffset: 0,
      endOffset: text.length,
      vector: crashChunkVector(externalId, version, index),
    })),
  };
}

/** Round r's transaction: document d<r % churnDocs> at version r (the other seeded ones never change), and the new n<r>. */
export function roundDocuments(r: number): DocumentWrite[] {
  return [crashDocument(`d${r % STORE_CRASH.churnDocs}`, r, STORE_CRASH.chunksPerDoc), crashDocument(`n${r}`, r, STORE_CRASH.newChunks)];
}

/** Every document (external id → version, chunk count) after `round` rounds. */
export function crashState(round: number): Map<string, { version: number; chunks: number }> {
  const state = new Map<string, { version: number; chunks: number }>();
  for (let i = 0; i < STORE_CRASH.docs; i++) state.set(`d${i}`, { version: 0, chunks: STORE_CRASH.chunksPerDoc });
  for (let r = 1; r <= round; r++) {
    state.set(`d${r % STORE_CRASH.churnDocs}`, { version: r, chunks: STORE_CRASH.chunksPerDoc });
    state.set(`n${r}`, { version: r, chunks: STORE_CRASH.newChunks });
  }
  return state;
}

async function main(): Promise<void> {
  const dataDir = process.argv[2]!;
  const store = new EmbeddedKnowledgeStore({ dataDir, ...STORE_CRASH_OPTIONS });
  await store.init();
  let collection = await store.getCollectionByName(STORE_CRASH.collection);
  let round = 0;
  if (!collection) {
    collection = await store.createCollection({
      name: STORE_CRASH.collection,
      description: null,
      chunking: { strategy: 'AUTO', chunkSize: 100, chunkOverlap: 10 },
      embedder: { name: 'crash-test', dimensions: STORE_CRASH.dimensions },
    });
    await store.upsertDocuments(
      collection.id,
      Array.from({ length: STORE_CRASH.docs }, (_, i) => crashDocument(`d${i}`, 0, STORE_CRASH.chunksPerDoc)),
    );
  } else {
    // A later run continues after the last round the killed one committed.
    const page = await store.listDocuments(collection.id, { offset: 0, limit: 10_000 });
    for (const doc of page.items) if (doc.externalId.startsWith('n')) round = Math.max(round, Number(doc.externalId.slice(1)));
  }
  const collectionId = collection.id;
  // Loads the index (and starts the builder), as the first search after a start does.
  await store.search({ collectionId, mode: 'VECTOR', text: '', vector: crashChunkVector('d0', 0, 0), alpha: 1, limit: 1, offset: 0 });
  // A saved graph of what is there, so that the kill lands while the builder indexes and saves the rounds' changes.
  await store.settleVectorIndex(collectionId);
  for (let r = round + 1; ; r++) {
    await store.upsertDocuments(collectionId, roundDocuments(r));
    process.stdout.write(`round ${r}\n`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

if (require.main === module) void main();
