import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { AnnBuilderThread } from '../../src/adapters/embedded/ann-builder';
import { AnnIndex, type AnnIndexOptions } from '../../src/adapters/embedded/ann-index';
import { sidecarPath } from '../../src/adapters/embedded/ann-file';
import { VectorIndex, type VectorMatch } from '../../src/adapters/embedded/vector-index';
import { CRASH_ANN, crashChunkId, crashRows, roundChanges } from '../helpers/ann-crash.child';
import { mulberry32 } from '../helpers/fixtures';

const D = 48;
const N = 3000;
const CLUSTERS = 60;
const K = 10;

/** Clustered unit-ish vectors (like embeddings: topics with spread), seeded. */
function clustered(n: number, seed: number): { vectors: Float32Array[]; centres: Float32Array[] } {
  const rng = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rng() + 1e-12)) * Math.cos(2 * Math.PI * rng());
  const centres = Array.from({ length: CLUSTERS }, () => Float32Array.from({ length: D }, gauss));
  const vectors = Array.from({ length: n }, (_, i) => {
    const c = centres[i % CLUSTERS]!;
    return Float32Array.from(c, (x) => x + 0.6 * gauss());
  });
  return { vectors, centres };
}

/** Queries near the data: a row's vector plus noise. */
function queriesFor(vectors: Float32Array[], count: number, seed: number): Float32Array[] {
  const rng = mulberry32(seed);
  return Array.from({ length: count }, () => {
    const v = vectors[Math.floor(rng() * vectors.length)]!;
    return Float32Array.from(v, (x) => x + 0.3 * (rng() - 0.5));
  });
}

const chunkId = (rowId: number) => `chunk-${String(rowId).padStart(6, '0')}`;
const dirs: string[] = [];
const open: AnnIndex[] = [];

function makeDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kbql-ann-test-'));
  dirs.push(dir);
  return dir;
}

function ann(path: string, options: Partial<AnnIndexOptions> = {}): AnnIndex {
  const index = new AnnIndex({ dimensions: D, path, embedder: 'test-embedder', exactBelowRows: 500, saveIntervalMs: 0, ...options });
  open.push(index);
  return index;
}

function exactOf(rows: Map<number, Float32Array>): VectorIndex {
  const exact = new VectorIndex(D);
  for (const [rowId, v] of rows) exact.add(rowId, chunkId(rowId), v);
  return exact;
}

function recall(got: VectorMatch[][], truth: VectorMatch[][]): number {
  let hits = 0;
  let total = 0;
  got.forEach((g, i) => {
    const t = new Set(truth[i]!.map((m) => m.rowId));
    hits += g.filter((m) => t.has(m.rowId)).length;
    total += t.size;
  });
  return hits / total;
}

/** An index over the rows 0..n-1 of `vectors`, opened and fully indexed. */
async function built(path: string, vectors: Float32Array[], options: Partial<AnnIndexOptions> = {}): Promise<AnnIndex> {
  const index = ann(path, options);
  vectors.forEach((v, rowId) => index.add(rowId, chunkId(rowId), v));
  await index.open();
  await index.flush();
  return index;
}

// A flush that never settles is a failure, not a hang.
describe('AnnIndex', { timeout: 30_000 }, () => {
  afterEach(async () => {
    await Promise.all(open.splice(0).map((index) => index.close()));
  });
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('finds the exact top 10 at recall ≥ 0.95, with the exact index’s scores, through the graph', async () => {
    const { vectors } = clustered(N, 1);
    const index = await built(join(makeDir(), 'a.usearch'), vectors);
    const stats = index.stats();
    assert.equal(stats.indexed, N);
    assert.equal(stats.tail, 0);
    assert.equal(stats.indexedFraction, 1);
    assert.equal(stats.graphRows, N);
    const exact = exactOf(new Map(vectors.map((v, i) => [i, v])));
    const queries = queriesFor(vectors, 100, 2);
    const got = queries.map((q) => index.search(q, K));
    assert.deepEqual(index.stats().searches, { graph: 100, exact: 0, refills: 0, fallbacks: 0 });
    const truth = queries.map((q) => exact.search(q, K));
    assert.ok(got.every((g) => g.length === K));
    const r = recall(got, truth);
    assert.ok(r >= 0.95, `recall@10 ${r}`);
    // Re-ranked exactly: a row returned by both has the same score, bit for bit.
    for (let i = 0; i < queries.length; i++) {
      const exactScores = exact.scoreRows(
        queries[i]!,
        got[i]!.map((m) => m.rowId),
      );
      assert.deepEqual(
        got[i]!.map((m) => m.score),
        exactScores,
      );
      assert.deepEqual(
        got[i]!.map((m) => m.chunkId),
        got[i]!.map((m) => chunkId(m.rowId)),
      );
    }
  });

  it('never returns a deleted row, before or after the graph catches up', async () => {
    const { vectors } = clustered(N, 3);
    const index = await built(join(makeDir(), 'a.usearch'), vectors);
    const queries = queriesFor(vectors, 40, 4);
    const deleted = new Set<number>();
    for (const q of queries) for (const m of index.search(q, 3)) deleted.add(m.rowId);
    for (const rowId of deleted) assert.equal(index.remove(rowId), true);
    assert.equal(index.remove(deleted.values().next().value!), false);
    assert.ok(index.stats().tombstones >= deleted.size, 'the graph still holds them');
    const check = () => {
      for (const q of queries) {
        const got = index.search(q, K);
        assert.equal(got.length, K);
        for (const m of got) assert.ok(!deleted.has(m.rowId), `deleted row ${m.rowId} returned`);
      }
    };
    check();
    await index.flush();
    assert.equal(index.stats().tombstones, 0);
    assert.equal(index.stats().graphRows, N - deleted.size);
    check();
  });

  it('serves a re-added row with its new vector at once and after indexing', async () => {
    const { vectors } = clustered(N, 5);
    const index = await built(join(makeDir(), 'a.usearch'), vectors);
    const target = queriesFor(vectors, 1, 6)[0]!;
    const far = Float32Array.from(target, (x) => -x);
    const rowId = index.search(target, 1)[0]!.rowId;
    index.add(rowId, chunkId(rowId), far);
    assert.notEqual(index.search(target, 1)[0]!.rowId, rowId, 'the old vector no longer matches');
    const check = () => {
      const hit = index.search(far, 1)[0]!;
      assert.equal(hit.rowId, rowId);
      assert.ok(Math.abs(hit.score - 1) < 1e-6);
    };
    check();
    await index.flush();
    check();
    assert.notEqual(index.search(target, 1)[0]!.rowId, rowId);

    // Moved a little: the graph still proposes the row for its old place; it must come back once, with its new score.
    const other = index.search(target, 1)[0]!.rowId;
    const nudged = index.search(target, K).map((m) => m.rowId);
    index.add(
      other,
      chunkId(other),
      target.map((x) => x + 0.05),
    );
    const hits = index.search(target, K);
    assert.equal(new Set(hits.map((m) => m.rowId)).size, hits.length, 'a row returned twice');
    assert.equal(hits[0]!.rowId, other);
    assert.ok(nudged.includes(other));
  });

  it('searches rows not yet in the graph (the tail) exactly, merged with graph hits', async () => {
    const { vectors } = clustered(N + 200, 7);
    const index = await built(join(makeDir(), 'a.usearch'), vectors.slice(0, N));
    for (let rowId = N; rowId < N + 200; rowId++) index.add(rowId, chunkId(rowId), vectors[rowId]!);
    const stats = index.stats();
    assert.equal(stats.tail, 200);
    assert.equal(stats.indexed, N);
    assert.equal(stats.graphRows, N);
    const exact = exactOf(new Map(vectors.map((v, i) => [i, v])));
    for (let rowId = N; rowId < N + 200; rowId += 20) {
      const got = index.search(vectors[rowId]!, K);
      assert.equal(got[0]!.rowId, rowId);
    }
    const queries = queriesFor(vectors, 60, 8);
    assert.ok(
      recall(
        queries.map((q) => index.search(q, K)),
        queries.map((q) => exact.search(q, K)),
      ) >= 0.95,
    );
    await index.flush();
    assert.equal(index.stats().tail, 0);
    assert.equal(index.stats().graphRows, N + 200);
  });

  it('returns exactly the k best allowed rows for selective and non-selective filters', async () => {
    const { vectors } = clustered(N, 9);
    // At most 50 allowed rows (or 5%) are scanned exactly; more go through the graph.
    const index = await built(join(makeDir(), 'a.usearch'), vectors, { filterExactRows: 50 });
    const exact = exactOf(new Map(vectors.map((v, i) => [i, v])));
    const queries = queriesFor(vectors, 40, 10);
    const rng = mulberry32(11);
    const cases: { name: string; allowed: number[]; minRecall: number; path: 'exact' | 'graph' | 'refills' }[] = [
      // 1%: below the exact threshold, scanned exactly.
      { name: 'selective (1%)', allowed: vectors.map((_, i) => i).filter(() => rng() < 0.01), minRecall: 1, path: 'exact' },
      { name: 'non-selective (50%)', allowed: vectors.map((_, i) => i).filter(() => rng() < 0.5), minRecall: 0.95, path: 'graph' },
      // A third of the clusters: near most queries nothing is allowed, so the graph must be asked again and again.
      {
        name: 'far clusters (33%)',
        allowed: vectors.map((_, i) => i).filter((i) => i % CLUSTERS < CLUSTERS / 3),
        minRecall: 0.95,
        path: 'refills',
      },
      { name: 'sparse (6%)', allowed: vectors.map((_, i) => i).filter(() => rng() < 0.06), minRecall: 0.95, path: 'graph' },
    ];
    for (const { name, allowed, minRecall, path } of cases) {
      const allowedSet = new Set(allowed);
      const before = index.stats().searches;
      const got = queries.map((q) => index.search(q, K, allowed));
      const after = index.stats().searches;
      assert.ok(after[path] - before[path] >= (path === 'refills' ? 10 : queries.length), `${name}: ${JSON.stringify(after)}`);
      const truth = queries.map((q) => exact.search(q, K, allowed));
      for (const g of got) {
        assert.equal(g.length, Math.min(K, allowed.length), name);
        for (const m of g) assert.ok(allowedSet.has(m.rowId), `${name}: row ${m.rowId} is not allowed`);
      }
      const r = recall(got, truth);
      assert.ok(r >= minRecall, `${name}: recall ${r}`);
      if (minRecall === 1) assert.deepEqual(got, truth, name);
      // A Set and a one-shot iterable are accepted as well as an array.
      assert.deepEqual(index.search(queries[0]!, K, allowedSet), got[0], name);
      assert.deepEqual(index.search(queries[0]!, K, allowed.values()), got[0], name);
    }
    assert.deepEqual(index.search(queries[0]!, K, []), []);
    assert.deepEqual(index.search(queries[0]!, K, [123_456_789]), []);
  });

  it('saves beside the database and maps the file at the next start', async () => {
    const path = join(makeDir(), 'a.usearch');
    const { vectors } = clustered(N, 12);
    const first = await built(path, vectors);
    const queries = queriesFor(vectors, 30, 13);
    const before = queries.map((q) => first.search(q, K));
    await first.close({ save: true });
    assert.ok(statSync(path).size > 0);
    assert.ok(statSync(sidecarPath(path)).size > 0);

    const second = ann(path);
    vectors.forEach((v, rowId) => second.add(rowId, chunkId(rowId), v));
    const opened = await second.open();
    assert.equal(opened.status, 'loaded', opened.detail);
    assert.equal(opened.indexed, N);
    assert.equal(opened.pending, 0);
    assert.deepEqual(second.stats().indexedFraction, 1);
    assert.deepEqual(
      queries.map((q) => second.search(q, K)),
      before,
    );
  });

  it('skips checking each row when the file was saved at the source version it is opened with', async () => {
    const path = join(makeDir(), 'a.usearch');
    const { vectors } = clustered(N, 22);
    const first = ann(path);
    vectors.forEach((v, rowId) => first.add(rowId, chunkId(rowId), v));
    await first.open({ sourceVersion: 7 });
    await first.flush();
    first.remove(5);
    first.setSourceVersion(8);
    await first.flush();
    await first.close({ save: true });
    const rows = new Map(vectors.map((v, rowId) => [rowId, v]));
    rows.delete(5);

    const same = ann(path);
    for (const [rowId, v] of rows) same.add(rowId, chunkId(rowId), v);
    const trusted = await same.open({ sourceVersion: 8 });
    assert.equal(trusted.status, 'loaded', trusted.detail);
    assert.deepEqual([trusted.verified, trusted.indexed, trusted.pending], [0, N - 1, 0]);
    await same.close();

    // Another version: every row is checked, and the one that changed is found by its new vector.
    rows.set(
      6,
      rows.get(6)!.map((x) => -x),
    );
    const other = ann(path);
    for (const [rowId, v] of rows) other.add(rowId, chunkId(rowId), v);
    const checked = await other.open({ sourceVersion: 9 });
    assert.deepEqual([checked.status, checked.verified, checked.indexed, checked.pending], ['loaded', N - 1, N - 2, 1]);
    assert.equal(other.search(rows.get(6)!, 1)[0]!.rowId, 6);
  });

  it('finds rows that changed after the save (deleted, re-used row ids, new) when it loads the file', async () => {
    const path = join(makeDir(), 'a.usearch');
    const { vectors } = clustered(N + 50, 14);
    const first = await built(path, vectors.slice(0, N));
    await first.close({ save: true });

    // As after a crash: SQLite moved on without the graph. Rows 0-9 deleted; rows 10-19 re-used for new chunks.
    const second = ann(path);
    const current = new Map<number, Float32Array>();
    for (let rowId = 10; rowId < N + 50; rowId++)
      current.set(rowId, rowId < 20 ? vectors[N + 50 - rowId]!.map((x) => -x) : vectors[rowId]!);
    for (const [rowId, v] of current) second.add(rowId, chunkId(rowId), v);
    const opened = await second.open();
    assert.equal(opened.status, 'loaded', opened.detail);
    assert.equal(opened.pending, 10 + 50);
    assert.equal(opened.indexed, N - 20);
    assert.equal(second.stats().tombstones, 20);
    const exact = exactOf(current);
    for (let rowId = 10; rowId < 20; rowId++) assert.equal(second.search(current.get(rowId)!, 1)[0]!.rowId, rowId);
    const queries = queriesFor(vectors, 50, 15);
    for (const q of queries) for (const m of second.search(q, K)) assert.ok(m.rowId >= 10, `deleted row ${m.rowId} returned`);
    assert.ok(
      recall(
        queries.map((q) => second.search(q, K)),
        queries.map((q) => exact.search(q, K)),
      ) >= 0.95,
    );
    await second.flush();
    assert.equal(second.stats().tail, 0);
    assert.equal(second.stats().tombstones, 0);
  });

  for (const damage of ['graph bytes flipped', 'graph truncated', 'sidecar truncated', 'sidecar garbage'] as const) {
    it(`ignores a damaged file (${damage}): exact search at once, rebuilt in the background`, async () => {
      const path = join(makeDir(), 'a.usearch');
      const { vectors } = clustered(N, 16);
      const first = await built(path, vectors);
      await first.close({ save: true });
      const target = damage.startsWith('graph') ? path : sidecarPath(path);
      const bytes = readFileSync(target);
      if (damage === 'graph bytes flipped') {
        for (let i = bytes.length >> 1; i < (bytes.length >> 1) + 64; i++) bytes[i] = bytes[i]! ^ 0xff;
        writeFileSync(target, bytes);
      } else if (damage === 'sidecar garbage') {
        writeFileSync(target, Buffer.from('not a kbql ANN sidecar at all'));
      } else {
        writeFileSync(target, bytes.subarray(0, bytes.length - 100));
      }

      const second = ann(path);
      vectors.forEach((v, rowId) => second.add(rowId, chunkId(rowId), v));
      const opened = await second.open();
      assert.equal(opened.status, 'corrupt', opened.detail);
      assert.equal(second.stats().indexed, 0);
      const exact = exactOf(new Map(vectors.map((v, i) => [i, v])));
      const queries = queriesFor(vectors, 20, 17);
      assert.deepEqual(
        queries.map((q) => second.search(q, K)),
        queries.map((q) => exact.search(q, K)),
        'exact until rebuilt',
      );
      await second.flush();
      assert.equal(second.stats().indexedFraction, 1);
      assert.equal(second.stats().rebuilding, false);
      await second.close({ save: true });
      const third = ann(path);
      vectors.forEach((v, rowId) => third.add(rowId, chunkId(rowId), v));
      assert.equal((await third.open()).status, 'loaded', 'the rebuilt file replaced the damaged one');
    });
  }

  it('refuses a file built by another embedder or with another quantisation', async () => {
    const path = join(makeDir(), 'a.usearch');
    const { vectors } = clustered(N, 18);
    await (await built(path, vectors)).close({ save: true });
    for (const options of [{ embedder: 'another-embedder' }, { quantization: 'f16' as const }, { connectivity: 8 }]) {
      const other = ann(path, options);
      vectors.forEach((v, rowId) => other.add(rowId, chunkId(rowId), v));
      const opened = await other.open();
      assert.equal(opened.status, 'mismatch', JSON.stringify(options));
      assert.equal(opened.indexed, 0);
      await other.close();
    }
  });

  it('builds no graph for a small collection, and one once it grows past the threshold', async () => {
    const path = join(makeDir(), 'a.usearch');
    const { vectors } = clustered(800, 19);
    const index = ann(path);
    for (let rowId = 0; rowId < 400; rowId++) index.add(rowId, chunkId(rowId), vectors[rowId]!);
    const opened = await index.open();
    assert.equal(opened.status, 'small');
    await index.flush();
    assert.equal(index.stats().graphRows, 0);
    assert.throws(() => statSync(path), /ENOENT/);
    for (let rowId = 400; rowId < 800; rowId++) index.add(rowId, chunkId(rowId), vectors[rowId]!);
    await index.flush();
    assert.equal(index.stats().graphRows, 800);
    assert.equal(index.stats().indexedFraction, 1);
  });

  it('indexes changes once writes pause, or at once when their tail is long; the tail is searched exactly meanwhile', async () => {
    const { vectors } = clustered(1600, 23);
    const tailWithin = async (index: AnnIndex, ms: number): Promise<number> => {
      const until = Date.now() + ms;
      while (index.stats().tail > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      return index.stats().tail;
    };
    const quiet = await built(join(makeDir(), 'a.usearch'), vectors.slice(0, 1000), { quietMs: 400 });
    for (let rowId = 1000; rowId < 1200; rowId++) quiet.add(rowId, chunkId(rowId), vectors[rowId]!);
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(quiet.stats().tail, 200, 'nothing indexed while writes are recent');
    assert.equal(quiet.search(vectors[1100]!, 1)[0]!.rowId, 1100, 'the tail is searched exactly');
    assert.equal(await tailWithin(quiet, 10_000), 0, 'indexed once the writes paused, without a flush');

    const long = await built(join(makeDir(), 'b.usearch'), vectors.slice(0, 1000), { quietMs: 600_000, busyTailRows: 100 });
    for (let rowId = 1000; rowId < 1300; rowId++) long.add(rowId, chunkId(rowId), vectors[rowId]!);
    assert.equal(await tailWithin(long, 10_000), 0, 'a tail past busyTailRows is indexed without waiting for a pause');

    const flushed = await built(join(makeDir(), 'c.usearch'), vectors.slice(0, 1000), { quietMs: 600_000 });
    for (let rowId = 1000; rowId < 1050; rowId++) flushed.add(rowId, chunkId(rowId), vectors[rowId]!);
    await flushed.flush();
    assert.equal(flushed.stats().tail, 0, 'a flush does not wait for a pause');
  });

  it('catches up after its builder thread dies mid-way, serving the tail exactly meanwhile', async () => {
    const thread = new AnnBuilderThread();
    const errors: Error[] = [];
    const { vectors } = clustered(N + 300, 21);
    const index = await built(join(makeDir(), 'a.usearch'), vectors.slice(0, N), { builder: thread, onError: (e) => errors.push(e) });
    for (let rowId = N; rowId < N + 300; rowId++) index.add(rowId, chunkId(rowId), vectors[rowId]!);
    await new Promise((resolve) => setImmediate(resolve));
    await thread.close();
    assert.equal(index.search(vectors[N + 7]!, 1)[0]!.rowId, N + 7);
    await index.flush();
    assert.ok(errors.length > 0, 'the failure was reported');
    assert.equal(index.stats().tail, 0);
    assert.equal(index.stats().graphRows, N + 300);
    assert.equal(index.search(vectors[N + 7]!, 1)[0]!.rowId, N + 7);
    await index.close();
    await thread.close();
  });

  it('serves correct results after kill -9 during indexing, and catches up', async (t) => {
    const path = join(makeDir(), 'a.usearch');
    // Two kills on the same file: the second child starts from whatever the first one left.
    for (const killAfterRound of [150, 400]) {
      const round = await runCrashChildAndKill(path, killAfterRound);
      const rows = crashRows(round);
      const reopened = new AnnIndex({
        dimensions: CRASH_ANN.dimensions,
        path,
        embedder: CRASH_ANN.embedder,
        exactBelowRows: CRASH_ANN.exactBelowRows,
        saveIntervalMs: 0,
      });
      open.push(reopened);
      for (const [rowId, v] of rows) reopened.add(rowId, crashChunkId(rowId), v);
      const opened = await reopened.open();
      assert.ok(['loaded', 'missing', 'corrupt'].includes(opened.status), opened.detail);
      t.diagnostic(
        `killed after round ${round}: ${opened.status} (${opened.detail}), ${opened.indexed} indexed, ${opened.pending} pending`,
      );
      const exact = new VectorIndex(CRASH_ANN.dimensions);
      for (const [rowId, v] of rows) exact.add(rowId, crashChunkId(rowId), v);
      const queries = queriesFor([...rows.values()], 40, killAfterRound);
      const check = () => {
        const got = queries.map((q) => reopened.search(q, K));
        for (const g of got) for (const m of g) assert.ok(rows.has(m.rowId), `row ${m.rowId} is not in the database`);
        assert.ok(
          recall(
            got,
            queries.map((q) => exact.search(q, K)),
          ) >= 0.95,
        );
        // The rows of the last rounds (re-used ids among them) are found by their current vectors.
        for (const rowId of roundChanges(round).upserted) assert.equal(reopened.search(rows.get(rowId)!, 1)[0]!.rowId, rowId);
      };
      check();
      await reopened.flush();
      const stats = reopened.stats();
      assert.deepEqual([stats.tail, stats.tombstones, stats.graphRows], [0, 0, rows.size]);
      check();
      await reopened.close();
    }
  });

  it('lets the builder drop its copy of the graph when idle, and load it again for the next change', async () => {
    const { vectors } = clustered(N + 1, 23);
    const index = await built(join(makeDir(), 'a.usearch'), vectors.slice(0, N), { builderIdleMs: 30 });
    assert.equal(index.stats().builderLoaded, true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(index.stats().builderLoaded, false);
    index.add(N, chunkId(N), vectors[N]!);
    await index.flush();
    assert.deepEqual([index.stats().builderLoaded, index.stats().graphRows, index.stats().tail], [true, N + 1, 0]);
    assert.equal(index.search(vectors[N]!, 1)[0]!.rowId, N);
  });

  it('rebuilds the graph once removals pass the compaction fraction', async () => {
    const path = join(makeDir(), 'a.usearch');
    const { vectors } = clustered(N, 20);
    const index = await built(path, vectors, { compactFraction: 0.1 });
    const savesBefore = index.stats().saves;
    for (let rowId = 0; rowId < 400; rowId++) index.remove(rowId);
    // Waits for the removals, then for the rebuild they trigger.
    await index.flush();
    assert.equal(index.stats().rebuilding, false);
    const stats = index.stats();
    assert.ok(stats.saves >= savesBefore + 2, `saves ${stats.saves}`);
    assert.equal(stats.graphRows, N - 400);
    assert.equal(stats.indexedFraction, 1);
  });
});

/** Runs the crash child on `path` and SIGKILLs it once it has committed `killAfterRound` rounds; the last round it reported. */
function runCrashChildAndKill(path: string, killAfterRound: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(__dirname, '..', 'helpers', 'ann-crash.child.js'), path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let round = 0;
    let buffered = '';
    child.stdout.on('data', (data: Buffer) => {
      buffered += data.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const match = /^round (\d+)$/.exec(line);
        if (match) round = Number(match[1]);
      }
      if (round >= killAfterRound) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(round) : reject(new Error(`crash child exited with ${code}`))));
  });
}
