import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestApp } from '../helpers/test-app';
import { gql, JWT_ENV, tokenFor } from '../helpers/security';

const codeOf = (res: { json: { errors?: { extensions?: Record<string, any> }[] } }) => res.json.errors?.[0]?.extensions?.['code'];
const SHARE =
  'mutation ($c: String!, $t: String!, $r: ShareRole!) { shareCollection(collection: $c, tenant: $t, role: $r) { id version shares { tenant role } } }';
const UNSHARE = 'mutation ($c: String!, $t: String!) { unshareCollection(collection: $c, tenant: $t) { id shares { tenant role } } }';
const ENTITIES = `query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Collection { name } ... on Document { externalId } ... on Chunk { text } } }`;
const INGEST =
  'mutation($c: String!, $d: [DocumentInput!]!) { ingestDocuments(collection: $c, documents: $d) { indexed results { document { id } } } }';

/**
 * Tenant "acme" owns "handbook" and shares it with "globex"; "initech" is never granted anything. Every read path
 * (by id, by name, list, search, ask, documents, _entities) and every write path is checked over HTTP.
 */
describe('security e2e: collection sharing across tenants over real HTTP', () => {
  let t: TestApp, url: string;
  const tok: Record<string, string> = {};
  const ids = { collection: '', document: '', chunk: '' };
  const entities = () => [
    { __typename: 'Collection', id: ids.collection },
    { __typename: 'Document', id: ids.document },
    { __typename: 'Chunk', id: ids.chunk },
  ];
  const searchQ = (c: string) =>
    `{ search(collection: "${c}", query: "vault code", mode: KEYWORD) { hits { chunk { text } document { externalId } } } }`;

  before(async () => {
    ({ t, url } = await startTestServer(JWT_ENV));
    for (const [name, role, tenant] of [
      ['acmeAdmin', 'ADMIN', 'acme'],
      ['acmeWriter', 'WRITER', 'acme'],
      ['globexAdmin', 'ADMIN', 'globex'],
      ['globexWriter', 'WRITER', 'globex'],
      ['globexReader', 'READER', 'globex'],
      ['initech', 'ADMIN', 'initech'],
    ] as const)
      tok[name] = await tokenFor(role, tenant);
    const c = await gql(url, { query: 'mutation { createCollection(input: { name: "handbook" }) { id } }' }, tok['acmeAdmin']);
    ids.collection = c.json.data?.['createCollection'].id;
    const ing = await gql(
      url,
      { query: INGEST, variables: { c: 'handbook', d: [{ id: 'vault', content: 'The vault code is 4711. Keep it secret.' }] } },
      tok['acmeAdmin'],
    );
    assert.equal(ing.json.data?.['ingestDocuments'].indexed, 1, JSON.stringify(ing.json));
    ids.document = ing.json.data?.['ingestDocuments'].results[0].document.id;
    const chunks = await gql(url, { query: `{ document(id: "${ids.document}") { chunks { edges { node { id } } } } }` }, tok['acmeAdmin']);
    ids.chunk = chunks.json.data?.['document'].chunks.edges[0].node.id;
    assert.ok(ids.collection && ids.document && ids.chunk);
  });
  after(() => t.close());

  async function assertSeesNothing(token: string, label: string) {
    const byId = await gql(
      url,
      {
        query: `{ collection(id: "${ids.collection}") { id } byName: collection(name: "acme/handbook") { id } document(id: "${ids.document}") { id } collections { edges { node { id } } } }`,
      },
      token,
    );
    assert.equal(byId.status, 200, label);
    assert.deepEqual(
      { ...byId.json.data, collections: undefined },
      { collection: null, byName: null, document: null, collections: undefined },
      label,
    );
    assert.ok(!byId.json.data?.['collections'].edges.some((e: any) => e.node.id === ids.collection), `${label}: not listed`);
    for (const query of [
      searchQ(ids.collection),
      searchQ('acme/handbook'),
      `{ ask(collection: "acme/handbook", question: "What is the vault code?") { answer } }`,
      `{ documents(collection: "${ids.collection}") { totalCount } }`,
    ]) {
      const res = await gql(url, { query }, token);
      assert.equal(codeOf(res), 'NOT_FOUND', `${label}: ${query}`);
      assert.doesNotMatch(JSON.stringify(res.json), /4711/, label);
    }
    const ent = await gql(url, { query: ENTITIES, variables: { r: entities() } }, token);
    assert.deepEqual(ent.json.data?.['_entities'], [null, null, null], label);
  }

  it('before sharing, another tenant sees nothing; only an ADMIN of the owner may share', async () => {
    await assertSeesNothing(tok['globexReader']!, 'globex before the share');
    const asWriter = await gql(url, { query: SHARE, variables: { c: 'handbook', t: 'globex', r: 'READER' } }, tok['acmeWriter']);
    assert.equal(asWriter.status, 403);
    assert.equal(codeOf(asWriter), 'FORBIDDEN');
    const asStranger = await gql(url, { query: SHARE, variables: { c: ids.collection, t: 'globex', r: 'WRITER' } }, tok['globexAdmin']);
    assert.equal(codeOf(asStranger), 'NOT_FOUND', 'a tenant cannot share itself into a collection it cannot see');
    const withSelf = await gql(url, { query: SHARE, variables: { c: 'handbook', t: 'acme', r: 'READER' } }, tok['acmeAdmin']);
    assert.equal(codeOf(withSelf), 'BAD_USER_INPUT');
    const badTenant = await gql(url, { query: SHARE, variables: { c: 'handbook', t: 'no spaces/allowed', r: 'READER' } }, tok['acmeAdmin']);
    assert.equal(codeOf(badTenant), 'BAD_USER_INPUT');
  });

  it('a READER share: the grantee reads everywhere (by id, by "tenant/name", list, search, ask, documents, _entities) but never writes', async () => {
    const shared = await gql(url, { query: SHARE, variables: { c: 'handbook', t: 'globex', r: 'READER' } }, tok['acmeAdmin']);
    assert.equal(shared.status, 200, JSON.stringify(shared.json));
    assert.deepEqual(shared.json.data?.['shareCollection'].shares, [{ tenant: 'globex', role: 'READER' }]);

    const reader = tok['globexReader']!;
    const look = await gql(
      url,
      {
        query: `{ collection(id: "${ids.collection}") { name tenant shares { tenant role } } byName: collection(name: "acme/handbook") { id } document(id: "${ids.document}") { externalId } collections { edges { node { id tenant } } } }`,
      },
      reader,
    );
    assert.deepEqual(look.json.data?.['collection'], { name: 'handbook', tenant: 'acme', shares: [{ tenant: 'globex', role: 'READER' }] });
    assert.equal(look.json.data?.['byName'].id, ids.collection);
    assert.equal(look.json.data?.['document'].externalId, 'vault');
    assert.deepEqual(
      look.json.data?.['collections'].edges.map((e: any) => e.node),
      [{ id: ids.collection, tenant: 'acme' }],
    );
    for (const ref of [ids.collection, 'acme/handbook']) {
      const s = await gql(url, { query: searchQ(ref) }, reader);
      assert.equal(s.status, 200, JSON.stringify(s.json));
      assert.match(s.json.data?.['search'].hits[0].chunk.text, /4711/);
    }
    const ask = await gql(
      url,
      { query: `{ ask(collection: "acme/handbook", question: "What is the vault code?") { answer abstained } }` },
      reader,
    );
    assert.equal(ask.json.data?.['ask'].abstained, false, JSON.stringify(ask.json));
    const docs = await gql(url, { query: `{ documents(collection: "acme/handbook") { totalCount } }` }, reader);
    assert.equal(docs.json.data?.['documents'].totalCount, 1);
    const ent = await gql(url, { query: ENTITIES, variables: { r: entities() } }, reader);
    assert.deepEqual(
      ent.json.data?.['_entities'].map((e: any) => e?.__typename),
      ['Collection', 'Document', 'Chunk'],
    );

    // Writes through a READER share: FORBIDDEN, with no side effect — even for the grantee's WRITERs and ADMINs.
    for (const token of [tok['globexWriter']!, tok['globexAdmin']!]) {
      const attempts = [
        { query: INGEST, variables: { c: 'acme/handbook', d: [{ id: 'planted', content: 'planted text' }] } },
        { query: INGEST, variables: { c: ids.collection, d: [{ id: 'planted', content: 'planted text' }] } },
        { query: `mutation { deleteDocuments(ids: ["${ids.document}"]) { deletedDocuments } }` },
        { query: `mutation { updateDocumentMetadata(id: "${ids.document}", metadata: { owned: true }) { id } }` },
        { query: `mutation { updateCollection(id: "${ids.collection}", input: { description: "owned" }) { id } }` },
        { query: `mutation { deleteCollection(id: "${ids.collection}") { id } }` },
        { query: SHARE, variables: { c: ids.collection, t: 'initech', r: 'READER' } },
      ];
      for (const body of attempts) {
        const res = await gql(url, body, token);
        assert.equal(res.status, 403, `${body.query}: ${JSON.stringify(res.json)}`);
        assert.equal(codeOf(res), 'FORBIDDEN', body.query);
      }
    }
    const still = await gql(
      url,
      {
        query: `{ collection(id: "${ids.collection}") { description shares { tenant } stats { documents } } document(id: "${ids.document}") { metadata } }`,
      },
      tok['acmeAdmin'],
    );
    assert.deepEqual(
      still.json.data,
      { collection: { description: null, shares: [{ tenant: 'globex' }], stats: { documents: 1 } }, document: { metadata: {} } },
      'no side effect',
    );

    await assertSeesNothing(tok['initech']!, 'a third tenant');
  });

  it('a WRITER share lets the grantee’s WRITERs edit documents, never the collection itself; the grantee sees only its own grant', async () => {
    await gql(url, { query: SHARE, variables: { c: 'handbook', t: 'initech', r: 'READER' } }, tok['acmeAdmin']);
    const up = await gql(url, { query: SHARE, variables: { c: 'handbook', t: 'globex', r: 'WRITER' } }, tok['acmeAdmin']);
    assert.deepEqual(up.json.data?.['shareCollection'].shares, [
      { tenant: 'globex', role: 'WRITER' },
      { tenant: 'initech', role: 'READER' },
    ]);
    const writer = tok['globexWriter']!;
    const seen = await gql(url, { query: `{ collection(name: "acme/handbook") { shares { tenant role } } }` }, writer);
    assert.deepEqual(seen.json.data?.['collection'].shares, [{ tenant: 'globex', role: 'WRITER' }], 'not the other grantees');

    const ing = await gql(
      url,
      { query: INGEST, variables: { c: 'acme/handbook', d: [{ id: 'from-globex', content: 'Globex added this note.' }] } },
      writer,
    );
    assert.equal(ing.json.data?.['ingestDocuments'].indexed, 1, JSON.stringify(ing.json));
    const docId = ing.json.data?.['ingestDocuments'].results[0].document.id;
    const meta = await gql(
      url,
      { query: `mutation { updateDocumentMetadata(id: "${docId}", metadata: { by: "globex" }) { metadata } }` },
      writer,
    );
    assert.deepEqual(meta.json.data?.['updateDocumentMetadata'].metadata, { by: 'globex' });
    const del = await gql(url, { query: `mutation { deleteDocuments(ids: ["${docId}"]) { deletedDocuments } }` }, writer);
    assert.equal(del.json.data?.['deleteDocuments'].deletedDocuments, 1);
    for (const query of [
      `mutation { updateCollection(id: "${ids.collection}", input: { description: "owned" }) { id } }`,
      `mutation { deleteCollection(id: "${ids.collection}") { id } }`,
    ]) {
      const res = await gql(url, { query }, tok['globexAdmin']);
      assert.equal(codeOf(res), 'FORBIDDEN', query);
    }
    // initech (READER share) still cannot write.
    const planted = await gql(url, { query: INGEST, variables: { c: 'acme/handbook', d: [{ id: 'x', content: 'x' }] } }, tok['initech']);
    assert.equal(codeOf(planted), 'FORBIDDEN');
  });

  it('unsharing takes effect at once, cached results included', async () => {
    const before = await gql(url, { query: searchQ('acme/handbook') }, tok['globexReader']);
    assert.match(JSON.stringify(before.json), /4711/, 'searched (and cached) while shared');
    const un = await gql(url, { query: UNSHARE, variables: { c: 'handbook', t: 'globex' } }, tok['acmeAdmin']);
    assert.deepEqual(un.json.data?.['unshareCollection'].shares, [{ tenant: 'initech', role: 'READER' }]);
    await assertSeesNothing(tok['globexReader']!, 'globex after the unshare');
    const again = await gql(url, { query: UNSHARE, variables: { c: 'handbook', t: 'globex' } }, tok['acmeAdmin']);
    assert.equal(again.status, 200, 'unsharing twice is no error');
    const owner = await gql(url, { query: searchQ('handbook') }, tok['acmeAdmin']);
    assert.match(JSON.stringify(owner.json), /4711/, 'the owner is unaffected');
  });
});
