import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SqliteApiKeyStore } from '../../src/adapters/auth/sqlite.api-key-store';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { startTestServer, type TestApp } from '../helpers/test-app';
import { gql, JWT_ENV, tokenFor } from '../helpers/security';

const CREATE = `mutation ($name: String!, $role: ApiKeyRole!, $expiresAt: DateTimeISO) {
  createApiKey(name: $name, role: $role, expiresAt: $expiresAt) { secret apiKey { id name role tenant createdAt lastUsedAt expiresAt revokedAt } }
}`;
const LIST = '{ apiKeys { totalCount edges { node { id name role tenant lastUsedAt revokedAt } } } }';
const REVOKE = 'mutation ($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }';
const WHO = '{ collections { totalCount edges { node { name tenant } } } }';

const codeOf = (res: { json: { errors?: { extensions?: Record<string, any> }[] } }) => res.json.errors?.[0]?.extensions?.['code'];

describe('security e2e: service API keys over real HTTP', () => {
  let t: TestApp, url: string;
  let adminA: string;
  let adminB: string;

  before(async () => {
    ({ t, url } = await startTestServer(JWT_ENV));
    adminA = await tokenFor('ADMIN', 'acme');
    adminB = await tokenFor('ADMIN', 'globex');
    const made = await gql(url, { query: 'mutation { createCollection(input: { name: "handbook" }) { id } }' }, adminA);
    assert.equal(made.status, 200, JSON.stringify(made.json));
  });
  after(() => t.close());

  async function createKey(token: string, name: string, role: string, expiresAt?: string) {
    const res = await gql(url, { query: CREATE, variables: { name, role, expiresAt } }, token);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    return res.json.data!['createApiKey'] as { secret: string; apiKey: Record<string, any> };
  }

  it('an ADMIN creates a key shown once; it works as Bearer and as X-Api-Key with its role and tenant; the secret is stored only hashed', async () => {
    const { secret, apiKey } = await createKey(adminA, 'indexer', 'READER');
    assert.match(secret, /^kbql_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(secret.slice(5, 21), apiKey['id'], 'the id is the public part of the key');
    assert.deepEqual(
      { ...apiKey, createdAt: undefined },
      {
        id: apiKey['id'],
        name: 'indexer',
        role: 'READER',
        tenant: 'acme',
        createdAt: undefined,
        lastUsedAt: null,
        expiresAt: null,
        revokedAt: null,
      },
    );

    const bearer = await gql(url, { query: WHO }, secret);
    assert.equal(bearer.status, 200, JSON.stringify(bearer.json));
    assert.deepEqual(
      bearer.json.data?.['collections'].edges.map((e: any) => e.node),
      [{ name: 'handbook', tenant: 'acme' }],
    );
    const header = await gql(url, { query: WHO }, undefined, { 'x-api-key': secret });
    assert.equal(header.status, 200);
    assert.equal(header.json.data?.['collections'].totalCount, 1);

    // The key's role, not its creator's: a READER key cannot write.
    const write = await gql(url, { query: 'mutation { createCollection(input: { name: "nope" }) { id } }' }, secret);
    assert.equal(write.status, 403);
    assert.equal(codeOf(write), 'FORBIDDEN');
    const none = await gql(url, { query: '{ collection(name: "nope") { id } }' }, adminA);
    assert.equal(none.json.data?.['collection'], null, 'nothing was created');

    // Never returned again: the type has no secret field, and the data dir holds only its SHA-256.
    const asked = await gql(url, { query: '{ apiKeys { edges { node { secret } } } }' }, adminA);
    assert.equal(asked.status, 400);
    const listed = await gql(url, { query: LIST }, adminA);
    assert.ok(
      listed.json.data?.['apiKeys'].edges.some((e: any) => e.node.id === apiKey['id'] && e.node.lastUsedAt !== null),
      'lastUsedAt set by use',
    );
    const file = await readFile(path.join(t.dataDir, 'api-keys.sqlite')).catch(() => Buffer.alloc(0));
    const wal = await readFile(path.join(t.dataDir, 'api-keys.sqlite-wal')).catch(() => Buffer.alloc(0));
    const onDisk = Buffer.concat([file, wal]).toString('latin1');
    const secretPart = secret.slice(22);
    assert.ok(onDisk.includes(createHash('sha256').update(secretPart).digest('hex')), 'the hash is stored');
    assert.ok(!onDisk.includes(secretPart), 'the secret is not');
  });

  it('revoked, unknown, wrong-secret, malformed and expired keys are 401 UNAUTHENTICATED; a revoke takes effect at once', async () => {
    const { secret, apiKey } = await createKey(adminA, 'ci', 'WRITER');
    assert.equal((await gql(url, { query: WHO }, secret)).status, 200, 'verified, and now cached');
    const revoked = await gql(url, { query: REVOKE, variables: { id: apiKey['id'] } }, adminA);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
    assert.ok(revoked.json.data?.['revokeApiKey'].revokedAt);

    const wrongSecret = `${secret.slice(0, 22)}${'A'.repeat(43)}`;
    const unknown = `kbql_0123456789abcdef_${secret.slice(22)}`;
    const cases: Record<string, [string | undefined, Record<string, string>, string]> = {
      revoked: [secret, {}, 'API_KEY_REVOKED'],
      'revoked, X-Api-Key': [undefined, { 'x-api-key': secret }, 'API_KEY_REVOKED'],
      'wrong secret': [wrongSecret, {}, 'INVALID_API_KEY'],
      'unknown id': [unknown, {}, 'INVALID_API_KEY'],
      malformed: ['kbql_short', {}, 'MALFORMED_API_KEY'],
      'both headers': [await tokenFor('READER', 'acme'), { 'x-api-key': secret }, 'TWO_CREDENTIALS'],
    };
    for (const [name, [token, headers, reason]] of Object.entries(cases)) {
      const res = await gql(url, { query: WHO }, token, headers);
      assert.equal(res.status, 401, `${name}: ${JSON.stringify(res.json)}`);
      assert.equal(codeOf(res), 'UNAUTHENTICATED', name);
      assert.equal(res.json.errors?.[0]?.extensions?.['reason'], reason, name);
      assert.equal(res.json.data, undefined, name);
    }

    // An expired key (written straight into the key store, as if created an hour ago with a 1-minute life).
    const store = new SqliteApiKeyStore({ dataDir: t.dataDir });
    await store.init();
    const expiredSecret = 'E'.repeat(43);
    await store.create({
      id: 'fedcba9876543210',
      tenant: 'acme',
      name: 'old',
      role: 'ADMIN',
      secretHash: createHash('sha256').update(expiredSecret).digest('hex'),
      createdBy: 'test',
      createdAt: new Date(Date.now() - 3_600_000),
      lastUsedAt: null,
      expiresAt: new Date(Date.now() - 3_540_000),
      revokedAt: null,
    });
    await store.close();
    const expired = await gql(url, { query: WHO }, `kbql_fedcba9876543210_${expiredSecret}`);
    assert.equal(expired.status, 401);
    assert.equal(expired.json.errors?.[0]?.extensions?.['reason'], 'API_KEY_EXPIRED');

    const past = await gql(
      url,
      { query: CREATE, variables: { name: 'x', role: 'READER', expiresAt: new Date(Date.now() - 1000).toISOString() } },
      adminA,
    );
    assert.equal(codeOf(past), 'BAD_USER_INPUT');
  });

  it('keys are tenant-scoped: an admin lists and revokes only its tenant’s; READER/WRITER cannot manage keys', async () => {
    const a = await createKey(adminA, 'a-only', 'ADMIN');
    const b = await createKey(adminB, 'b-only', 'READER');
    assert.equal(b.apiKey['tenant'], 'globex');
    const listB = await gql(url, { query: LIST }, adminB);
    assert.deepEqual(
      listB.json.data?.['apiKeys'].edges.map((e: any) => e.node.name),
      ['b-only'],
    );
    const steal = await gql(url, { query: REVOKE, variables: { id: a.apiKey['id'] } }, adminB);
    assert.equal(codeOf(steal), 'NOT_FOUND', 'another tenant’s key is indistinguishable from none');
    assert.equal((await gql(url, { query: WHO }, a.secret)).status, 200, 'and still works');

    // A service ADMIN key manages its tenant's keys too; a WRITER token or key cannot.
    const viaKey = await gql(url, { query: LIST }, a.secret);
    assert.equal(viaKey.status, 200);
    assert.ok(viaKey.json.data?.['apiKeys'].totalCount >= 3);
    for (const token of [await tokenFor('WRITER', 'acme'), b.secret]) {
      for (const query of [LIST, `mutation { createApiKey(name: "x", role: READER) { secret } }`]) {
        const res = await gql(url, { query }, token);
        assert.equal(res.status, 403, JSON.stringify(res.json));
        assert.equal(codeOf(res), 'FORBIDDEN');
      }
    }
    // The key acts in its own tenant only.
    const bSees = await gql(url, { query: WHO }, b.secret);
    assert.equal(bSees.json.data?.['collections'].totalCount, 0);
  });

  it('keys survive a restart (persisted in the data dir)', async () => {
    const { secret } = await createKey(adminA, 'durable', 'READER');
    const config = loadConfig({ NODE_ENV: 'test', KBQL_LOG_LEVEL: 'silent', KBQL_DATA_DIR: t.dataDir, PORT: '0', ...JWT_ENV });
    const second = await createApp(config);
    try {
      const url2 = await second.listen(0, '127.0.0.1');
      const res = await gql(url2, { query: WHO }, secret);
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.equal(res.json.data?.['collections'].totalCount, 1);
    } finally {
      await second.stop();
    }
  });
});
