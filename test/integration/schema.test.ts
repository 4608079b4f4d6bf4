import 'reflect-metadata';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { printKbqlSchema } from '../../src/graphql/schema';

describe('schema/schema.graphql', () => {
  it('matches the schema emitted from code (run `npm run schema:emit` after changing it)', async () => {
    const committed = readFileSync(path.resolve(__dirname, '..', '..', '..', 'schema', 'schema.graphql'), 'utf8');
    const emitted = await printKbqlSchema();
    assert.equal(committed, emitted, 'schema/schema.graphql is stale: run `npm run schema:emit` and commit it');
  });

  it('exposes the three families of operations', async () => {
    const sdl = await printKbqlSchema();
    for (const field of ['createCollection', 'updateCollection', 'deleteCollection', 'ingestDocuments', 'deleteDocuments', 'updateDocumentMetadata']) {
      assert.match(sdl, new RegExp(`\\b${field}\\(`), `Mutation.${field}`);
    }
    for (const field of ['collection', 'collections', 'document', 'documents', 'search', 'ask']) {
      assert.match(sdl, new RegExp(`\\b${field}[(:]`), `Query.${field}`);
    }
  });
});
