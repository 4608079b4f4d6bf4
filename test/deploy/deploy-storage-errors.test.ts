import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { storageError } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { ERROR_CODES } from '../../src/errors';

/** The embedded store's mapping of "cannot write" SQLite failures (drill 6 proves it on a real full tmpfs). */
describe('storageError (embedded store: disk full, read-only, I/O errors)', () => {
  const sqlite = (code: string) => Object.assign(new Error(`sqlite says ${code}`), { code });

  it('maps SQLITE_FULL, SQLITE_READONLY*, SQLITE_IOERR* and SQLITE_CANTOPEN to STORAGE_UNAVAILABLE (503) with a reason', () => {
    const cases: [string, RegExp][] = [
      ['SQLITE_FULL', /disk full/],
      ['SQLITE_READONLY', /read-only/],
      ['SQLITE_READONLY_DBMOVED', /read-only/],
      ['SQLITE_IOERR_WRITE', /I\/O error/],
      ['SQLITE_IOERR_FSYNC', /I\/O error/],
      ['SQLITE_CANTOPEN', /cannot open/],
    ];
    for (const [code, reason] of cases) {
      const mapped = storageError(sqlite(code));
      assert.ok(mapped, code);
      assert.equal(mapped.code, 'STORAGE_UNAVAILABLE');
      assert.equal(mapped.status, 503);
      assert.equal(mapped.details['sqliteCode'], code);
      assert.match(mapped.message, reason);
      assert.match(mapped.message, /nothing was changed/);
    }
    assert.equal(ERROR_CODES.STORAGE_UNAVAILABLE.status, 503);
  });

  it('leaves every other error alone', () => {
    for (const error of [sqlite('SQLITE_CONSTRAINT_UNIQUE'), sqlite('SQLITE_BUSY'), sqlite('SQLITE_CORRUPT'), new Error('x'), null, undefined, 'text']) {
      assert.equal(storageError(error), null, String((error as { code?: string } | null)?.code ?? error));
    }
  });
});
