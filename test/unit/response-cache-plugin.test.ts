import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApolloServer } from '@apollo/server';
import { buildSchema, type GraphQLSchema } from 'graphql';
import { composePlugins } from '../../src/graphql/plugins/composite.plugin';
import { createResponseCachePlugin } from '../../src/graphql/plugins/response-cache.plugin';
import type { Principal } from '../../src/ports/principal.port';

/** A schema as kbql's transforms leave it: each guarded field's requirement in `extensions.kbqlAuth`. */
function schemaWith(requirements: Record<string, string>, rateLimited: string[] = []): GraphQLSchema {
  const schema = buildSchema(`
    type Query { search(q: String!): Payload! stats: Int! }
    type Payload { hits: [Hit!]! secret: String! page(first: Int): [Hit!]! }
    type Hit { score: Float! }
  `);
  for (const [coordinate, requires] of Object.entries(requirements)) {
    const [type, field] = coordinate.split('.');
    const def = (schema.getType(type!) as ReturnType<GraphQLSchema['getQueryType']> & object).getFields()[field!]!;
    (def as { extensions: Record<string, unknown> }).extensions = { ...def.extensions, kbqlAuth: { requires, source: 'field' } };
  }
  for (const coordinate of rateLimited) {
    const [type, field] = coordinate.split('.');
    const def = (schema.getType(type!) as ReturnType<GraphQLSchema['getQueryType']> & object).getFields()[field!]!;
    (def as { extensions: Record<string, unknown> }).extensions = { ...def.extensions, kbqlRateLimit: { charge: async () => {} } };
  }
  return schema;
}

const plugin = (schema: GraphQLSchema, fields: string[], roots = ['search']) =>
  createResponseCachePlugin<{ principal: Principal | null }>({
    schema,
    roots: Object.fromEntries(roots.map((name) => [name, { dependency: async () => 'v1' }])),
    fields: new Set(fields),
    scope: () => 'tenant:a',
    ttlSeconds: 60,
  });

describe('response cache plugin: what it refuses to cache, at start-up', () => {
  it('accepts plain fields that need no more than READER', () => {
    assert.doesNotThrow(() => plugin(schemaWith({ 'Query.search': 'READER' }), ['Payload.hits', 'Hit.score']));
  });

  it('refuses a listed field that needs more than READER, takes arguments, is rate-limited or does not exist', () => {
    const schema = schemaWith({ 'Query.search': 'READER', 'Payload.secret': 'ADMIN' }, ['Hit.score']);
    assert.throws(() => plugin(schema, ['Payload.secret']), /Payload\.secret: needs more than READER/);
    assert.throws(() => plugin(schema, ['Payload.page']), /Payload\.page: takes arguments/);
    assert.throws(() => plugin(schema, ['Hit.score']), /Hit\.score: is rate-limited/);
    assert.throws(() => plugin(schema, ['Hit.nothing']), /Hit\.nothing: no such field/);
  });

  it('refuses a root without an @auth check', () => {
    assert.throws(() => plugin(schemaWith({ 'Query.search': 'READER' }), [], ['stats']), /Query\.stats: has no @auth check/);
    assert.throws(() => plugin(schemaWith({}), [], ['missing']), /Query\.missing: no such field/);
  });
});

describe('response cache plugin: what it keeps, through a real Apollo Server', () => {
  /** `search(q)` answers `q` repeated `size` times; every call counted. */
  const serverWith = async (maxChars: number, maxEntries = 256) => {
    const schema = schemaWith({ 'Query.search': 'READER' });
    let calls = 0;
    const hits = { hit: 0, miss: 0 };
    (schema.getQueryType()!.getFields()['search'] as { resolve?: unknown }).resolve = (_: unknown, args: { q: string }) => {
      calls++;
      const [text, size] = args.q.split(':');
      return { hits: [{ score: text!.repeat(Number(size)).length }], secret: text!.repeat(Number(size)) };
    };
    const server = new ApolloServer<{ principal: Principal | null }>({
      schema,
      plugins: [
        composePlugins([
          createResponseCachePlugin<{ principal: Principal | null }>({
            schema,
            roots: { search: { dependency: async () => 'v1' } },
            fields: new Set(['Payload.hits', 'Payload.secret', 'Hit.score']),
            scope: () => 'tenant:a',
            ttlSeconds: 60,
            maxChars,
            maxEntries,
            onLookup: (result) => hits[result]++,
          }),
        ]),
      ],
    });
    await server.start();
    const principal = { kind: 'user', tenant: 'a', subject: 's', role: 'READER' } as unknown as Principal;
    const ask = async (q: string) => {
      const response = await server.executeOperation(
        { query: 'query($q: String!) { search(q: $q) { secret hits { score } } }', variables: { q } },
        { contextValue: { principal } },
      );
      assert.equal(response.body.kind, 'single');
      return response;
    };
    return { server, ask, calls: () => calls, hits };
  };

  it('serves a repeated query from the cache; a response over a quarter of maxChars is never kept', async () => {
    const { server, ask, calls } = await serverWith(4000);
    await ask('ab:10');
    await ask('ab:10');
    assert.equal(calls(), 1, 'the repeat is served from the cache');
    await ask('cd:600'); // about 1,250 characters of JSON: over 4,000 / 4
    await ask('cd:600');
    assert.equal(calls(), 3, 'too large to keep');
    await server.stop();
  });

  it('evicts the least recently used responses when the characters kept pass maxChars', async () => {
    const { server, ask, calls } = await serverWith(4000);
    // Four responses of about 840 characters each (3,360 in all), then a fifth: the least recently used goes.
    for (const text of ['a', 'b', 'c', 'd']) await ask(`${text}:800`);
    await ask('a:800'); // now b is the least recently used
    assert.equal(calls(), 4);
    await ask('e:800');
    await ask('a:800');
    assert.equal(calls(), 5, 'a was kept');
    await ask('b:800');
    assert.equal(calls(), 6, 'b was evicted');
    await server.stop();
  });
});
