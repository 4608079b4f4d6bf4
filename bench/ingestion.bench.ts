import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BaseEmbedding } from '@llamaindex/core/embeddings';
import { Document, Settings, VectorStoreIndex } from 'llamaindex';
import { HashEmbedder, hash } from '../src/adapters/embedders/hash.embedder';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import { gql } from '../test/helpers/http';
import { OpenAiStub } from '../test/helpers/openai-stub';
import type { IngestClientData, IngestClientResult } from './ingest-client.worker';
import { loadScifact, printTable } from './shared-data';

/**
 * (2) Ingestion throughput on SciFact (`../shared/data/scifact/corpus.jsonl`): kbql's `ingestDocuments` over HTTP
 * (parse, chunk, embed, store in SQLite + FTS5 + the vector index), 250 documents per request, against LlamaIndex TS
 * `VectorStoreIndex.fromDocuments` (in-memory stores) with the same embedder (kbql's HashEmbedder wrapped as a
 * LlamaIndex BaseEmbedding) and the same chunk size (256 tokens, 32 overlap). Each run in a fresh process, one after
 * the other, after a warm-up of that system with up to 3,000 other abstracts sent the way the measured ones are (a
 * running system's figures; the (2b) table adds a freshly started kbql). kbql's loader runs on a thread of its own.
 *
 * A second table does the same with a remote-provider shape: an OpenAI-compatible stub (in the parent process) that
 * answers every embedding request 40 ms after it arrives, whatever its size; kbql with KBQL_EMBEDDER=openai against
 * LlamaIndex TS calling the same endpoint with its default embedding batch size (10 texts per call, one call at a
 * time). It prints each side's CPU time over the measured window, and the share of the cores it is.
 *
 *   node dist/bench/ingestion.bench.js [documents | all, default 2500]
 */

const CHUNK_SIZE = 256;
const CHUNK_OVERLAP = 32;
const BATCH = 250;

/** kbql's embedder as a LlamaIndex embedding model (batches of up to 2,048 texts, like kbql's batcher). */
class HashEmbedding extends BaseEmbedding {
  constructor(private readonly embedder: HashEmbedder) {
    super();
    this.embedBatchSize = embedder.maxBatchSize;
  }
  async getTextEmbedding(text: string): Promise<number[]> {
    return Array.from((await this.embedder.embed([text]))[0]!);
  }
  override getTextEmbeddings = async (texts: string[]): Promise<number[][]> => (await this.embedder.embed(texts)).map((v) => Array.from(v));
}

/** The stub's embeddings as a LlamaIndex embedding model with LlamaIndex's defaults (embedBatchSize 10). */
class StubEmbedding extends BaseEmbedding {
  constructor(private readonly baseUrl: string) {
    super();
  }
  async getTextEmbedding(text: string): Promise<number[]> {
    return (await this.getTextEmbeddings([text]))[0]!;
  }
  override getTextEmbeddings = async (texts: string[]): Promise<number[][]> => {
    const response = await fetch(`${this.baseUrl}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stub-embed', input: texts }),
    });
    const body = (await response.json()) as { data: { embedding: number[] }[] };
    return body.data.map((d) => d.embedding);
  };
}

const STUB_DELAY_MS = 40;

/** A unit vector with one coordinate chosen by a hash of the text: distinct texts, almost no CPU. */
function cheapVector(text: string, dimensions: number): Float32Array {
  const vector = new Float32Array(dimensions);
  vector[hash(text, 0, text.length, 0) % dimensions] = 1;
  return vector;
}
const STUB_DIMENSIONS = 384;

interface Corpus {
  id: string;
  title: string;
  text: string;
}

interface RunResult {
  seconds: number;
  chunks: number;
  /** CPU time of the whole process (every thread) over the measured window, in seconds. */
  cpuSeconds: number;
  /** With the index loaded: the share of chunks the ANN graph served when the last request ended. */
  indexedFraction?: number;
  /** With the index loaded: whether searches went through the graph then (false: no graph yet, exact). */
  approximate?: boolean;
}

async function kbql(
  corpus: readonly Corpus[],
  concurrency: number,
  stubUrl: string | null,
  warm: readonly Corpus[],
  vectorIndex: 'auto' | 'exact' | null = null,
): Promise<RunResult> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-bench-ingest-'));
  const provider = stubUrl
    ? {
        KBQL_EMBEDDER: 'openai',
        OPENAI_BASE_URL: stubUrl,
        KBQL_EMBEDDING_MODEL: 'stub-embed',
        KBQL_EMBEDDING_DIMENSIONS: String(STUB_DIMENSIONS),
      }
    : {};
  const index = vectorIndex ? { KBQL_VECTOR_INDEX: vectorIndex } : {};
  const app = await createApp(loadConfig({ NODE_ENV: 'test', KBQL_LOG_LEVEL: 'error', KBQL_DATA_DIR: dataDir, ...provider, ...index }));
  try {
    const url = `${await app.listen(0, '127.0.0.1')}/graphql`;
    const post = (query: string, variables: Record<string, unknown>) => gql(url, query, variables, { path: '' });
    await post('mutation { createCollection(input: { name: "scifact", chunking: { chunkSize: 256, chunkOverlap: 32 } }) { id } }', {});
    // Warm-up in this server, in another collection and the measured shape: worker threads started, tokenizer tables
    // loaded, code optimised, the tokenizer's memory of the corpus's words filled, as in a server that has been running.
    await post('mutation { createCollection(input: { name: "warm", chunking: { chunkSize: 256, chunkOverlap: 32 } }) { id } }', {});
    await load(url, 'warm', warm, concurrency);
    // A collection being searched while it grows: its vector index is loaded, so (with the ANN index) the graph
    // builder follows the ingestion on its thread.
    if (vectorIndex) await post('{ search(collection: "scifact", query: "warm", mode: VECTOR) { hits { score } } }', {});
    const { seconds, chunks, cpuSeconds } = await load(url, 'scifact', corpus, concurrency);
    if (!vectorIndex) return { seconds, chunks, cpuSeconds };
    const stats = await post('{ collection(name: "scifact") { stats { vectorIndex { approximate indexedFraction } } } }', {});
    const { approximate, indexedFraction } = stats.collection.stats.vectorIndex;
    return { seconds, chunks, cpuSeconds, indexedFraction, approximate };
  } finally {
    await app.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Sends `docs` to `collection` in requests of {@link BATCH}, `concurrency` in flight, from a loader on its own thread
 * (`ingest-client.worker.ts`): the bodies are built before the clock starts, and the loader's work is not the server's.
 * Times from the first request to the last answer; CPU is this process's, every thread (the loader's thread included).
 */
async function load(url: string, collection: string, docs: readonly Corpus[], concurrency: number): Promise<RunResult> {
  const batches: Corpus[][] = [];
  for (let i = 0; i < docs.length; i += BATCH) batches.push(docs.slice(i, i + BATCH));
  const worker = new Worker(path.join(__dirname, 'ingest-client.worker.js'), {
    workerData: { url, collection, batches, concurrency } satisfies IngestClientData,
  });
  try {
    // 'ready' once the bodies are built; a failure before that comes as its result.
    const first = await new Promise<IngestClientResult | { type: 'ready' }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (first.type !== 'ready') throw new Error(`the loader of ${collection} failed: ${first.error ?? 'no reason'}`);
    const started = performance.now();
    const cpu = process.cpuUsage();
    const result = await new Promise<IngestClientResult>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.postMessage('go');
    });
    const seconds = (performance.now() - started) / 1000;
    const cpuSeconds = cpuSecondsSince(cpu);
    if (result.error !== null || result.failed > 0)
      throw new Error(`ingestion into ${collection} failed: ${result.error ?? `${result.failed} documents`}`);
    return { seconds, chunks: result.chunks, cpuSeconds };
  } finally {
    await worker.terminate();
  }
}

async function llamaIndex(corpus: readonly Corpus[], stubUrl: string | null): Promise<RunResult> {
  Settings.embedModel = stubUrl ? new StubEmbedding(stubUrl) : new HashEmbedding(new HashEmbedder());
  // fromDocuments builds its SentenceSplitter from these (llamaindex 0.12 keeps a second Settings object inside its
  // indices module: `Settings.nodeParser` set here would not reach it).
  Settings.chunkSize = CHUNK_SIZE;
  Settings.chunkOverlap = CHUNK_OVERLAP;
  const documents = corpus.map((d) => new Document({ id_: d.id, text: `${d.title}\n\n${d.text}` }));
  const started = performance.now();
  const cpu = process.cpuUsage();
  const index = await VectorStoreIndex.fromDocuments(documents);
  const seconds = (performance.now() - started) / 1000;
  return { seconds, chunks: Object.keys(index.indexStruct.nodesDict).length, cpuSeconds: cpuSecondsSince(cpu) };
}

/** CPU seconds (user + system, every thread of this process) since `start`. */
function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

type Run = 'llamaindex' | 'kbql-1' | 'kbql-2' | 'kbql-4' | 'kbql-2-exact' | 'kbql-2-auto';

/** Most abstracts a warm-up sends. */
const WARM_DOCUMENTS = 3000;

/**
 * One measurement in this process (a fresh one per run: no warm caches or JIT state shared between systems). Each
 * system first ingests the abstracts after the measured ones (up to {@link WARM_DOCUMENTS}, disjoint from them) the
 * way it is then measured, so that the figures are those of a running system, not of its first seconds; `cold` warms
 * with 50 abstracts only (code loaded, tables built), for the figure of a freshly started server.
 */
async function measure(run: Run, count: number, stubUrl: string | null, cold = false): Promise<RunResult> {
  const all = loadScifact().corpus;
  const corpus = all.slice(0, count);
  const warm = cold ? all.slice(-50) : all.slice(count, count + WARM_DOCUMENTS);
  if (run === 'llamaindex') {
    // The warm-up's embeddings come from the hash embedder (a few with the stub, to warm that path too): through the
    // 40 ms stub, 3,000 abstracts would take LlamaIndex 40 s, and the wait warms nothing.
    await llamaIndex(warm, null);
    if (stubUrl) await llamaIndex(warm.slice(0, 50), stubUrl);
    return llamaIndex(corpus, stubUrl);
  }
  if (run === 'kbql-2-exact' || run === 'kbql-2-auto') return kbql(corpus, 2, stubUrl, warm, run === 'kbql-2-auto' ? 'auto' : 'exact');
  return kbql(corpus, Number(run.slice('kbql-'.length)), stubUrl, warm);
}

function runChild(run: Run, count: number, stubUrl: string | null = null, cold = false): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const args = [__filename, '--run', run, String(count), stubUrl ?? '-', ...(cold ? ['cold'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (data: Buffer) => (out += data.toString()));
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`${run} exited with ${code}`));
      else resolve(JSON.parse(line) as RunResult);
    });
  });
}

/** A table row of one run: its figures and its speed against `base`, the baseline run over the same documents. */
function tableRow(base: { seconds: number }, count: number) {
  return (label: string, r: { seconds: number; chunks: number }) => [
    label,
    count,
    r.chunks,
    r.seconds,
    count / r.seconds,
    r.chunks / r.seconds,
    `${(base.seconds / r.seconds).toFixed(2)}×`,
  ];
}

async function main(): Promise<void> {
  if (process.argv[2] === '--run') {
    const stubUrl = process.argv[5] && process.argv[5] !== '-' ? process.argv[5] : null;
    process.stdout.write(
      `${JSON.stringify(await measure(process.argv[3] as Run, Number(process.argv[4]), stubUrl, process.argv[6] === 'cold'))}\n`,
    );
    return;
  }
  const total = loadScifact().corpus.length;
  // Default: the first 2,500 abstracts (half the corpus keeps the whole bench near 40 s); `all` for the whole corpus.
  const count = process.argv[2] === 'all' ? total - 50 : Math.min(total - 50, Number(process.argv[2] ?? 2500));
  const base = await runChild('llamaindex', count);
  const sequential = await runChild('kbql-1', count);
  const parallel = await runChild('kbql-2', count);
  const row = tableRow(base, count);
  printTable(
    `(2) Ingestion of SciFact abstracts, same embedder (${new HashEmbedder().info.name}, 1024 dims), chunks of ${CHUNK_SIZE} tokens, each run in a fresh process; ${os.cpus().length} cores, node ${process.version}`,
    ['system', 'docs', 'chunks', 'seconds', 'docs/s', 'chunks/s', 'docs/s vs LlamaIndex'],
    [
      row('LlamaIndex TS VectorStoreIndex.fromDocuments (baseline)', base),
      row(`kbql ingestDocuments over HTTP, ${BATCH} docs/request, 1 in flight`, sequential),
      row(`kbql ingestDocuments over HTTP, ${BATCH} docs/request, 2 in flight`, parallel),
    ],
  );

  // The vector index loaded while the collection grows past the graph's threshold: exact scan against the ANN graph,
  // whose builder thread competes with ingestion for the 2 cores.
  const all = total - 50;
  const exact = await runChild('kbql-2-exact', all);
  const ann = await runChild('kbql-2-auto', all);
  const indexRow = tableRow(exact, all);
  printTable(
    `(2c) Ingestion while the collection is being searched (its vector index loaded), every abstract, 2 in flight: exact index against the ANN index (KBQL_VECTOR_INDEX=auto, graph from 5,000 chunks)`,
    ['system', 'docs', 'chunks', 'seconds', 'docs/s', 'chunks/s', 'docs/s vs exact'],
    [
      indexRow('kbql, KBQL_VECTOR_INDEX=exact (baseline)', exact),
      indexRow('kbql, KBQL_VECTOR_INDEX=auto (the graph builder waits for a pause in the writes)', ann),
    ],
  );
  process.stdout.write(
    ann.approximate
      ? `When the last request ended, the ANN graph served ${((ann.indexedFraction ?? 0) * 100).toFixed(0)}% of the chunks.\n`
      : 'When the last request ended, no graph served the collection yet: its searches were exact.\n',
  );

  // The remote-provider shape: every embedding call costs 40 ms, whatever its size.
  // A remote provider computes its vectors on its own machines: the stub's cost here is one hash per text, so that
  // the 2 cores measure the two systems and not the stub.
  const stub = await OpenAiStub.start({ dimensions: STUB_DIMENSIONS, embeddingDelayMs: STUB_DELAY_MS, embedding: cheapVector });
  try {
    const remoteCount = Math.min(count, 1000);
    const remoteBase = await runChild('llamaindex', remoteCount, stub.baseUrl);
    stub.reset();
    // Four requests in flight: with a provider's latency in every request, a bulk loader keeps several going.
    const remote = await runChild('kbql-4', remoteCount, stub.baseUrl);
    stub.reset();
    const fresh = await runChild('kbql-4', remoteCount, stub.baseUrl, true);
    const remoteRow = tableRow(remoteBase, remoteCount);
    printTable(
      `(2b) The same ingestion with a remote-provider shape: an OpenAI-compatible stub answering every embedding request after ${STUB_DELAY_MS} ms, ${STUB_DIMENSIONS} dims`,
      ['system', 'docs', 'chunks', 'seconds', 'docs/s', 'chunks/s', 'docs/s vs LlamaIndex'],
      [
        remoteRow('LlamaIndex TS VectorStoreIndex.fromDocuments, default embedBatchSize (10)', remoteBase),
        remoteRow(`kbql ingestDocuments over HTTP (KBQL_EMBEDDER=openai), ${BATCH} docs/request, 4 in flight`, remote),
        remoteRow('the same kbql, freshly started (warmed with 50 abstracts only)', fresh),
      ],
    );
    // How much of the cores each side used: a freshly started kbql is bound by them, a running one by its event loop.
    const cores = os.availableParallelism();
    const cpuOf = (r: RunResult) =>
      `${r.cpuSeconds.toFixed(2)} s in ${r.seconds.toFixed(2)} s (${((r.cpuSeconds / (r.seconds * cores)) * 100).toFixed(0)}% of ${cores} cores)`;
    process.stdout.write(
      `CPU over the measured window, every thread of the process: LlamaIndex ${cpuOf(remoteBase)}; kbql ${cpuOf(remote)}; ` +
        `kbql freshly started ${cpuOf(fresh)}. 20× needs kbql within ${(remoteBase.seconds / 20).toFixed(2)} s.\n`,
    );
  } finally {
    await stub.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
