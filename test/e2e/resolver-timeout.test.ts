import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GraphQLObjectType, GraphQLSchema, GraphQLString, graphql } from 'graphql';
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { createApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { applyResolverTimeout, TIMEOUT_EXTENSION } from '../../src/graphql/directives/resolver-timeout';
import type { KnowledgeStore } from '../../src/ports/knowledge-store.port';
import { gql, JWT_ENV, tokenFor } from '../helpers/security';

/** An embedded store whose `search` and `listDocuments` wait until `release()` (a dependency that never answers). */
function slowStore(dataDir: string) {
  const inner = new EmbeddedKnowledgeStore({ dataDir });
  const waiting: (() => void)[] = [];
  let stalled = 0;
  const hang = new Set(['search', 'listDocuments']);
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string' || !hang.has(prop))
        return typeof value === 'function' ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        stalled++;
        await new Promise<void>((resolve) => waiting.push(resolve));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as KnowledgeStore;
  return { store, stalled: () => stalled, release: () => waiting.splice(0).forEach((r) => r()) };
}

describe('resolver timeout (KBQL_RESOLVER_TIMEOUT_MS) over real HTTP with a store that stops answering', () => {
  let app: App;
  let url: string;
  let dataDir: string;
  let slow: ReturnType<typeof slowStore>;
  let token: string;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-timeout-'));
    slow = slowStore(dataDir);
    const config = loadConfig({
      NODE_ENV: 'test',
      KBQL_LOG_LEVEL: 'silent',
      KBQL_DATA_DIR: dataDir,
      PORT: '0',
      KBQL_RESOLVER_TIMEOUT_MS: '150',
      ...JWT_ENV,
    });
    app = await createApp(config, { store: slow.store });
    url = await app.listen(0, '127.0.0.1');
    token = await tokenFor('ADMIN', 'acme');
    const made = await gql(url, { query: 'mutation { createCollection(input: { name: "kb" }) { id } }' }, token);
    assert.equal(made.status, 200, JSON.stringify(made.json));
  });
  after(async () => {
    slow.release();
    await app.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a field stuck on the store fails with UPSTREAM_TIMEOUT naming the field, instead of hanging the request', async () => {
    const res = await gql(
      url,
      { query: '{ collections { totalCount } search(collection: "kb", query: "anything") { hits { score } } }' },
      token,
    );
    assert.equal(slow.stalled(), 1, 'the store call was made and never answered');
    const error = res.json.errors?.[0];
    assert.equal(error?.extensions?.['code'], 'UPSTREAM_TIMEOUT', JSON.stringify(res.json));
    assert.equal(error?.extensions?.['field'], 'Query.search');
    assert.equal(error?.extensions?.['timeoutMs'], 150);
    assert.deepEqual(error && (error as { path?: unknown }).path, ['search']);
    assert.equal(res.json.data, null, 'search is non-null, so the whole result is null');
    const fine = await gql(url, { query: '{ collections { totalCount } }' }, token);
    assert.equal(fine.json.data?.['collections'].totalCount, 1, 'a field that does not wait on the stuck call answers');
  });

  it('nested field resolvers are bounded too (Collection.documents)', async () => {
    const res = await gql(url, { query: '{ collection(name: "kb") { name documents { totalCount } } }' }, token);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'UPSTREAM_TIMEOUT', JSON.stringify(res.json));
    assert.equal(res.json.errors?.[0]?.extensions?.['field'], 'Collection.documents');
  });
});

describe('applyResolverTimeout', () => {
  it('wraps fields with resolvers (sync results pass straight through), leaves default-resolved fields and subscriptions alone', async () => {
    let release!: () => void;
    const Item = new GraphQLObjectType({ name: 'Item', fields: { plain: { type: GraphQLString } } });
    const schema = new GraphQLSchema({
      query: new GraphQLObjectType({
        name: 'Query',
        fields: {
          sync: { type: GraphQLString, resolve: () => 'now' },
          fast: { type: GraphQLString, resolve: async () => 'soon' },
          stuck: { type: GraphQLString, resolve: () => new Promise<string>((resolve) => (release = () => resolve('late'))) },
          failing: {
            type: GraphQLString,
            resolve: async () => {
              throw new Error('own error');
            },
          },
          item: { type: Item, resolve: () => ({ plain: 'p' }) },
        },
      }),
      subscription: new GraphQLObjectType({
        name: 'Subscription',
        fields: {
          ticks: {
            type: GraphQLString,
            subscribe: async function* () {
              yield { ticks: 'x' };
            },
            resolve: (v: { ticks: string }) => v.ticks,
          },
        },
      }),
    });
    const bounded = applyResolverTimeout(schema, { timeoutMs: 100 });
    const fields = bounded.getQueryType()!.getFields();
    assert.equal(fields['fast']!.extensions[TIMEOUT_EXTENSION], 100);
    assert.equal((bounded.getType('Item') as GraphQLObjectType).getFields()['plain']!.extensions[TIMEOUT_EXTENSION], undefined);
    assert.equal(bounded.getSubscriptionType()!.getFields()['ticks']!.extensions[TIMEOUT_EXTENSION], undefined);

    const result = await graphql({ schema: bounded, source: '{ sync fast stuck failing item { plain } }' });
    release();
    assert.deepEqual(JSON.parse(JSON.stringify(result.data)), {
      sync: 'now',
      fast: 'soon',
      stuck: null,
      failing: null,
      item: { plain: 'p' },
    });
    const byPath = Object.fromEntries((result.errors ?? []).map((e) => [e.path?.join('.'), e]));
    assert.equal((byPath['stuck']?.originalError as { code?: string }).code, 'UPSTREAM_TIMEOUT');
    assert.equal(byPath['failing']?.message, 'own error', 'a resolver’s own error is untouched');
    assert.throws(() => applyResolverTimeout(schema, { timeoutMs: 0 }), RangeError);
  });
});
