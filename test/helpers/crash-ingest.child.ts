/**
 * Child process for `embedded-store.crash.test.ts`: opens the embedded store in the directory given as argv[2] and
 * ingests {@link ingestSequence} from the start as fast as it can (creating the collection if missing), printing
 * `progress <distinct documents> <writes>` after every commit, until the parent SIGKILLs it. Run as
 * `node crash-ingest.child.js <dataDir>` (compiled).
 * The input generators are exported so the parent can rebuild the exact same input.
 */
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { sha256Hex } from '../../src/ids';
import type { DocumentWrite } from '../../src/ports/knowledge-store.port';
import { mulberry32 } from './fixtures';

export const CRASH_INPUT = {
  collectionName: 'crash-ingest',
  documents: 2000,
  dimensions: 64,
  seed: 0x5eed,
  /** Documents with `i % draftEvery === 0` are first written as a longer draft, then replaced by their final. */
  draftEvery: 7,
  /** How many positions later in the sequence a draft's final version is written. */
  draftLag: 40,
} as const;

const WORDS = (
  'vector index ledger harbor quartz meadow signal lantern copper orbit thistle canyon ember willow prism ' +
  'glacier falcon mosaic tundra beacon saffron cobalt juniper marble nectar pylon raven sonnet tidal umber'
).split(' ');

/** The final version of document `i` (what a complete ingest leaves). */
export function finalDocument(i: number): DocumentWrite {
  return makeDocument(i, 'final', 2 + (i % 5));
}

/** The longer draft written before the final version of documents with `i % draftEvery === 0`. */
export function draftDocument(i: number): DocumentWrite {
  return makeDocument(i, 'draft', 5 + (i % 5));
}

export const hasDraft = (i: number): boolean => i % CRASH_INPUT.draftEvery === 0;

/** Every write the child performs, in order: drafts interleaved with finals, each final after its draft. */
export function ingestSequence(): DocumentWrite[] {
  const { documents: n, draftLag } = CRASH_INPUT;
  const sequence: DocumentWrite[] = [];
  for (let i = 0; i < n; i++) {
    sequence.push(hasDraft(i) ? draftDocument(i) : finalDocument(i));
    const j = i - draftLag;
    if (j >= 0 && hasDraft(j)) sequence.push(finalDocument(j));
  }
  for (let j = Math.max(0, n - draftLag); j < n; j++) if (hasDraft(j)) sequence.push(finalDocument(j));
  return sequence;
}

/** Batch sizes the child uses (deterministic, 1–40; size 1 goes through the single-document path). */
export function batchSizes(total: number): number[] {
  const rng = mulberry32(CRASH_INPUT.seed ^ 0xbadc0de);
  const sizes: number[] = [];
  for (let done = 0; done < total;) {
    const size = Math.min(total - done, 1 + Math.floor(rng() * 40));
    sizes.push(size);
    done += size;
  }
  return sizes;
}

function makeDocument(i: number, kind: 'draft' | 'final', chunkCount: number): DocumentWrite {
  const rng = mulberry32(CRASH_INPUT.seed + i * 2 + (kind === 'draft' ? 1 : 0));
  const externalId = `doc-${String(i).padStart(5, '0')}`;
  let offset = 0;
  const chunks = Array.from({ length: chunkCount }, (_, index) => {
    const words = Array.from({ length: 12 + Math.floor(rng() * 20) }, () => WORDS[Math.floor(rng() * WORDS.length)]!);
    const text = `${kind} ${externalId} part ${index}: ${words.join(' ')}.`;
    const vector = Float32Array.from({ length: CRASH_INPUT.dimensions }, () => rng() * 2 - 1);
    const start = offset;
    offset += text.length + 1;
    return { index, text, startOffset: start, endOffset: start + text.length, vector };
  });
  const content = chunks.map((ch) => ch.text).join('\n');
  return {
    externalId,
    title: `Document ${i} (${kind})`,
    source: `generated://crash/${i}`,
    contentType: 'TEXT',
    metadata: { i, kind, bucket: i % 10 },
    contentHash: sha256Hex(content),
    charCount: content.length,
    chunks,
  };
}

async function main(dataDir: string): Promise<void> {
  const store = new EmbeddedKnowledgeStore({ dataDir });
  await store.init();
  // A rerun after a kill continues in the same collection, rewriting from the start (replaces under crash too).
  const collection =
    (await store.getCollectionByName(CRASH_INPUT.collectionName)) ??
    (await store.createCollection({
      name: CRASH_INPUT.collectionName,
      description: 'crash test',
      chunking: { strategy: 'SENTENCE', chunkSize: 128, chunkOverlap: 16 },
      embedder: { name: 'crash-test', dimensions: CRASH_INPUT.dimensions },
    }));
  const sequence = ingestSequence();
  const seen = new Set<string>();
  let done = 0;
  for (const size of batchSizes(sequence.length)) {
    const batch = sequence.slice(done, done + size);
    if (batch.length === 1) {
      await store.upsertDocument(collection.id, batch[0]!);
    } else {
      const results = await store.upsertDocuments(collection.id, batch);
      if (!results.every((r) => r.ok)) throw new Error('a write failed');
    }
    done += batch.length;
    for (const doc of batch) seen.add(doc.externalId);
    process.stdout.write(`progress ${seen.size} ${done}\n`);
  }
  process.stdout.write('done\n');
  await store.close();
}

if (require.main === module) {
  const dataDir = process.argv[2];
  if (!dataDir) {
    process.stderr.write('usage: crash-ingest.child.js <dataDir>\n');
    process.exit(2);
  }
  main(dataDir).catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
}
