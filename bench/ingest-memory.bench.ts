import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Peak and settled RSS of one kbql replica ingesting a ~12 MB batch (one ingestDocuments call), sampled every
 * 50 ms from /proc: the figure the Kubernetes requests, limits and memory HPA target are sized from.
 * `node dist/bench/ingest-memory.bench.js` after a build.
 */
const MAIN = path.resolve(__dirname, '..', 'src', 'main.js');
const DOCS = Number(process.env.BENCH_DOCS ?? 400);
const DOC_BYTES = Number(process.env.BENCH_DOC_BYTES ?? 31_500);

const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kbql-mem-'));
  const port = 40_000 + Math.floor(Math.random() * 10_000);
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      KBQL_LOG_LEVEL: 'error',
      KBQL_DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}/graphql`;
  const gql = async (query: string, variables: unknown = {}) =>
    (
      await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) })
    ).json() as Promise<{ errors?: unknown }>;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {
      if (i > 200) throw new Error('kbql did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await gql('mutation { createCollection(input: { name: "mem" }) { id } }');
  const idle = rssMiB(child.pid!);
  const words =
    'harbor quartz meadow signal lantern copper orbit thistle canyon ember willow prism glacier falcon mosaic tundra beacon'.split(' ');
  const documents = Array.from({ length: DOCS }, (_, d) => {
    let text = '';
    for (let k = 0; text.length < DOC_BYTES; k++)
      text += `${words[(d * 7 + k * 3) % words.length]}${k % 12 === 11 ? `. Fact ${d}-${k}. ` : ' '}`;
    return { id: `doc-${d}`, title: `Document ${d}`, content: text };
  });
  const bytes = Buffer.byteLength(JSON.stringify(documents));
  let peak = idle;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(child.pid!))), 50);
  const started = Date.now();
  const result = await gql('mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "mem", documents: $d) { indexed failed } }', {
    d: documents,
  });
  const seconds = (Date.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 5000));
  clearInterval(sampler);
  const settled = rssMiB(child.pid!);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
  process.stdout.write(
    `${JSON.stringify({ result, batchMiB: +(bytes / 1024 / 1024).toFixed(1), documents: DOCS, seconds, idleMiB: Math.round(idle), peakMiB: Math.round(peak), settledMiB: Math.round(settled) })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
