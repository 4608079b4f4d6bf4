/**
 * Re-embedding a live collection over HTTP (issue 19's acceptance): 2,000 SciFact abstracts on embedder A (hash, 256
 * dimensions) re-embedded to embedder B (hash, 128 dimensions) under a concurrent stream of search and ask requests
 * and a trickle of ingests and deletes. Every vector score a response carries is checked against both embedders
 * computed here, so a response that mixed them cannot pass. A second part kills the server (-9) mid-rebuild.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HashEmbedder } from '../../src/adapters/embedders/hash.embedder';
import { graphqlRequest } from '../helpers/http';
import { waitFor } from '../helpers/jobs-fixtures';
import { killHard, startServerProcess, stopServer, type ServerProcess } from '../helpers/jobs-process';
import { REEMBED_ENV } from '../helpers/reembed-env';
import { startTestServer, type TestApp } from '../helpers/test-app';

const SCIFACT = resolve(__dirname, '..', '..', '..', '..', 'shared', 'data', 'scifact');
const CORPUS_SIZE = 2000;
const CLAIMS = 24;
const A = new HashEmbedder({ dimensions: 256 });
const B = new HashEmbedder({ dimensions: 128 });

interface Abstract {
  id: string;
  title: string;
  content: string;
}

function readCorpus(n: number): Abstract[] {
  const lines = readFileSync(join(SCIFACT, 'corpus.jsonl'), 'utf8').split('\n');
  const out: Abstract[] = [];
  for (const line of lines) {
    if (out.length >= n) break;
    if (!line.trim()) continue;
    const row = JSON.parse(line) as { _id: string; title: string; text: string };
    if (row.text.trim().length < 40) continue;
    out.push({ id: `sf-${row._id}`, title: row.title, content: row.text });
  }
  return out;
}

function readClaims(n: number): string[] {
  const lines = readFileSync(join(SCIFACT, 'queries.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim());
  return lines.slice(0, n).map((l) => (JSON.parse(l) as { text: string }).text.trim());
}

async function gql<T = any>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<{ data?: T; errors?: any[]; status: number }> {
  const { status, body } = await graphqlRequest<{ data?: T; errors?: any[] }>(url, query, variables, { timeoutMs: 30_000 });
  return { ...body, status };
}

async function must<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const r = await gql<T>(url, query, variables);
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  return r.data!;
}

async function ingest(url: string, collection: string, docs: readonly Abstract[]): Promise<void> {
  for (let i = 0; i < docs.length; i += 250) {
    const data = await must(
      url,
      `mutation($c: String!, $d: [DocumentInput!]!) { ingestDocuments(collection: $c, documents: $d) { indexed failed } }`,
      {
        c: collection,
        d: docs.slice(i, i + 250),
      },
    );
    assert.equal(data.ingestDocuments.failed, 0);
  }
}

/** Which embedder's cosines a set of hits carries: 'A', 'B', or 'MIXED' (some hit matches neither, or they disagree). */
class ScoreOracle {
  private readonly vectors = new Map<string, { a: Float32Array; b: Float32Array }>();

  async classify(
    query: string,
    hits: readonly { vectorScore: number | null; chunk: { text: string } }[],
  ): Promise<'A' | 'B' | 'MIXED' | 'NONE'> {
    const scored = hits.filter((h) => h.vectorScore !== null);
    if (scored.length === 0) return 'NONE';
    const q = await this.of(query);
    let allA = true;
    let allB = true;
    for (const h of scored) {
      const c = await this.of(h.chunk.text);
      if (Math.abs(dot(q.a, c.a) - h.vectorScore!) > 1e-4) allA = false;
      if (Math.abs(dot(q.b, c.b) - h.vectorScore!) > 1e-4) allB = false;
    }
    return allA && !allB ? 'A' : allB && !allA ? 'B' : allA && allB ? 'NONE' : 'MIXED';
  }

  private async of(text: string): Promise<{ a: Float32Array; b: Float32Array }> {
    let v = this.vectors.get(text);
    if (!v) {
      v = { a: (await A.embed([text]))[0]!, b: (await B.embed([text]))[0]! };
      this.vectors.set(text, v);
    }
    return v;
  }
}

function dot(x: Float32Array, y: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * y[i]!;
  return s;
}

const SEARCH = `query($c: String!, $q: String!, $m: SearchMode!) { search(collection: $c, query: $q, mode: $m, topK: 8) {
  hits { score vectorScore chunk { id text } document { externalId } } } }`;
const ASK = `query($c: String!, $q: String!) { ask(collection: $c, question: $q, mode: VECTOR, topK: 5) {
  abstained sources { vectorScore chunk { id text } } } }`;
const EMBEDDING = `query($c: String!) { collection(name: $c) { embedding { state active { fingerprint dimensions }
  target { dimensions } previous { dimensions } rollbackUntil progress { total embedded } } stats { chunks documents } } }`;
const JOB = `query($id: ID!) { ingestionJob(id: $id) { status failed documents(first: 1) { edges { node { stage runs chunkCount code reason } } } } }`;

interface Observation {
  kind: 'search' | 'ask';
  query: string;
  started: number;
  ended: number;
  ok: boolean;
  error?: string;
  hits: { vectorScore: number | null; chunk: { text: string } }[];
}

describe(
  're-embedding a live collection (SciFact, over HTTP)',
  { skip: !existsSync(join(SCIFACT, 'corpus.jsonl')) && 'no SciFact data' },
  () => {
    let server: { t: TestApp; url: string };
    let corpus: Abstract[];
    let claims: string[];

    before(async () => {
      corpus = readCorpus(CORPUS_SIZE);
      claims = readClaims(CLAIMS);
      server = await startTestServer({ ...REEMBED_ENV, KBQL_REEMBED_GRACE_SECONDS: '600' });
    });
    after(async () => {
      await server?.t.close();
    });

    it('switches once under load: 0 failed requests, no mixed scores, no write lost, rollback restores A exactly', async () => {
      const { url } = server;
      const embedders = await must(url, '{ embedders { name dimensions fingerprint isDefault } }');
      assert.deepEqual(
        embedders.embedders.map((e: any) => [e.name, e.dimensions, e.fingerprint, e.isDefault]),
        [
          ['default', 256, 'hash:kbql-hash-v1/256/l2', true],
          ['b', 128, 'hash:kbql-hash-v1/128/l2', false],
        ],
      );
      await must(url, 'mutation { createCollection(input: { name: "sci" }) { id } }');
      await ingest(url, 'sci', corpus);

      // Baseline on A, and the documents none of it shows (the trickle deletes only those, so A's rankings stay comparable).
      const oracle = new ScoreOracle();
      const baseline = new Map<string, string>();
      const shown = new Set<string>();
      for (const q of claims) {
        const hits = (await must(url, SEARCH, { c: 'sci', q, m: 'VECTOR' })).search.hits;
        assert.equal(await oracle.classify(q, hits), 'A');
        baseline.set(q, JSON.stringify(hits.map((h: any) => [h.chunk.id, h.score])));
        for (const h of hits) shown.add(h.document.externalId);
      }
      const deletable = corpus.filter((d) => !shown.has(d.id)).slice(-40);

      // The load: searches (VECTOR and HYBRID) and asks, 4 at a time, until told to stop; and the trickle of writes.
      const observations: Observation[] = [];
      let stop = false;
      const client = async (k: number) => {
        for (let i = 0; !stop; i++) {
          const query = claims[(k * 7 + i) % claims.length]!;
          const kind = i % 3 === 2 ? 'ask' : 'search';
          const started = performance.now();
          const r =
            kind === 'ask'
              ? await gql(url, ASK, { c: 'sci', q: query })
              : await gql(url, SEARCH, { c: 'sci', q: query, m: i % 2 ? 'HYBRID' : 'VECTOR' });
          const ok = r.status === 200 && !r.errors;
          observations.push({
            kind,
            query,
            started,
            ended: performance.now(),
            ok,
            error: ok ? undefined : JSON.stringify(r.errors ?? r.status),
            hits: ok ? (kind === 'ask' ? r.data.ask.sources : r.data.search.hits) : [],
          });
        }
      };
      const added: Abstract[] = [];
      const deleted: string[] = [];
      const trickle = async () => {
        for (let i = 0; !stop; i++) {
          if (i % 2 === 0) {
            const doc = {
              id: `trickle-${i}`,
              title: `Trickle ${i}`,
              content: `Trickle note ${i}: quokka xylophone zephyr ${i} lantern ${i * 7}.`,
            };
            await must(url, `mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "sci", documents: $d) { indexed } }`, {
              d: [doc],
            });
            added.push(doc);
          } else if (deletable.length > 0) {
            const victim = deletable.pop()!;
            const doc = await must(
              url,
              `query($x: JSON!) { documents(collection: "sci", first: 1, filter: { field: "externalId", eq: $x }) { edges { node { id } } } }`,
              {
                x: victim.id,
              },
            );
            const id = doc.documents.edges[0].node.id;
            await must(url, `mutation($ids: [ID!]!) { deleteDocuments(ids: $ids) { deletedDocuments } }`, { ids: [id] });
            deleted.push(victim.id);
          }
          await new Promise((r) => setTimeout(r, 40));
        }
      };
      const running = [...[0, 1, 2, 3].map(client), trickle()];
      await new Promise((r) => setTimeout(r, 300));

      const started = performance.now();
      const job = await must(url, 'mutation { reembedCollection(collection: "sci", embedder: "b") { id status } }');
      const building = await must(url, EMBEDDING, { c: 'sci' });
      assert.equal(building.collection.embedding.state, 'REEMBEDDING');
      assert.equal(building.collection.embedding.target.dimensions, 128);
      const finished = await waitFor(
        're-embedding job',
        async () => {
          const j = (await must(url, JOB, { id: job.reembedCollection.id })).ingestionJob;
          return j.status === 'COMPLETED' || j.failed > 0 ? j : undefined;
        },
        60_000,
        50,
      );
      const rebuildMs = performance.now() - started;
      assert.equal(finished.status, 'COMPLETED', JSON.stringify(finished));
      // Enough responses after the switch to check them (on a fast machine 300 ms gave fewer than ten).
      const atSwitch = observations.length;
      await waitFor('responses after the switch', async () => (observations.length >= atSwitch + 40 ? true : undefined), 20_000, 20);
      stop = true;
      await Promise.all(running);

      // 0 failed requests, and every response all-A or all-B, A before the switch and B after it: one switch.
      const failed = observations.filter((o) => !o.ok);
      assert.deepEqual(
        failed.map((o) => o.error),
        [],
        '0 failed requests',
      );
      const labelled = [];
      for (const o of observations) labelled.push({ ...o, label: await oracle.classify(o.query, o.hits) });
      const counts = { A: 0, B: 0, MIXED: 0, NONE: 0 };
      for (const o of labelled) counts[o.label]++;
      assert.equal(counts.MIXED, 0, 'no response mixes A and B scores');
      assert.ok(counts.A > 10 && counts.B > 10, `responses on both sides of the switch: ${JSON.stringify(counts)}`);
      const firstB = Math.min(...labelled.filter((o) => o.label === 'B').map((o) => o.ended));
      const lateA = labelled.filter((o) => o.label === 'A' && o.started > firstB);
      assert.deepEqual(lateA.length, 0, 'no A response starts after a B response ended: the switch happens once');
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /kbql_reembed_switches_total\{kind="switch"\} 1\b/);

      // Every ingest and delete made during the rebuild is there after the switch.
      const after = await must(url, EMBEDDING, { c: 'sci' });
      assert.equal(after.collection.embedding.state, 'ROLLBACK_AVAILABLE');
      assert.equal(after.collection.embedding.active.fingerprint, 'hash:kbql-hash-v1/128/l2');
      assert.equal(after.collection.embedding.previous.dimensions, 256);
      assert.equal(after.collection.stats.documents, corpus.length + added.length - deleted.length);
      assert.ok(added.length >= 3 && deleted.length >= 3, `a trickle of writes: ${added.length} ingests, ${deleted.length} deletes`);
      for (const doc of added) {
        const hits = (await must(url, SEARCH, { c: 'sci', q: doc.content, m: 'VECTOR' })).search.hits;
        assert.equal(hits[0].document.externalId, doc.id);
        assert.equal(await oracle.classify(doc.content, hits), 'B');
      }
      for (const id of deleted) {
        const found = await must(
          url,
          `query($x: JSON!) { documents(collection: "sci", first: 1, filter: { field: "externalId", eq: $x }) { totalCount } }`,
          { x: id },
        );
        assert.equal(found.documents.totalCount, 0, `${id} stays deleted`);
      }

      // Rollback: A again, exactly as before the re-embedding (ids and scores).
      const rolled = await must(url, 'mutation { rollbackEmbedding(collection: "sci") { embedding { state active { dimensions } } } }');
      assert.deepEqual(rolled.rollbackEmbedding.embedding, { state: 'STABLE', active: { dimensions: 256 } });
      for (const q of claims) {
        const hits = (await must(url, SEARCH, { c: 'sci', q, m: 'VECTOR' })).search.hits;
        assert.equal(JSON.stringify(hits.map((h: any) => [h.chunk.id, h.score])), baseline.get(q), `rollback restores A for "${q}"`);
      }
      const again = await gql(url, 'mutation { rollbackEmbedding(collection: "sci") { id } }');
      assert.equal(again.errors?.[0]?.extensions?.reason, 'NO_ROLLBACK');
      process.stdout.write(
        `# reembed: ${observations.length} requests (${counts.A} A, ${counts.B} B, ${counts.NONE} without vector scores), ` +
          `${added.length} ingests + ${deleted.length} deletes during the rebuild, rebuild ${Math.round(rebuildMs)} ms\n`,
      );
    });
  },
);

/** The crash test's server child: the two embedders, and the exact index (as the rest of this file). */
const CHILD_ENV = { ...REEMBED_ENV, KBQL_VECTOR_INDEX: 'exact' };

describe('re-embedding survives kill -9', { skip: !existsSync(join(SCIFACT, 'corpus.jsonl')) && 'no SciFact data' }, () => {
  let dir: string;
  let server: ServerProcess | null = null;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kbql-reembed-crash-'));
  });
  after(async () => {
    if (server) await killHard(server);
    await rm(dir, { recursive: true, force: true });
  });

  it('resumes the job after a crash and serves A until the switch', async () => {
    const oracle = new ScoreOracle();
    const claims = readClaims(4);
    server = await startServerProcess([dir], CHILD_ENV);
    let url = server.url;
    await must(url, 'mutation { createCollection(input: { name: "crash", chunking: { chunkSize: 64, chunkOverlap: 8 } }) { id } }');
    await ingest(url, 'crash', readCorpus(CORPUS_SIZE));
    const job = await must(url, 'mutation { reembedCollection(collection: "crash", embedder: "b") { id } }');
    const midway = await waitFor(
      'rebuild under way',
      async () => {
        const e = (await must(url, EMBEDDING, { c: 'crash' })).collection.embedding;
        return e.progress && e.progress.embedded > 0 ? e.progress : undefined;
      },
      30_000,
      5,
    );
    for (const q of claims)
      assert.equal(await oracle.classify(q, (await must(url, SEARCH, { c: 'crash', q, m: 'VECTOR' })).search.hits), 'A');
    await killHard(server);
    assert.ok(midway.embedded < midway.total, `killed mid-rebuild (${midway.embedded}/${midway.total})`);

    server = await startServerProcess([dir], CHILD_ENV);
    url = server.url;
    const seen: string[] = [];
    const finished = await waitFor(
      'resumed job',
      async () => {
        const e = (await must(url, EMBEDDING, { c: 'crash' })).collection.embedding;
        const label = await oracle.classify(claims[0]!, (await must(url, SEARCH, { c: 'crash', q: claims[0], m: 'VECTOR' })).search.hits);
        seen.push(`${e.state}:${label}`);
        const j = (await must(url, JOB, { id: job.reembedCollection.id })).ingestionJob;
        return j.status === 'COMPLETED' || j.failed > 0 ? j : undefined;
      },
      60_000,
      20,
    );
    assert.equal(finished.status, 'COMPLETED', JSON.stringify(finished));
    assert.ok(finished.documents.edges[0].node.runs >= 2, 'the job ran again after the crash');
    assert.ok(!seen.some((s) => s.endsWith('MIXED')), `never mixed: ${seen.join(' ')}`);
    const firstB = seen.findIndex((s) => s.endsWith(':B'));
    assert.ok(
      seen.slice(firstB === -1 ? seen.length : firstB).every((s) => s.endsWith(':B')),
      `A until the switch, then B: ${seen.join(' ')}`,
    );
    const e = (await must(url, EMBEDDING, { c: 'crash' })).collection;
    assert.equal(e.embedding.active.dimensions, 128);
    assert.equal(e.embedding.state, 'ROLLBACK_AVAILABLE');
    for (const q of claims)
      assert.equal(await oracle.classify(q, (await must(url, SEARCH, { c: 'crash', q, m: 'VECTOR' })).search.hits), 'B');
    await stopServer(server);
    server = null;
  });
});
