import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../src/errors';
import { decodeCursor, encodeCursor, MAX_PAGE_SIZE, toConnection, toWindow } from '../../src/graphql/pagination';

describe('pagination', () => {
  it('round-trips cursors and continues after the given one', () => {
    assert.equal(decodeCursor(encodeCursor(41)), 41);
    assert.deepEqual(toWindow({ first: 10, after: encodeCursor(9) }), { offset: 10, limit: 10 });
    const page = toConnection({ items: ['k', 'l'], total: 12 }, { offset: 10, limit: 10 });
    assert.equal(page.pageInfo.hasNextPage, false);
    assert.equal(page.pageInfo.hasPreviousPage, true);
    assert.equal(decodeCursor(page.pageInfo.endCursor!), 11);
  });

  it('rejects forged cursors and oversized pages with BAD_USER_INPUT', () => {
    for (const bad of [
      () => decodeCursor('bm90LWEtY3Vyc29y'),
      () => toWindow({ first: MAX_PAGE_SIZE + 1 }),
      () => toWindow({ first: -1 }),
    ]) {
      assert.throws(bad, (e: unknown) => e instanceof AppError && e.code === 'BAD_USER_INPUT');
    }
  });
});
