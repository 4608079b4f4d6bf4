import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HashEmbedder } from '../src/adapters/embedders/hash.embedder';
import { EmbeddedKnowledgeStore } from '../src/adapters/embedded/sqlite.knowledge-store';
import type { ChunkWrite, DocumentWrite } from '../src/ports/knowledge-store.port';
import { graphqlRequest } from '../test/helpers/http';
import { loadScifact, percentile, printTable } from './shared-data';
import { benchCacheDir, cachedVectorsFile, readFloats, WINDOW_WORDS } from './vector-data';

/**
 * (6) Start-up of a server whose embedded store holds many indexed chunks: a fresh `node dist/bench/http-target.js`
 * on a data directory holding one collection of N chunks (20-word windows at every word of the SciFact abstracts,
 * one document per abstract, kbql-hash-v1 vectors) whose ANN graph was saved at a clean shutdown. Reported: time from
 * spawning the process to the first 200 from `/readyz` (the vector indexes are loaded by then), RSS at that point,
 * and VECTOR `search(topK: 10)` latency over HTTP right after.
 *
 * The data directory is built once (minutes at 1M: SQLite writes, then the graph on 2 threads) and kept in the OS
 * temp directory.
 *
 *   node dist/bench/startup.bench.js [chunks, default 1000000] [queries, default 50]
 */

const ROWS = Number(process.argv[2] ?? 1_000_000);
const QUERIES = Number(process.argv[3] ?? 50);
const COLLECTION = 'scifact-windows';

/** The SciFact abstracts as documents of stride-1 windows, until `rows` chunks. */
function documents(rows: number): { doc: Omit<DocumentWrite, 'chunks'>; texts: string[] }[] {
  const out: { doc: Omit<DocumentWrite, 'chunks'>; texts: string[] }[] = [];
  let total = 0;
  for (const abstract of loadScifact().corpus) {
    if (total >= rows) break;
    const content = `${abstract.title}. ${abstract.text}`;
    const words = content.split(/\s+/).filter(Boolean);
    const texts: string[] = [];
    for (let i = 0; i < words.length && total < rows; i++) {
      texts.push(words.slice(i, i + WINDOW_WORDS).join(' '));
      total++;
      if (i + WINDOW_WORDS >= words.length) break;
    }
    out.push({
      doc: {
        externalId: abstract.id,
        title: abstract.title,
        source: null,
        contentType: 'TEXT',
        metadata: {},
        contentHash: `bench-${abstract.id}`,
        charCount: content.length,
      },
      texts,
    });
  }
  return out;
}

/** Builds (once) the data directory: the collection's rows in SQLite, then its graph, saved by a clean close. */
async function seed(dir: string, embedder: HashEmbedder): Promise<void> {
  const marker = path.join(dir, 'SEEDED');
  if (existsSync(marker)) return;
  rmSync(dir, { recursive: true, force: true });
  const docs = documents(ROWS);
  const texts = docs.flatMap((d) => d.texts);
  if (texts.length < ROWS) throw new Error(`only ${texts.length} windows; need ${ROWS}`);
  const d = embedder.info.dimensions;
  const vectors = readFloats(await cachedVectorsFile(embedder, texts, `scifact-windows-stride1`), ROWS * d);
  const started = performance.now();
  const store = new EmbeddedKnowledgeStore({ dataDir: dir, vectorIndex: 'auto', annIndex: { buildThreads: 2 } });
  await store.init();
  const collection = await store.createCollection({
    name: COLLECTION,
    description: null,
    chunking: { strategy: 'AUTO', chunkSize: 256, chunkOverlap: 32 },
    embedder: embedder.info,
  });
  let row = 0;
  for (let i = 0; i < docs.length; i += 50) {
    const batch = docs.slice(i, i + 50).map(({ doc, texts: windows }): DocumentWrite => {
      const chunks = windows.map((text, index): ChunkWrite => {
        const vector = vectors.slice(row * d, (row + 1) * d);
        row++;
        return { index, text, startOffset: 0, endOffset: text.length, vector };
      });
      return { ...doc, chunks };
    });
    await store.upsertDocuments(collection.id, batch);
  }
  const writtenS = (performance.now() - started) / 1000;
  process.stderr.write(`seeded ${row} chunks in ${writtenS.toFixed(0)} s; building the graph\n`);
  await store.settleVectorIndex(collection.id);
  await store.close();
  process.stderr.write(`built in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  writeFileSync(marker, JSON.stringify({ rows: ROWS, collectionId: collection.id }));
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function main(): Promise<void> {
  const embedder = new HashEmbedder();
  const dir = path.join(benchCacheDir(), `kbql-bench-startup-${embedder.info.name}-${ROWS}`);
  await seed(dir, embedder);

  const started = performance.now();
  const child = spawn(
    process.execPath,
    [path.join(__dirname, 'http-target.js'), 'kbql', dir, 'KBQL_AUTH_MODE=none', 'KBQL_RATE_LIMIT=false'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_ENV: 'production' },
    },
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (data: Buffer) => {
        out += data.toString();
        const ready = /READY (\S+)/.exec(out);
        if (ready) resolve(ready[1]!);
      });
      child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    const listeningMs = performance.now() - started;
    const base = url.replace(/\/graphql$/, '');
    let readyMs = 0;
    let report: unknown = null;
    for (;;) {
      const response = await fetch(`${base}/readyz`).catch(() => null);
      if (response?.status === 200) {
        readyMs = performance.now() - started;
        report = await response.json();
        break;
      }
      await response?.body?.cancel();
      if (performance.now() - started > 300_000) throw new Error('not ready within 300 s');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const rss = rssMb(child.pid!);
    const claims = loadScifact().queries.slice(0, QUERIES + 5);
    const query = `query S($q: String!) { search(collection: "${COLLECTION}", query: $q, topK: 10, mode: VECTOR) { hits { score chunk { id } } } }`;
    const ms: number[] = [];
    for (const [i, claim] of claims.entries()) {
      const t0 = performance.now();
      const { body } = await graphqlRequest(url, query, { q: claim.text }, { path: '' });
      const errors = (body as { errors?: unknown[] }).errors;
      if (errors) throw new Error(JSON.stringify(errors));
      if (i >= 5) ms.push(performance.now() - t0);
    }
    printTable(
      `(6) start-up with ${ROWS.toLocaleString('en-US')} indexed chunks (embedded store, ANN graph saved at a clean shutdown), fresh process`,
      ['listening', 'ready (/readyz 200)', 'RSS at ready', `VECTOR search p50 / p95 over HTTP (${QUERIES} claims)`],
      [
        [
          `${(listeningMs / 1000).toFixed(2)} s`,
          `${(readyMs / 1000).toFixed(2)} s`,
          `${(rss / 1024).toFixed(2)} GB`,
          `${percentile(ms, 50).toFixed(1)} / ${percentile(ms, 95).toFixed(1)} ms`,
        ],
      ],
    );
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
