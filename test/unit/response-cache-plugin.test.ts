import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildSchema, type GraphQLSchema } from 'graphql';
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
