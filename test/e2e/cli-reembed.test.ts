import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kbql, show } from '../helpers/cli';
import { sampleDocument } from '../helpers/jobs-fixtures';
import { REEMBED_ENV } from '../helpers/reembed-env';
import { createTestApp, dataOf, type TestApp } from '../helpers/test-app';

describe('named embedders: CLI, /readyz, createCollection', () => {
  let t: TestApp, base: string, url: string, dir: string;

  before(async () => {
    t = await createTestApp({ ...REEMBED_ENV });
    base = await t.app.listen(0, '127.0.0.1');
    url = `${base}/graphql`;
    dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-cli-reembed-'));
  });
  after(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports each named embedder in /readyz', async () => {
    const report = (await (await fetch(`${base}/readyz`)).json()) as { checks: Record<string, { status: string; critical: boolean }> };
    assert.deepEqual(report.checks['embedder:b'], { ...report.checks['embedder:b'], status: 'up', critical: false });
  });

  it('creates a collection on a named embedder, refuses an unknown one', async () => {
    const made = dataOf(
      await t.execute<{ createCollection: { embedding: { active: { fingerprint: string } } } }>(
        'mutation { createCollection(input: { name: "small", embedder: "b" }) { embedding { active { fingerprint } } } }',
      ),
    );
    assert.equal(made.createCollection.embedding.active.fingerprint, 'hash:kbql-hash-v1/128/l2');
    const bad = await t.execute('mutation { createCollection(input: { name: "nope", embedder: "missing" }) { id } }');
    assert.equal(bad.errors?.[0]?.extensions?.['code'], 'BAD_USER_INPUT');
    assert.equal(bad.errors?.[0]?.extensions?.['reason'], 'UNKNOWN_EMBEDDER');
  });

  it('kbql collections reembed --wait switches; kbql collections rollback goes back once', async () => {
    let r = await kbql(['collections', 'create', 'notes', '--url', url], dir);
    assert.equal(r.code, 0, show(r));
    dataOf(
      await t.execute('mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "notes", documents: $d) { indexed } }', {
        d: Array.from({ length: 30 }, (_, i) => sampleDocument(i)),
      }),
    );
    r = await kbql(['collections', 'reembed', 'notes', '--embedder', 'same-as-default', '--url', url], dir);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /UNKNOWN_EMBEDDER|No embedder is configured/, show(r));
    r = await kbql(['collections', 'reembed', 'notes', '--embedder', 'b', '--wait', '--url', url], dir);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /switched "notes" to hash:kbql-hash-v1\/128\/l2; rollback until /, show(r));
    r = await kbql(['collections', 'rollback', 'notes', '--url', url], dir);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /rolled "notes" back to hash:kbql-hash-v1\/256\/l2/, show(r));
    r = await kbql(['collections', 'rollback', 'notes', '--url', url], dir);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /no previous embedding/, show(r));
  });
});
