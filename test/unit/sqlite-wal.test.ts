import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { enableWal } from '../../src/adapters/sqlite-wal';

/** A connection whose journal-mode change is refused `busy` times, as when another process changes it at once. */
function contended(busy: number, code = 'SQLITE_BUSY') {
  let mode = 'delete';
  let refusals = 0;
  const db = {
    pragma(source: string) {
      if (source === 'journal_mode') return mode;
      if (refusals < busy) {
        refusals++;
        throw Object.assign(new Error('database is locked'), { code });
      }
      mode = 'wal';
      return [{ journal_mode: 'wal' }];
    },
  };
  return { db, mode: () => mode, refusals: () => refusals };
}

describe('enableWal: two replicas opening one new SQLite file at once', () => {
  it('retries a busy refusal (SQLite does not wait out the busy timeout there) until WAL is on', () => {
    const c = contended(4);
    enableWal(c.db as never, 5000);
    assert.equal(c.mode(), 'wal');
    assert.equal(c.refusals(), 4);
  });

  it('gives up after the timeout, and never retries another error', () => {
    const forever = contended(Infinity);
    const started = Date.now();
    assert.throws(() => enableWal(forever.db as never, 80), /database is locked/);
    assert.ok(Date.now() - started >= 80, 'waited out its timeout');
    const other = contended(1, 'SQLITE_CORRUPT');
    assert.throws(() => enableWal(other.db as never, 5000), /database is locked/);
    assert.equal(other.refusals(), 1);
  });

  it('leaves a real file in WAL mode, and is a no-op when it already is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kbql-wal-'));
    try {
      const file = join(dir, 'x.sqlite');
      const first = new Database(file);
      enableWal(first);
      const second = new Database(file);
      enableWal(second);
      assert.equal(second.pragma('journal_mode', { simple: true }), 'wal');
      first.close();
      second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
