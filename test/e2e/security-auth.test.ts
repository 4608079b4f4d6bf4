import assert from 'node:assert/strict';
import { createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestApp } from '../helpers/test-app';
import { gql, JWT_AUDIENCE, JWT_ENV, JWT_ISSUER, JWT_SECRET, tokenFor } from '../helpers/security';

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({
  sub: 'mallory',
  iss: JWT_ISSUER,
  aud: JWT_AUDIENCE,
  iat: now(),
  exp: now() + 600,
  kbql_role: 'ADMIN',
  kbql_tenant: 'acme',
  ...extra,
});
/** A compact JWS signed with HMAC-SHA256 over any key bytes (the attacker's tool). */
function hs256(
  payload: Record<string, unknown>,
  key: string | Buffer,
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' },
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}
export function rs256(payload: Record<string, unknown>, privateKey: KeyObject, kid: string): string {
  const input = `${b64({ alg: 'RS256', typ: 'JWT', kid })}.${b64(payload)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
}

const QUERY_COLLECTIONS = '{ collections { totalCount edges { node { id name } } } }';

describe('security e2e: JWT authentication over real HTTP (HS256 secret)', () => {
  let t: TestApp, url: string;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

  before(async () => {
    ({ t, url } = await startTestServer(JWT_ENV));
  });
  after(() => t.close());

  it('a valid token works; every kind of bad token is 401 UNAUTHENTICATED before anything runs', async () => {
    const ok = await gql(url, { query: QUERY_COLLECTIONS }, await tokenFor('READER', 'acme'));
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.data?.['collections'].totalCount, 0);

    const bad: Record<string, string> = {
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`,
      'alg none, signature kept': `${b64({ alg: 'none' })}.${b64(claims())}.${hs256(claims(), JWT_SECRET).split('.')[2]}`,
      'RS256 (an algorithm not pinned)': rs256(claims(), rsa.privateKey, 'k1'),
      expired: hs256(claims({ exp: now() - 3600 }), JWT_SECRET),
      'missing exp': hs256((({ exp: _exp, ...rest }) => rest)(claims()), JWT_SECRET),
      'wrong audience': hs256(claims({ aud: 'another-api' }), JWT_SECRET),
      'wrong issuer': hs256(claims({ iss: 'https://evil.example' }), JWT_SECRET),
      'bad signature': hs256(claims(), 'not-the-secret-not-the-secret-not-the-secret'),
      'missing role': hs256(claims({ kbql_role: undefined }), JWT_SECRET),
      'unknown role': hs256(claims({ kbql_role: 'ROOT' }), JWT_SECRET),
      'missing tenant': hs256(claims({ kbql_tenant: undefined }), JWT_SECRET),
      garbage: 'not.a.jwt',
    };
    for (const [name, token] of Object.entries(bad)) {
      const res = await gql(url, { query: QUERY_COLLECTIONS }, token);
      assert.equal(res.status, 401, `${name}: ${JSON.stringify(res.json)}`);
      assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'UNAUTHENTICATED', name);
      assert.equal(res.json.data, undefined, `${name}: no data`);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/, name);
    }
    const malformed = await gql(url, { query: QUERY_COLLECTIONS }, undefined, { authorization: 'Basic YTpi' });
    assert.equal(malformed.status, 401);
  });

  it('without a token only public fields answer: _service works, everything else is 401', async () => {
    const sdl = await gql(url, { query: '{ _service { sdl } }' });
    assert.equal(sdl.status, 200);
    assert.match(sdl.json.data?.['_service'].sdl, /@auth\(requires: WRITER\)/);
    const denied = await gql(url, { query: QUERY_COLLECTIONS });
    assert.equal(denied.status, 401);
    assert.equal(denied.json.errors?.[0]?.extensions?.['code'], 'UNAUTHENTICATED');
    const entities = await gql(url, { query: '{ _entities(representations: [{ __typename: "Collection", id: "x" }]) { __typename } }' });
    assert.equal(entities.status, 401);
  });

  it('a READER calling WRITER and ADMIN mutations gets 403 FORBIDDEN and changes nothing', async () => {
    const reader = await tokenFor('READER', 'roles');
    const writer = await tokenFor('WRITER', 'roles');
    const created = await gql(url, { query: 'mutation { createCollection(input: { name: "kept" }) { id } }' }, writer);
    assert.equal(created.status, 200, JSON.stringify(created.json));
    const id = created.json.data?.['createCollection'].id as string;

    const attempts = [
      'mutation { createCollection(input: { name: "sneaky" }) { id } }',
      `mutation { updateCollection(id: "${id}", input: { name: "renamed" }) { id } }`,
      `mutation { ingestDocuments(collection: "kept", documents: [{ id: "x", content: "reader was here" }]) { indexed } }`,
    ];
    for (const query of attempts) {
      const res = await gql(url, { query }, reader);
      assert.equal(res.status, 403, query);
      assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');
      assert.equal(res.json.errors?.[0]?.extensions?.['requires'], 'WRITER');
    }
    const del = await gql(url, { query: `mutation { deleteCollection(id: "${id}") { id } }` }, writer);
    assert.equal(del.status, 403, 'deleting a collection needs ADMIN');
    assert.equal(del.json.errors?.[0]?.extensions?.['requires'], 'ADMIN');

    const after = await gql(url, { query: '{ collections { edges { node { name stats { documents } } } } }' }, reader);
    assert.deepEqual(
      after.json.data?.['collections'].edges.map((e: any) => [e.node.name, e.node.stats.documents]),
      [['kept', 0]],
      'no side effect',
    );
  });
});

describe('security e2e: tenant isolation over real HTTP', () => {
  let t: TestApp, url: string;
  let alice: string; // tenant a, WRITER
  let bob: string; // tenant b, ADMIN
  const ids = { collection: '', document: '', chunk: '' };

  before(async () => {
    ({ t, url } = await startTestServer(JWT_ENV));
    alice = await tokenFor('WRITER', 'tenant-a');
    bob = await tokenFor('ADMIN', 'tenant-b');
    for (const [token, text] of [
      [alice, 'Alpha secret: the vault code is 4711.'],
      [bob, 'Bravo notes: lunch is at noon.'],
    ] as const) {
      const c = await gql(url, { query: 'mutation { createCollection(input: { name: "kb" }) { id } }' }, token);
      assert.equal(c.status, 200, `the same name in another tenant is allowed: ${JSON.stringify(c.json)}`);
      const ing = await gql(
        url,
        {
          query:
            'mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "kb", documents: $d) { indexed results { document { id } } } }',
          variables: { d: [{ id: 'doc', content: text }] },
        },
        token,
      );
      assert.equal(ing.json.data?.['ingestDocuments'].indexed, 1, JSON.stringify(ing.json));
    }
    const mine = await gql(
      url,
      { query: '{ collection(name: "kb") { id documents { edges { node { id chunks { edges { node { id } } } } } } } }' },
      alice,
    );
    ids.collection = mine.json.data?.['collection'].id;
    ids.document = mine.json.data?.['collection'].documents.edges[0].node.id;
    ids.chunk = mine.json.data?.['collection'].documents.edges[0].node.chunks.edges[0].node.id;
    assert.ok(ids.collection && ids.document && ids.chunk);
  });
  after(() => t.close());

  it("by id: B gets null for A's collection, document and chunk's document; its list holds only its own", async () => {
    const res = await gql(
      url,
      {
        query: `{ collection(id: "${ids.collection}") { id } document(id: "${ids.document}") { id } collections { totalCount edges { node { id } } } }`,
      },
      bob,
    );
    assert.equal(res.status, 200);
    assert.equal(res.json.data?.['collection'], null);
    assert.equal(res.json.data?.['document'], null);
    assert.equal(res.json.data?.['collections'].totalCount, 1);
    assert.notEqual(res.json.data?.['collections'].edges[0].node.id, ids.collection);
    const own = await gql(
      url,
      { query: `{ collection(id: "${ids.collection}") { name } document(id: "${ids.document}") { externalId } }` },
      alice,
    );
    assert.deepEqual(own.json.data, { collection: { name: 'kb' }, document: { externalId: 'doc' } }, 'the owner still sees them');
  });

  it("by search and ask: B's \"kb\" is its own; A's collection id is NOT_FOUND; nothing of A's text leaks", async () => {
    const byName = await gql(
      url,
      { query: '{ search(collection: "kb", query: "vault code secret", mode: KEYWORD) { hits { chunk { text } } } }' },
      bob,
    );
    const texts = JSON.stringify(byName.json);
    assert.doesNotMatch(texts, /vault|4711/);
    for (const query of [
      `{ search(collection: "${ids.collection}", query: "vault") { hits { chunk { text } } } }`,
      `{ ask(collection: "${ids.collection}", question: "What is the vault code?") { answer } }`,
      `{ documents(collection: "${ids.collection}") { totalCount } }`,
    ]) {
      const res = await gql(url, { query }, bob);
      assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'NOT_FOUND', query);
      assert.doesNotMatch(JSON.stringify(res.json), /vault|4711/);
    }
  });

  it("by _entities: A's Collection, Document and Chunk resolve to null for B", async () => {
    const query = `query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Collection { name } ... on Document { externalId } ... on Chunk { text } } }`;
    const representations = [
      { __typename: 'Collection', id: ids.collection },
      { __typename: 'Document', id: ids.document },
      { __typename: 'Chunk', id: ids.chunk },
    ];
    const res = await gql(url, { query, variables: { r: representations } }, bob);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json.data?.['_entities'], [null, null, null]);
    const own = await gql(url, { query, variables: { r: representations } }, alice);
    assert.equal(own.json.data?.['_entities'][2].text, 'Alpha secret: the vault code is 4711.');
  });

  it("by write: B cannot ingest into, rename, delete or edit A's data", async () => {
    const attempts = [
      `mutation { ingestDocuments(collection: "${ids.collection}", documents: [{ id: "x", content: "planted" }]) { indexed } }`,
      `mutation { updateCollection(id: "${ids.collection}", input: { description: "owned" }) { id } }`,
      `mutation { deleteCollection(id: "${ids.collection}") { id } }`,
      `mutation { updateDocumentMetadata(id: "${ids.document}", metadata: { owned: true }) { id } }`,
    ];
    for (const query of attempts) {
      const res = await gql(url, { query }, bob);
      assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'NOT_FOUND', query);
    }
    const del = await gql(url, { query: `mutation { deleteDocuments(ids: ["${ids.document}"]) { deletedDocuments } }` }, bob);
    assert.equal(del.json.data?.['deleteDocuments'].deletedDocuments, 0);
    const still = await gql(
      url,
      { query: `{ collection(id: "${ids.collection}") { description stats { documents } } document(id: "${ids.document}") { metadata } }` },
      alice,
    );
    assert.deepEqual(still.json.data, { collection: { description: null, stats: { documents: 1 } }, document: { metadata: {} } });
  });
});

describe('security e2e: JWKS (RS256) and HS/RS algorithm confusion', () => {
  let t: TestApp, url: string;
  let jwks: http.Server;
  let jwksFetches = 0;
  const first = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const published: { key: KeyObject; kid: string }[] = [{ key: first.publicKey, kid: 'k1' }];

  before(async () => {
    jwks = http.createServer((_req, res) => {
      jwksFetches++;
      const keys = published.map(({ key, kid }) => ({ ...key.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    ({ t, url } = await startTestServer({ KBQL_AUTH_MODE: 'jwt', KBQL_JWT_JWKS_URL: jwksUrl, KBQL_JWT_AUDIENCE: JWT_AUDIENCE }));
  });
  after(async () => {
    await t.close();
    await new Promise<void>((resolve) => jwks.close(() => resolve()));
  });

  it('accepts RS256 from the JWKS and refuses HS256 signed with the public key (algorithm confusion)', async () => {
    const ok = await gql(url, { query: QUERY_COLLECTIONS }, rs256(claims(), first.privateKey, 'k1'));
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(jwksFetches, 1);

    const pem = first.publicKey.export({ format: 'pem', type: 'spki' });
    const jwk = JSON.stringify(first.publicKey.export({ format: 'jwk' }));
    for (const key of [pem, jwk]) {
      const confused = hs256(claims(), key, { alg: 'HS256', typ: 'JWT', kid: 'k1' });
      const res = await gql(url, { query: QUERY_COLLECTIONS }, confused);
      assert.equal(res.status, 401, 'HS256 with the public key as secret is refused');
      assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'UNAUTHENTICATED');
    }
    const forged = await gql(
      url,
      { query: QUERY_COLLECTIONS },
      rs256(claims(), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'k1'),
    );
    assert.equal(forged.status, 401, 'a token signed by another key under a known kid');
  });
});

describe('security e2e: the verified-token cache never outlives a token', () => {
  let t: TestApp, url: string;

  before(async () => {
    ({ t, url } = await startTestServer({ ...JWT_ENV, KBQL_JWT_CLOCK_SKEW_SECONDS: '0', KBQL_JWT_CACHE_SECONDS: '600' }));
  });
  after(() => t.close());

  it('a token accepted (and cached) while valid is refused with TOKEN_EXPIRED once its exp passes', async () => {
    // exp is in whole seconds: 2 s ahead, so the first calls are certainly before it.
    const exp = now() + 2;
    const token = hs256(claims({ exp }), JWT_SECRET);
    for (let i = 0; i < 3; i++) {
      const ok = await gql(url, { query: QUERY_COLLECTIONS }, token);
      assert.equal(ok.status, 200, JSON.stringify(ok.json));
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 50));
    const late = await gql(url, { query: QUERY_COLLECTIONS }, token);
    assert.equal(late.status, 401, JSON.stringify(late.json));
    assert.equal(late.json.errors?.[0]?.extensions?.['reason'], 'TOKEN_EXPIRED');
  });
});
