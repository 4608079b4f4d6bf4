import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isAppError } from '../../src/errors';
import type { ApiKeyRecord, ApiKeyStore } from '../../src/ports/api-key-store.port';

let counter = 0;
/** A READER key of `tenant` created at `createdAt` (ms), with a fresh id; `extra` overrides any field. */
export const record = (tenant: string, createdAt: number, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
  id: (++counter).toString(16).padStart(16, '0'),
  tenant,
  name: `key ${counter}`,
  role: 'READER',
  secretHash: 'ab'.repeat(32),
  createdBy: 'alice',
  createdAt: new Date(createdAt),
  lastUsedAt: null,
  expiresAt: null,
  revokedAt: null,
  ...extra,
});

/**
 * The ApiKeyStore contract, run on each adapter (SQLite always, Redis when `redis-server` is installed). One store per
 * suite: `open` builds it, the suite calls `init`, then `close` and `cleanup` at the end; `skip` gives the reason.
 */
export function defineApiKeyStoreContractSuite(
  name: string,
  open: () => Promise<{ store: ApiKeyStore; cleanup: () => Promise<void> }>,
  skip: string | false = false,
): void {
  describe(`ApiKeyStore contract: ${name}`, { skip }, () => {
    let store: ApiKeyStore;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await open());
      await store.init();
    });
    after(async () => {
      await store.close();
      await cleanup();
    });

    it('creates, reads back exactly, refuses a duplicate id with CONFLICT, null for an unknown id', async () => {
      const r = record('t-read', 1_000, { expiresAt: new Date(9_000_000), role: 'ADMIN' });
      await store.create(r);
      assert.deepEqual(await store.get(r.id), r);
      await assert.rejects(store.create({ ...r, tenant: 'other' }), (e: unknown) => isAppError(e) && e.code === 'CONFLICT');
      assert.deepEqual(await store.get(r.id), r, 'the duplicate changed nothing');
      assert.equal(await store.get('ffffffffffffffff'), null);
    });

    it('lists one tenant’s keys newest first, paged, with the total', async () => {
      const keys = [record('t-list', 1_000), record('t-list', 3_000), record('t-list', 2_000)];
      for (const k of keys) await store.create(k);
      await store.create(record('t-list-other', 5_000));
      const all = await store.list('t-list', { offset: 0, limit: 10 });
      assert.equal(all.total, 3);
      assert.deepEqual(
        all.items.map((k) => k.createdAt.getTime()),
        [3_000, 2_000, 1_000],
      );
      const page = await store.list('t-list', { offset: 1, limit: 1 });
      assert.deepEqual(
        page.items.map((k) => k.id),
        [keys[2]!.id],
      );
      assert.equal(page.total, 3);
      assert.deepEqual(await store.list('t-none', { offset: 0, limit: 10 }), { items: [], total: 0 });
    });

    it('revoke keeps the first time; touch records the use; both null/no-op for unknown ids', async () => {
      const r = record('t-revoke', 1_000);
      await store.create(r);
      await store.touch(r.id, new Date(5_000));
      const first = await store.revoke(r.id, new Date(6_000));
      assert.equal(first!.revokedAt!.getTime(), 6_000);
      assert.equal(first!.lastUsedAt!.getTime(), 5_000, 'a revocation does not lose the last use');
      const again = await store.revoke(r.id, new Date(7_000));
      assert.equal(again!.revokedAt!.getTime(), 6_000);
      assert.equal(await store.revoke('eeeeeeeeeeeeeeee', new Date()), null);
      assert.equal(await store.get('eeeeeeeeeeeeeeee'), null, 'revoking an unknown id creates nothing');
      await store.touch('dddddddddddddddd', new Date());
      assert.equal(await store.get('dddddddddddddddd'), null);
    });
  });
}
