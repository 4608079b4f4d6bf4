import 'reflect-metadata';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Kind, parse, type ObjectTypeDefinitionNode } from 'graphql';
import { buildSchema } from 'type-graphql';
import { entityTypeNames, FEDERATION_LINK, toSubgraphSchema } from '../../src/app/federation';
import { buildKbqlSchema, NO_TOPICS, printKbqlSchema, RESOLVERS } from '../../src/app/schema';
import { createTestApp, dataOf, type TestApp } from '../helpers/test-app';

const COMMITTED = readFileSync(path.resolve(__dirname, '..', '..', '..', 'schema', 'schema.graphql'), 'utf8');

/** `{ type name → key fields }` of the types that carry `@key` in an SDL. */
function keysOf(sdl: string): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const def of parse(sdl).definitions) {
    if (def.kind !== Kind.OBJECT_TYPE_DEFINITION && def.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
    for (const d of (def as ObjectTypeDefinitionNode).directives ?? []) {
      if (d.name.value !== 'key') continue;
      const fields = d.arguments?.find((a) => a.name.value === 'fields')?.value;
      keys[def.name.value] = fields?.kind === Kind.STRING ? fields.value : '?';
    }
  }
  return keys;
}

describe('schema/schema.graphql (the subgraph SDL)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('matches the schema emitted from code (run `npm run schema:emit` after changing it)', async () => {
    const emitted = await printKbqlSchema();
    assert.equal(COMMITTED, emitted, 'schema/schema.graphql is stale: run `npm run schema:emit` and commit it');
  });

  it('is a Federation 2 subgraph: @link extension, and Collection, Document and Chunk keyed by id', () => {
    assert.match(
      COMMITTED,
      new RegExp(`^extend schema\\s+@link\\(url: "${FEDERATION_LINK.url.replaceAll('.', '\\.')}", import: \\["@key"\\]\\)`),
    );
    assert.deepEqual(keysOf(COMMITTED), { Chunk: 'id', Collection: 'id', Document: 'id' });
    // The router-facing fields are added by the subgraph library, not part of the committed SDL.
    assert.doesNotMatch(COMMITTED, /_entities|_service/);
  });

  it('declares the same entities the running server serves in _service { sdl }', async () => {
    const served = dataOf<{ _service: { sdl: string } }>(await t.execute('{ _service { sdl } }'))._service.sdl;
    assert.deepEqual(keysOf(served), keysOf(COMMITTED));
    // Same types and fields: every line of the committed SDL's type bodies is in the served one.
    for (const line of COMMITTED.split('\n').filter((l) => /^\s+\w+(\(|:)/.test(l)))
      assert.ok(served.includes(line), `served SDL lacks: ${line.trim()}`);
  });

  it('exposes the three families of operations', async () => {
    const sdl = await printKbqlSchema();
    for (const field of [
      'createCollection',
      'updateCollection',
      'deleteCollection',
      'ingestDocuments',
      'deleteDocuments',
      'updateDocumentMetadata',
    ]) {
      assert.match(sdl, new RegExp(`\\b${field}\\(`), `Mutation.${field}`);
    }
    for (const field of ['collection', 'collections', 'document', 'documents', 'search', 'ask']) {
      assert.match(sdl, new RegExp(`\\b${field}[(:]`), `Query.${field}`);
    }
  });

  it('refuses an entity without a reference resolver (the router would get bare keys back)', async () => {
    const schema = await buildSchema({ resolvers: RESOLVERS, validate: false, pubSub: NO_TOPICS });
    assert.deepEqual(entityTypeNames(schema), ['Chunk', 'Collection', 'Document']);
    assert.throws(() => toSubgraphSchema(schema, { Collection: () => null, Document: () => null }), /Chunk/);
    assert.throws(
      () => toSubgraphSchema(schema, { Collection: () => null, Document: () => null, Chunk: () => null, Answer: () => null }),
      /Answer/,
    );
    assert.ok(await buildKbqlSchema());
  });
});
