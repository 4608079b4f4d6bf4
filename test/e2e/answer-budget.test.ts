import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { gql } from '../helpers/security';
import { startTestServer, type TestApp } from '../helpers/test-app';

const ASK = '{ ask(collection: "handbook", question: "How many vacation days?") { abstained } }';
const ASK_STREAM = 'subscription { askStream(collection: "handbook", question: "How many vacation days?") { __typename } }';

/** The code of the first error of one askStream subscription (null when the stream ran). */
async function askStreamCode(url: string): Promise<string | null> {
  const client = createClient({ url: `${url.replace(/^http/, 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
  try {
    for await (const result of client.iterate({ query: ASK_STREAM })) {
      const code = result.errors?.[0]?.extensions?.['code'];
      if (typeof code === 'string' && code) return code;
    }
    return null;
  } catch (errors) {
    return String((errors as { extensions?: { code?: string } }[])[0]?.extensions?.code ?? errors);
  } finally {
    await client.dispose();
  }
}

describe('one answer budget: ask and askStream spend the same @rateLimit counter', () => {
  let t: TestApp, url: string;
  before(async () => {
    ({ t, url } = await startTestServer({ NODE_ENV: 'development', KBQL_RATE_LIMIT: 'true', KBQL_RATE_LIMIT_MAX: '3' }));
    await gql(url, { query: 'mutation { createCollection(input: { name: "handbook" }) { id } }' });
  });
  after(() => t.close());

  it('2 ask + 1 askStream use up a budget of 3: the next of either is RATE_LIMITED, search is not', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await gql(url, { query: ASK })).status, 200);
    assert.equal(await askStreamCode(url), null);
    assert.equal(await askStreamCode(url), 'RATE_LIMITED');
    const ask = await gql(url, { query: ASK });
    assert.equal(ask.status, 429);
    assert.equal(ask.json.errors?.[0]?.extensions?.['code'], 'RATE_LIMITED');
    const search = await gql(url, { query: '{ search(collection: "handbook", query: "vacation") { hits { score } } }' });
    assert.equal(search.status, 200, 'search has its own budget');
  });
});
