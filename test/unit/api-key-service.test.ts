import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAppError, type ErrorCode } from '../../src/errors';
import { ApiKeyService } from '../../src/modules/auth/api-key.service';
import type { Principal } from '../../src/ports/principal.port';
import type { ApiKeyPage, ApiKeyRecord, ApiKeyStore } from '../../src/ports/api-key-store.port';

/** An in-memory ApiKeyStore counting reads (the service's cache is judged by them). */
class MemoryKeyStore implements ApiKeyStore {
  readonly kind = 'memory';
  readonly records = new Map<string, ApiKeyRecord>();
  gets = 0;
  async init() {}
  async close() {}
  async create(record: ApiKeyRecord) {
    this.records.set(record.id, { ...record });
  }
  async get(id: string) {
    this.gets++;
    const r = this.records.get(id);
    return r ? { ...r } : null;
  }
  async list(tenant: string, page: { offset: number; limit: number }): Promise<ApiKeyPage> {
    const all = [...this.records.values()].filter((r) => r.tenant === tenant);
    return { items: all.slice(page.offset, page.offset + page.limit), total: all.length };
  }
  async revoke(id: string, at: Date) {
    const r = this.records.get(id);
    if (!r) return null;
    r.revokedAt ??= at;
    return { ...r };
  }
  async touch(id: string, at: Date) {
    const r = this.records.get(id);
    if (r) r.lastUsedAt = at;
  }
}

const admin: Principal = { kind: 'user', subject: 'alice', tenant: 'acme', role: 'ADMIN' };
const writer: Principal = { kind: 'user', subject: 'bob', tenant: 'acme', role: 'WRITER' };

const rejectsWith = (code: ErrorCode, reason?: string) => (error: unknown) => {
  assert.ok(isAppError(error), String(error));
  assert.equal(error.code, code);
  if (reason) assert.equal(error.details['reason'], reason);
  return true;
};

describe('ApiKeyService', () => {
  it('a creator cannot mint a role above its own; names and expiry are validated', async () => {
    const service = new ApiKeyService({ store: new MemoryKeyStore() });
    await assert.rejects(service.create({ name: 'x', role: 'ADMIN' }, writer), rejectsWith('FORBIDDEN'));
    const ok = await service.create({ name: 'x', role: 'WRITER' }, writer);
    assert.equal(ok.apiKey.role, 'WRITER');
    await assert.rejects(service.create({ name: '  ', role: 'READER' }, admin), rejectsWith('BAD_USER_INPUT'));
    await assert.rejects(service.create({ name: 'y'.repeat(101), role: 'READER' }, admin), rejectsWith('BAD_USER_INPUT'));
    await assert.rejects(
      service.create({ name: 'z', role: 'READER', expiresAt: new Date(Date.now() - 1) }, admin),
      rejectsWith('BAD_USER_INPUT'),
    );
  });

  it('verifies a key to a service principal, from the store once per cache period; every secret differs', async () => {
    const store = new MemoryKeyStore();
    let now = Date.parse('2026-01-01T00:00:00Z');
    const service = new ApiKeyService({ store, cacheTtlMs: 30_000, now: () => now });
    const { secret, apiKey } = await service.create({ name: 'svc', role: 'READER' }, admin);
    const other = await service.create({ name: 'svc', role: 'READER' }, admin);
    assert.notEqual(other.secret, secret);
    assert.notEqual(other.apiKey.id, apiKey.id);
    assert.equal(store.records.get(apiKey.id)!.secretHash.length, 64);
    assert.ok(!JSON.stringify([...store.records.values()]).includes(secret.slice(22)), 'no secret in the store');

    const p = await service.verify(secret);
    assert.deepEqual(p, { kind: 'service', subject: `apikey:${apiKey.id}`, tenant: 'acme', role: 'READER' });
    assert.equal(store.gets, 1);
    assert.equal(await service.verify(secret), p, 'served from the cache');
    assert.equal(store.gets, 1);
    // A cached id with a wrong secret is still refused (the cache holds the hash and compares it).
    await assert.rejects(service.verify(`${secret.slice(0, 22)}${'x'.repeat(43)}`), rejectsWith('UNAUTHENTICATED', 'INVALID_API_KEY'));
    now += 30_001;
    await service.verify(secret);
    assert.equal(store.gets, 3, 'past the TTL the store is read again');
  });

  it('revocation: at once in the replica that revokes, within the TTL in another; expiry is never served from the cache', async () => {
    const store = new MemoryKeyStore();
    let now = Date.parse('2026-01-01T00:00:00Z');
    const here = new ApiKeyService({ store, cacheTtlMs: 30_000, now: () => now });
    const there = new ApiKeyService({ store, cacheTtlMs: 30_000, now: () => now });
    const { secret, apiKey } = await here.create({ name: 'svc', role: 'WRITER', expiresAt: new Date(now + 60_000) }, admin);
    await here.verify(secret);
    await there.verify(secret);
    await here.revoke(apiKey.id, admin);
    await assert.rejects(here.verify(secret), rejectsWith('UNAUTHENTICATED', 'API_KEY_REVOKED'));
    assert.ok(await there.verify(secret), 'the other replica still trusts its cached copy…');
    now += 30_001;
    await assert.rejects(there.verify(secret), rejectsWith('UNAUTHENTICATED', 'API_KEY_REVOKED'));

    const { secret: s2 } = await here.create({ name: 'short', role: 'READER', expiresAt: new Date(now + 10_000) }, admin);
    await here.verify(s2);
    now += 10_000;
    await assert.rejects(here.verify(s2), rejectsWith('UNAUTHENTICATED', 'API_KEY_EXPIRED'), 'the cache entry ends at the key’s expiry');
  });

  it('revoke is tenant-scoped and idempotent', async () => {
    const service = new ApiKeyService({ store: new MemoryKeyStore() });
    const { apiKey } = await service.create({ name: 'svc', role: 'READER' }, admin);
    await assert.rejects(service.revoke(apiKey.id, { ...admin, tenant: 'globex' }), rejectsWith('NOT_FOUND'));
    await assert.rejects(service.revoke('not-an-id', admin), rejectsWith('NOT_FOUND'));
    const first = await service.revoke(apiKey.id, admin);
    const second = await service.revoke(apiKey.id, admin);
    assert.ok(first.revokedAt);
    assert.equal(second.revokedAt!.getTime(), first.revokedAt.getTime(), 'the first revocation time stays');
  });
});
