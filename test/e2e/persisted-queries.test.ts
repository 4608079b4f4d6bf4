import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Logger } from '../../src/logger';
import { gql, JWT_ENV, tokenFor } from '../helpers/security';
import { startTestServer, type TestApp } from '../helpers/test-app';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const apq = (query: string | undefined, hash: string, version = 1) => ({
  ...(query === undefined ? {} : { query }),
  extensions: { persistedQuery: { version, sha256Hash: hash } },
});

describe('automatic persisted queries (real HTTP, JWT auth on)', () => {
  let t: TestApp, url: string;
  let token: string;
  const logged: { level: string; message: string }[] = [];
  const logger: Logger = {
    error: (message) => logged.push({ level: 'error', message }),
    warn: (message) => logged.push({ level: 'warn', message }),
    info: () => undefined,
    debug: () => undefined,
  };

  before(async () => {
    ({ t, url } = await startTestServer({ ...JWT_ENV, NODE_ENV: 'production' }, { logger }));
    token = await tokenFor('READER', 'acme');
  });
  after(() => t.close());

  it('an anonymous request registers nothing: 401, and the hash stays unknown', async () => {
    const query = `{ collections { totalCount } } # anonymous ${'x'.repeat(100_000)}`;
    const refused = await gql(url, apq(query, sha256(query)));
    assert.equal(refused.status, 401);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lookup = await gql(url, apq(undefined, sha256(query)), token);
    assert.equal(lookup.json.errors?.[0]?.extensions?.['code'], 'PERSISTED_QUERY_NOT_FOUND');
  });

  it('an authenticated caller registers, and the hash alone then runs the query', async () => {
    const query = '{ collections { totalCount } } # registered';
    const registered = await gql(url, apq(query, sha256(query)), token);
    assert.equal(registered.status, 200, JSON.stringify(registered.json.errors));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const byHash = await gql(url, apq(undefined, sha256(query)), token);
    assert.equal(byHash.status, 200);
    assert.deepEqual(byHash.json.data, { collections: { totalCount: 0 } });
  });

  it('client mistakes are BAD_REQUEST with status 400 and no error-level log: hash mismatch, unknown version', async () => {
    logged.length = 0;
    const mismatch = await gql(url, apq('{ collections { totalCount } }', sha256('something else')), token);
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.json.errors?.[0]?.extensions?.['code'], 'BAD_REQUEST');
    assert.match(mismatch.json.errors[0].message, /sha does not match/);
    const version = await gql(url, apq('{ collections { totalCount } }', sha256('{ collections { totalCount } }'), 2), token);
    assert.equal(version.status, 400);
    assert.equal(version.json.errors?.[0]?.extensions?.['code'], 'BAD_REQUEST');
    assert.deepEqual(
      logged.filter((l) => l.level === 'error'),
      [],
    );
  });
});
