import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createTestApp, type TestApp, startTestServer } from '../helpers/test-app';
import { CountingEmbedder, countingStore, gql, JWT_ENV, tokenFor } from '../helpers/security';

/** `documents { edges { node { collection { … } } } }` nested until the selection is `depth` levels deep. */
function deepQuery(depth: number): string {
  let inner = 'id';
  let levels = 1;
  while (levels + 4 <= depth - 3) {
    inner = `documents { edges { node { collection { ${inner} } } } }`;
    levels += 4;
  }
  return `{ collections { edges { node { ${inner} } } } }`;
}

describe('security e2e: hostile operations are rejected before any resolver, store or embedder call', () => {
  let t: TestApp, url: string;
  let dir: string;
  const embedder = new CountingEmbedder();
  let counted: ReturnType<typeof countingStore>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-hardening-'));
    counted = countingStore(dir);
    // Tokens: enough for the 1,000-alias document to reach the alias check (the token limit has its own test).
    ({ t, url } = await startTestServer(
      { KBQL_MAX_BODY_BYTES: String(1024 * 1024), KBQL_MAX_QUERY_TOKENS: '100000' },
      { store: counted.store, embedder },
    ));
    const created = await gql(url, { query: 'mutation { createCollection(input: { name: "kb" }) { id } }' });
    assert.equal(created.status, 200);
    const ing = await gql(url, {
      query: 'mutation { ingestDocuments(collection: "kb", documents: [{ id: "a", content: "Alpha beta gamma." }]) { indexed } }',
    });
    assert.equal(ing.json.data?.['ingestDocuments'].indexed, 1);
  });
  after(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    counted.calls.clear();
    embedder.calls = 0;
  });

  const assertNothingRan = () => {
    assert.deepEqual([...counted.calls], [], 'no store call');
    assert.equal(embedder.calls, 0, 'no embedder call');
  };

  it('a query 50 levels deep → 400 QUERY_TOO_DEEP', async () => {
    const ok = await gql(url, { query: deepQuery(10) });
    assert.equal(ok.status, 200, `a moderately deep query is fine: ${JSON.stringify(ok.json)}`);
    counted.calls.clear();
    const res = await gql(url, { query: deepQuery(50) });
    assert.equal(res.status, 400);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'QUERY_TOO_DEEP');
    assert.equal(res.json.errors?.[0]?.extensions?.['maxDepth'], 12);
    assertNothingRan();
  });

  it('1,000 aliases of search → 400 QUERY_TOO_COMPLEX', async () => {
    const fields = Array.from({ length: 1000 }, (_, i) => `a${i}: search(collection: "kb", query: "alpha") { tookMs }`).join(' ');
    const res = await gql(url, { query: `{ ${fields} }` });
    assert.equal(res.status, 400);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'QUERY_TOO_COMPLEX');
    assert.equal(res.json.errors?.[0]?.extensions?.['aliases'], 1000);
    assertNothingRan();
  });

  it('cost: topK multiplies — 15 searches of topK 100 are refused, the same 15 with topK 1 run', async () => {
    const ops = (topK: number) =>
      `{ ${Array.from({ length: 15 }, (_, i) => `s${i}: search(collection: "kb", query: "alpha", topK: ${topK}) { hits { score chunk { id text index } document { id title } } }`).join(' ')} }`;
    const res = await gql(url, { query: ops(100) });
    assert.equal(res.status, 400);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'QUERY_TOO_COMPLEX');
    assert.ok((res.json.errors?.[0]?.extensions?.['cost'] as number) > 10_000);
    assertNothingRan();
    const cheap = await gql(url, { query: ops(1) });
    assert.equal(cheap.status, 200, JSON.stringify(cheap.json.errors));
    assert.ok(embedder.calls >= 1, 'the cheap one ran');
  });

  it('a fragment cycle → 400 GRAPHQL_VALIDATION_FAILED', async () => {
    const res = await gql(url, { query: '{ ...A } fragment A on Query { collections { totalCount } ...B } fragment B on Query { ...A }' });
    assert.equal(res.status, 400);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'GRAPHQL_VALIDATION_FAILED');
    assertNothingRan();
  });

  it('a 2 MB body → 413 PAYLOAD_TOO_LARGE (limit 1 MB here)', async () => {
    const big = JSON.stringify({ query: `{ search(collection: "kb", query: "${'x'.repeat(2 * 1024 * 1024)}") { tookMs } }` });
    const res = await gql(url, big);
    assert.equal(res.status, 413);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'PAYLOAD_TOO_LARGE');
    assertNothingRan();
  });

  it('batched requests are refused (batching is off)', async () => {
    const res = await gql(url, [{ query: '{ collections { totalCount } }' }, { query: '{ collections { totalCount } }' }]);
    assert.equal(res.status, 400);
    assertNothingRan();
  });
});

describe('security e2e: document size limit and CSRF prevention with authentication on', () => {
  it('a document over KBQL_MAX_DOCUMENT_BYTES fails alone with PAYLOAD_TOO_LARGE before any embedding; its neighbours are indexed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-docsize-'));
    const counted = countingStore(dir);
    const embedder = new CountingEmbedder();
    const t = await createTestApp({ ...JWT_ENV, KBQL_MAX_DOCUMENT_BYTES: '4096' }, { store: counted.store, embedder });
    try {
      const url = await t.app.listen(0, '127.0.0.1');
      const token = await tokenFor('WRITER', 'acme');
      await gql(url, { query: 'mutation { createCollection(input: { name: "kb" }) { id } }' }, token);
      const ingest =
        'mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "kb", documents: $d) { indexed failed results { status code } } }';
      embedder.calls = 0;
      const big = await gql(url, { query: ingest, variables: { d: [{ id: 'big', content: 'x'.repeat(4097) }] } }, token);
      assert.deepEqual(big.json.data?.['ingestDocuments'], {
        indexed: 0,
        failed: 1,
        results: [{ status: 'FAILED', code: 'PAYLOAD_TOO_LARGE' }],
      });
      assert.equal(embedder.calls, 0, 'nothing was embedded');
      assert.equal(counted.calls.get('upsertDocument') ?? 0, 0, 'nothing was stored');
      assert.equal(counted.calls.get('upsertDocuments') ?? 0, 0, 'nothing was stored');
      const mixed = await gql(
        url,
        {
          query: ingest,
          variables: {
            d: [
              { id: 'ok', content: 'Small and fine.' },
              { id: 'big', content: 'é'.repeat(2049) },
            ],
          },
        },
        token,
      );
      assert.deepEqual(
        mixed.json.data?.['ingestDocuments'].results,
        [
          { status: 'INDEXED', code: null },
          { status: 'FAILED', code: 'PAYLOAD_TOO_LARGE' },
        ],
        'the limit is in bytes (UTF-8), not characters',
      );
    } finally {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('CSRF prevention holds with a valid credential: a simple GET (no preflight header) is refused before anything runs', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-csrf-'));
    const counted = countingStore(dir);
    const t = await createTestApp(JWT_ENV, { store: counted.store });
    try {
      const url = await t.app.listen(0, '127.0.0.1');
      const token = await tokenFor('ADMIN', 'acme');
      const query = encodeURIComponent('{ collections { totalCount } }');
      const simple = await fetch(`${url}/graphql?query=${query}`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(simple.status, 400, 'a browser could send this cross-site with ambient credentials');
      assert.equal(counted.total(), 0);
      const form = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: 'mutation { createCollection(input: { name: "csrf" }) { id } }' }),
        signal: AbortSignal.timeout(10_000),
      });
      assert.ok(form.status >= 400 && form.status < 500, `a text/plain POST is refused (${form.status})`);
      assert.equal(counted.calls.get('createCollection') ?? 0, 0, 'no collection was created');
      const preflighted = await fetch(`${url}/graphql?query=${query}`, {
        headers: { authorization: `Bearer ${token}`, 'apollo-require-preflight': 'true' },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(preflighted.status, 200);
    } finally {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('security e2e: token limit, production errors', () => {
  it('a document over KBQL_MAX_QUERY_TOKENS (default 5,000) fails to parse; nothing runs', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-tokens-'));
    const counted = countingStore(dir);
    const embedder = new CountingEmbedder();
    const t = await createTestApp({}, { store: counted.store, embedder });
    try {
      const url = await t.app.listen(0, '127.0.0.1');
      const body = `{ ${Array.from({ length: 2000 }, (_, i) => `a${i}: collections { totalCount }`).join(' ')} }`; // 2 MB is not needed: ~10k tokens
      const res = await gql(url, { query: body });
      assert.equal(res.status, 400);
      assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'GRAPHQL_PARSE_FAILED');
      assert.match(res.json.errors?.[0]?.message ?? '', /tokens/);
      assert.equal(counted.total(), 0);
      assert.equal(embedder.calls, 0);
    } finally {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('production (NODE_ENV unset counts): no field suggestions, no introspection; internal errors masked with an errorId', async () => {
    const broken = await mkdtemp(path.join(os.tmpdir(), 'kbql-masked-'));
    const counted = countingStore(broken);
    const store = new Proxy(counted.store, {
      get(target, prop, receiver) {
        if (prop === 'listCollections')
          return async () => {
            throw new Error('disk on fire at /var/secret/path');
          };
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    // NODE_ENV is not given: the test helper's 'test' is overridden by an empty value, which counts as unset.
    const t = await createTestApp({ NODE_ENV: '', KBQL_AUTH_MODE: 'none' }, { store });
    try {
      assert.equal(t.app.config.graphql.introspection, false);
      const url = await t.app.listen(0, '127.0.0.1');
      const typo = await gql(url, { query: '{ colections { totalCount } }' });
      assert.equal(typo.status, 400);
      assert.doesNotMatch(typo.json.errors?.[0]?.message ?? '', /Did you mean/);
      const intro = await gql(url, { query: '{ __schema { types { name } } }' });
      assert.equal(intro.json.errors?.[0]?.extensions?.['code'], 'GRAPHQL_VALIDATION_FAILED');
      const masked = await gql(url, { query: '{ collections { totalCount } }' });
      const error = masked.json.errors?.[0];
      assert.equal(error?.extensions?.['code'], 'INTERNAL_SERVER_ERROR');
      assert.match(String(error?.extensions?.['errorId']), /^[0-9a-f-]{36}$/);
      assert.doesNotMatch(JSON.stringify(masked.json), /disk on fire|secret|stacktrace/);
    } finally {
      await t.close();
      await rm(broken, { recursive: true, force: true });
    }
  });
});
