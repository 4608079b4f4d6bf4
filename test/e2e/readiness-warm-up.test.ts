import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { METRICS } from '../../src/observability/metrics';
import { parseSamples, sampleValue } from '../helpers/prometheus-text';
import { startTestServer } from '../helpers/test-app';

/** A store whose warm-up waits for the test to open a gate, so the not-ready window can be observed. */
class GatedStore extends EmbeddedKnowledgeStore {
  open!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));

  override async warmUp(): Promise<void> {
    await this.gate;
    await super.warmUp();
  }

  override warmUpState() {
    const state = super.warmUpState();
    return { ...state, warming: state.warming || state.warmMs === null };
  }
}

describe('/readyz and metrics while the vector indexes load at start-up', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 (vectorIndex down, /healthz 200) until the indexes are loaded, then 200 with their coverage', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'kbql-ready-warm-'));
    dirs.push(dataDir);
    const store = new GatedStore({ dataDir });
    const { t, url } = await startTestServer({}, { store });
    try {
      const ready = async () => {
        const res = await fetch(`${url}/readyz`);
        return {
          code: res.status,
          body: (await res.json()) as { checks: Record<string, { status: string; error?: string; detail?: unknown }> },
        };
      };
      const metric = async (name: string, labels: Record<string, string> = {}) =>
        sampleValue(parseSamples(await (await fetch(`${url}/metrics`)).text()), name, labels);

      let r = await ready();
      assert.equal(r.code, 503);
      assert.equal(r.body.checks.vectorIndex!.status, 'down');
      assert.match(r.body.checks.vectorIndex!.error ?? '', /loading vector indexes/);
      assert.equal((await fetch(`${url}/healthz`)).status, 200, 'alive meanwhile');
      assert.equal(await metric(METRICS.vectorIndexWarming), 1);

      store.open();
      for (let i = 0; i < 200 && r.code !== 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        r = await ready();
      }
      assert.equal(r.code, 200);
      assert.deepEqual(r.body.checks.vectorIndex!.detail, { chunks: 0, indexedFraction: 1 });
      assert.equal(await metric(METRICS.vectorIndexWarming), 0);

      // After an ingest, the loaded index counts its rows.
      const created = await t.execute('mutation { createCollection(input: { name: "w" }) { id } }');
      assert.ok(!created.errors, JSON.stringify(created.errors));
      const ingested = await t.execute(
        'mutation { ingestDocuments(collection: "w", documents: [{ id: "a", content: "Warm indexes answer fast." }]) { indexed } }',
      );
      assert.ok(!ingested.errors, JSON.stringify(ingested.errors));
      const searched = await t.execute('{ search(collection: "w", query: "warm", mode: VECTOR) { hits { score } } }');
      assert.ok(!searched.errors, JSON.stringify(searched.errors));
      r = await ready();
      assert.deepEqual(r.body.checks.vectorIndex!.detail, { chunks: 1, indexedFraction: 1 });
      assert.equal(await metric(METRICS.vectorIndexRows, { state: 'indexed' }), 1);
      assert.equal(await metric(METRICS.vectorIndexRows, { state: 'pending' }), 0);
    } finally {
      await t.close();
    }
  });
});
