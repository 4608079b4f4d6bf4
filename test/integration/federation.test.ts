import 'reflect-metadata';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { composeServices } from '@apollo/composition';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import DataLoader from 'dataloader';
import { parse, print, type DocumentNode } from 'graphql';
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { createContext } from '../../src/app/context';
import type { KbqlContext } from '../../src/modules/shared/request-context';
import { CreateCollectionDocument, IngestDocumentsDocument, SearchDocument } from '../../src/generated/graphql';
import type { KnowledgeStore } from '../../src/ports/knowledge-store.port';
import { graphqlRequest } from '../helpers/http';
import { createTestApp, dataOf, type TestApp } from '../helpers/test-app';

const COMMITTED_SDL = readFileSync(path.resolve(__dirname, '..', '..', '..', 'schema', 'schema.graphql'), 'utf8');
const MISSING = '00000000-0000-4000-8000-000000000000';

/** A second subgraph: users whose favourite collections are kbql `Collection` keys (it knows nothing but the id). */
const USERS_SDL = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Query { user(id: ID!): User }
  type User @key(fields: "id") {
    id: ID!
    name: String!
    favoriteCollections: [Collection]!
  }
  type Collection @key(fields: "id", resolvable: false) { id: ID! }
`);

/** Counts the store reads the reference resolvers make (the app wraps whatever store it is given). */
function countingStore(inner: KnowledgeStore, calls: Record<string, string[][]>): KnowledgeStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (prop === 'getDocuments' || prop === 'getChunks' || prop === 'getCollection') {
          (calls[prop] ??= []).push(([] as string[]).concat(args[0] as string | string[]));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('Federation 2: kbql composed with a users subgraph behind @apollo/gateway', () => {
  let t: TestApp;
  let storeDir: string;
  const calls: Record<string, string[][]> = {};
  let kbqlUrl: string;
  let users: ApolloServer;
  let usersUrl: string;
  let gateway: ApolloServer;
  let gatewayUrl: string;
  let servedSdl: string;
  let collectionId: string;
  let documentIds: string[];
  let chunkIds: string[];

  const run = async <R, V>(doc: TypedDocumentNode<R, V>, variables: V): Promise<R> =>
    dataOf<R>(await t.execute<R>(print(doc), variables as Record<string, unknown>));

  /** `_entities` on kbql in process, optionally with a request context of the test's making. */
  const entities = async (representations: Record<string, unknown>[], contextValue?: KbqlContext) => {
    const query = `query($r: [_Any!]!) { _entities(representations: $r) {
      __typename
      ... on Collection { id name }
      ... on Document { id externalId collectionId }
      ... on Chunk { id index document { externalId } }
    } }`;
    const response = await t.app.apollo.executeOperation(
      { query, variables: { r: representations } },
      { contextValue: contextValue ?? createContext(t.app.store, 'federation-test') },
    );
    assert.equal(response.body.kind, 'single');
    const result = (response.body as { singleResult: { data?: unknown; errors?: unknown } }).singleResult;
    return dataOf<{ _entities: (Record<string, any> | null)[] }>(result as never)._entities;
  };

  const compose = (kbqlTypeDefs: DocumentNode, usersTypeDefs: DocumentNode = USERS_SDL) =>
    composeServices([
      { name: 'kbql', typeDefs: kbqlTypeDefs, url: `${kbqlUrl}` },
      { name: 'users', typeDefs: usersTypeDefs, url: usersUrl },
    ]);

  before(async () => {
    storeDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-federation-'));
    t = await createTestApp({}, { store: countingStore(new EmbeddedKnowledgeStore({ dataDir: storeDir }), calls) });
    kbqlUrl = `${await t.app.listen(0, '127.0.0.1')}/graphql`;

    collectionId = (await run(CreateCollectionDocument, { input: { name: 'handbook' } })).createCollection.id;
    const ingested = await run(IngestDocumentsDocument, {
      collection: 'handbook',
      documents: [
        {
          id: 'vacation',
          title: 'Vacation policy',
          content: 'Employees receive 25 days of paid vacation per year. Unused days carry over until March 31.',
        },
        {
          id: 'laptops',
          title: 'Laptop refresh',
          content: 'Every engineer gets a new laptop every three years, ordered through the IT desk.',
        },
        {
          id: 'security',
          title: 'Security rules',
          content: 'Passwords must be at least 14 characters long. Report phishing within one hour.',
        },
      ],
    });
    assert.equal(ingested.ingestDocuments.indexed, 3);
    documentIds = ingested.ingestDocuments.results.map((r) => r.documentId!);
    const hits = await run(SearchDocument, { collection: 'handbook', query: 'vacation laptop passwords', topK: 10 });
    chunkIds = hits.search.hits.map((h) => h.chunk.id);
    assert.equal(chunkIds.length, 3);

    const favorites: Record<string, string[]> = { u1: [collectionId, MISSING] };
    users = new ApolloServer({
      schema: buildSubgraphSchema({
        typeDefs: USERS_SDL,
        resolvers: {
          Query: { user: (_: unknown, { id }: { id: string }) => (favorites[id] ? { id, name: `User ${id}` } : null) },
          User: {
            favoriteCollections: (user: { id: string }) => favorites[user.id]!.map((cid) => ({ __typename: 'Collection', id: cid })),
          },
        },
      }),
      plugins: [ApolloServerPluginInlineTraceDisabled()],
    });
    usersUrl = (await startStandaloneServer(users, { listen: { port: 0, host: '127.0.0.1' } })).url;

    servedSdl = dataOf<{ _service: { sdl: string } }>(await t.execute('{ _service { sdl } }'))._service.sdl;
    const composed = compose(parse(servedSdl));
    assert.equal(composed.errors, undefined, `composition failed: ${composed.errors?.map((e) => e.message).join('\n')}`);
    gateway = new ApolloServer({ gateway: new ApolloGateway({ supergraphSdl: composed.supergraphSdl }) });
    gatewayUrl = (await startStandaloneServer(gateway, { listen: { port: 0, host: '127.0.0.1' } })).url;
  });

  after(async () => {
    await gateway?.stop();
    await users?.stop();
    await t?.close();
    await rm(storeDir, { recursive: true, force: true });
  });

  it('composes from _service { sdl } and from the committed schema/schema.graphql to the same supergraph', () => {
    const fromServed = compose(parse(servedSdl));
    const fromCommitted = compose(parse(COMMITTED_SDL));
    assert.equal(fromCommitted.errors, undefined, fromCommitted.errors?.map((e) => e.message).join('\n'));
    assert.equal(fromCommitted.supergraphSdl, fromServed.supergraphSdl);
    assert.match(fromServed.supergraphSdl!, /type Collection\s+@join__type\(graph: KBQL, key: "id"\)/);
  });

  it('fails composition when another subgraph contradicts an entity (the check above can fail)', () => {
    const clash = parse(`
      extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@shareable"])
      type Query { user(id: ID!): User }
      type User @key(fields: "id") { id: ID! favoriteCollections: [Collection]! }
      type Collection @key(fields: "id") { id: ID! name: Int @shareable }
    `);
    const result = compose(parse(COMMITTED_SDL), clash);
    assert.ok(result.errors && result.errors.length > 0, 'expected composition errors');
    assert.match(result.errors.map((e) => e.message).join('\n'), /Collection\.name/);
  });

  it('answers a query that crosses both subgraphs through the gateway, over HTTP', async () => {
    const response = await graphqlRequest<{ data?: any; errors?: unknown[] }>(
      gatewayUrl,
      `{ user(id: "u1") { name favoriteCollections {
          id name stats { documents chunks }
          documents(first: 5) { totalCount edges { node { externalId title } } }
        } } }`,
      undefined,
      { path: '' },
    );
    const body = response.body;
    assert.equal(response.status, 200, JSON.stringify(body));
    const user = body.data.user;
    assert.equal(user.name, 'User u1');
    assert.equal(user.favoriteCollections.length, 2);
    const [handbook, missing] = user.favoriteCollections;
    assert.equal(handbook.id, collectionId);
    assert.equal(handbook.name, 'handbook');
    assert.deepEqual(handbook.stats, { documents: 3, chunks: 3 });
    assert.equal(handbook.documents.totalCount, 3);
    assert.deepEqual(handbook.documents.edges.map((e: any) => e.node.externalId).sort(), ['laptops', 'security', 'vacation']);
    // The reference to a collection kbql does not have resolves to null, not to an error for the whole list.
    assert.equal(missing, null);
  });

  it('resolves Document and Chunk references in one batched store read each', async () => {
    const before = { documents: calls['getDocuments']?.length ?? 0, chunks: calls['getChunks']?.length ?? 0 };
    const docs = await entities(documentIds.map((id) => ({ __typename: 'Document', id })));
    assert.deepEqual(
      docs.map((d) => d?.externalId),
      ['vacation', 'laptops', 'security'],
    );
    assert.ok(docs.every((d) => d?.collectionId === collectionId));
    assert.equal((calls['getDocuments']?.length ?? 0) - before.documents, 1, 'one getDocuments for three references');
    assert.deepEqual(calls['getDocuments']!.at(-1)!.sort(), [...documentIds].sort());

    const chunks = await entities(chunkIds.map((id) => ({ __typename: 'Chunk', id })));
    assert.deepEqual(
      chunks.map((c) => c?.id),
      chunkIds,
    );
    assert.ok(chunks.every((c) => c?.__typename === 'Chunk' && c.index === 0 && typeof c.document.externalId === 'string'));
    assert.equal((calls['getChunks']?.length ?? 0) - before.chunks, 1, 'one getChunks for three references');
  });

  it('resolves missing and malformed references to null', async () => {
    const result = await entities([
      { __typename: 'Collection', id: collectionId },
      { __typename: 'Collection', id: MISSING },
      { __typename: 'Document', id: MISSING },
      { __typename: 'Chunk', id: MISSING },
      { __typename: 'Collection', id: 42 },
      { __typename: 'Document' },
    ]);
    assert.equal(result[0]?.name, 'handbook');
    assert.deepEqual(result.slice(1), [null, null, null, null, null]);
  });

  it('goes through the request loaders, so what they hide resolves to null (the access rules path)', async () => {
    const ctx = createContext(t.app.store, 'federation-hidden');
    const hiddenDocument = documentIds[0]!;
    // A context whose loaders hide the collection and one document, as per-tenant loaders will.
    const hidden: KbqlContext = {
      ...ctx,
      loaders: {
        ...ctx.loaders,
        collection: new DataLoader(async (ids: readonly string[]) => ids.map(() => null)),
        document: new DataLoader(async (ids: readonly string[]) => {
          const docs = await t.app.store.getDocuments([...ids]);
          return docs.map((d) => (d && d.id !== hiddenDocument ? d : null));
        }),
      },
    };
    const chunkOfHidden = (await t.app.store.getChunks(chunkIds)).find((c) => c?.documentId === hiddenDocument)!.id;
    const result = await entities(
      [
        { __typename: 'Collection', id: collectionId },
        { __typename: 'Document', id: hiddenDocument },
        { __typename: 'Chunk', id: chunkOfHidden },
        { __typename: 'Document', id: documentIds[1]! },
      ],
      hidden,
    );
    assert.deepEqual(result.slice(0, 3), [null, null, null]);
    assert.equal(result[3]?.externalId, 'laptops');
  });
});
