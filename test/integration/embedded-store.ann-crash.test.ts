import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import type { SearchHit } from '../../src/ports/knowledge-store.port';
import { crashChunkVector, crashState, STORE_CRASH, STORE_CRASH_OPTIONS } from '../helpers/store-ann-crash.child';
import { mulberry32 } from '../helpers/fixtures';

const CHILD = join(__dirname, '..', 'helpers', 'store-ann-crash.child.js');

describe('EmbeddedKnowledgeStore with the ANN index: kill -9 during indexing', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it(
    'restarts with nothing lost and correct results (exact where the graph is behind), then catches up',
    { timeout: 120_000 },
    async (t) => {
      const dataDir = await mkdtemp(join(tmpdir(), 'kbql-store-ann-crash-'));
      dirs.push(dataDir);
      // Two kills of the same directory: the second child starts from what the first one left (graph file included).
      for (const killAfterRound of [60, 160]) {
        await runChildAndKill(dataDir, killAfterRound);
        const opened: string[] = [];
        const store = new EmbeddedKnowledgeStore({
          dataDir,
          ...STORE_CRASH_OPTIONS,
          onAnnOpened: (_id, r) => opened.push(`${r.status}: ${r.indexed} indexed, ${r.pending} pending, ${r.verified} verified`),
        });
        await store.init();
        const exact = new EmbeddedKnowledgeStore({ dataDir, vectorIndex: 'exact' });
        await exact.init();
        try {
          await store.warmUp();
          const collection = (await store.getCollectionByName(STORE_CRASH.collection))!;
          const docs = (await store.listDocuments(collection.id, { offset: 0, limit: 10_000 })).items;
          // The last round the child committed (it may have gone on a little after the line the parent acted on).
          const round = Math.max(...docs.filter((d) => d.externalId.startsWith('n')).map((d) => Number(d.externalId.slice(1))));
          assert.ok(round >= killAfterRound, `round ${round} ≥ ${killAfterRound}`);
          const expected = crashState(round);
          assert.deepEqual(
            new Map(docs.map((d) => [d.externalId, { version: d.metadata.version as number, chunks: d.chunkCount }])),
            expected,
            'every committed document, at its last version, and nothing else',
          );
          const state = store.vectorIndexState(collection.id);
          t.diagnostic(`killed after round ${round}: ${opened.join('; ')}; indexed ${state.indexedFraction.toFixed(3)}`);

          const check = async (label: string) => {
            // Each sampled chunk is found first by its current vector: re-ingested ones (the graph may hold their old
            // vector) and new ones (the graph may not hold them yet) included.
            const rng = mulberry32(round);
            const sampled = [...expected.entries()].filter((_, i) => i % 7 === 0 || rng() < 0.1);
            for (const [externalId, { version, chunks }] of sampled) {
              const index = Math.floor(rng() * chunks);
              const hits = await search(store, collection.id, crashChunkVector(externalId, version, index), 1);
              assert.equal(key(hits[0]!), `${externalId}#${index}@v${version}`, `${label}: ${externalId} chunk ${index}`);
            }
            // Against an exact scan of the same file: nearly the same top 10, and only live rows.
            let overlap = 0;
            const queries = Array.from({ length: 30 }, () => crashChunkVector(`q${Math.floor(rng() * 1e6)}`, 0, 0));
            for (const q of queries) {
              const got = (await search(store, collection.id, q, 10)).map(key);
              const truth = (await search(exact, collection.id, q, 10)).map(key);
              overlap += got.filter((k) => truth.includes(k)).length;
            }
            assert.ok(overlap / (queries.length * 10) >= 0.95, `${label}: recall@10 ${overlap / (queries.length * 10)}`);
          };
          await check('at restart');
          await store.settleVectorIndex(collection.id);
          assert.deepEqual(store.vectorIndexState(collection.id), { approximate: true, indexedFraction: 1 });
          await check('caught up');
        } finally {
          await exact.close();
          await store.close();
        }
      }
    },
  );
});

function search(store: EmbeddedKnowledgeStore, collectionId: string, vector: Float32Array, limit: number): Promise<SearchHit[]> {
  return store.search({ collectionId, mode: 'VECTOR', text: '', vector, alpha: 1, limit, offset: 0 });
}

/** Document, chunk index and the version of the document the chunk belongs to. */
function key(hit: SearchHit): string {
  return `${hit.document.externalId}#${hit.chunk.index}@v${JSON.stringify(hit.document.metadata.version)}`;
}

/** Runs the child on `dataDir` and SIGKILLs it once it has printed round `killAfterRound`. */
function runChildAndKill(dataDir: string, killAfterRound: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffered = '';
    child.stdout.on('data', (data: Buffer) => {
      buffered += data.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (Number(/^round (\d+)$/.exec(line)?.[1] ?? 0) >= killAfterRound) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`crash child exited with ${code}`))));
  });
}
