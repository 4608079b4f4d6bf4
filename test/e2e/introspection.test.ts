import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildClientSchema, getIntrospectionQuery, type IntrospectionQuery } from 'graphql';
import { gql, JWT_ENV, tokenFor } from '../helpers/security';
import { startTestServer, type TestApp } from '../helpers/test-app';

const ALL_OPTIONS = { descriptions: true, specifiedByUrl: true, inputValueDeprecation: true };
/** The older shape tools still send: 13 levels, `ofType` seven deep. */
const OLDER = getIntrospectionQuery({ descriptions: false }).replace(
  /ofType \{\s*kind\s*name\s*ofType \{\s*kind\s*name\s*\}\s*\}/,
  'ofType { kind name }',
);

describe('standard introspection over HTTP (depth and cost limits apply to everything else)', () => {
  describe('development', () => {
    let t: TestApp, url: string;
    before(async () => {
      ({ t, url } = await startTestServer({ NODE_ENV: 'development' }));
    });
    after(() => t.close());

    for (const [name, query] of [
      ['getIntrospectionQuery()', getIntrospectionQuery()],
      ['getIntrospectionQuery(descriptions, specifiedByUrl, inputValueDeprecation)', getIntrospectionQuery(ALL_OPTIONS)],
      ['an older 13-level introspection query', OLDER],
    ] as const) {
      it(`answers ${name} with 200 and a schema buildClientSchema accepts`, async () => {
        const res = await gql(url, { query, operationName: 'IntrospectionQuery' });
        assert.equal(res.status, 200, JSON.stringify(res.json.errors));
        assert.equal(res.json.errors, undefined);
        const schema = buildClientSchema(res.json.data as unknown as IntrospectionQuery);
        assert.ok(schema.getQueryType()?.getFields()['ask']);
        assert.ok(schema.getSubscriptionType()?.getFields()['askStream']);
      });
    }

    it('still bounds introspection: 21 levels of ofType → QUERY_TOO_DEEP', async () => {
      let ofType = 'name';
      for (let i = 0; i < 19; i++) ofType = `ofType { ${ofType} }`;
      const res = await gql(url, { query: `{ __type(name: "Query") { fields { type { ${ofType} } } } }` });
      assert.equal(res.status, 400);
      assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'QUERY_TOO_DEEP');
      assert.match(res.json.errors[0].message, /introspection/);
    });

    it('keeps the depth limit for everything else, also next to introspection', async () => {
      const deep =
        '{ __schema { queryType { name } } collections(first: 1) { edges { node { documents(first: 1) { edges { node { chunks(first: 1) { edges { node { document { collection { documents(first: 1) { totalCount } } } } } } } } } } } } }';
      const res = await gql(url, { query: deep });
      assert.equal(res.status, 400);
      assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'QUERY_TOO_DEEP');
      assert.match(res.json.errors[0].message, /limit is 12/);
    });
  });

  describe('production (introspection off)', () => {
    let t: TestApp, url: string;
    before(async () => {
      ({ t, url } = await startTestServer({ ...JWT_ENV, NODE_ENV: 'production' }));
    });
    after(() => t.close());

    it('refuses the standard introspection query as before', async () => {
      const token = await tokenFor('ADMIN', 'acme');
      const res = await gql(url, { query: getIntrospectionQuery(ALL_OPTIONS) }, token);
      assert.equal(res.status, 400);
      assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'GRAPHQL_VALIDATION_FAILED');
      assert.equal(res.json.data, undefined);
    });
  });
});
