import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AppError, ERROR_CODES, type ErrorCode } from '../../src/errors';
import { STATUS_CODES } from '../../src/graphql/plugins/error-status.plugin';

/** docs/errors.md: its error table is checked against the registry. */
const ERRORS_DOC = readFileSync(path.resolve(__dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');

describe('error registry', () => {
  it('every code has an HTTP status and a message, and AppError carries them', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const error = new AppError(code);
      assert.equal(error.code, code);
      assert.equal(error.status, ERROR_CODES[code].status);
      assert.ok(error.message.length > 0);
      assert.ok(error.status >= 400 && error.status < 600);
    }
  });

  it('every code is documented in the docs/errors.md table with its status', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      const row = ERRORS_DOC.split('\n').find((line) => line.startsWith(`| \`${code}\``));
      assert.ok(row, `docs/errors.md documents no ${code}`);
      assert.ok(row.includes(String(entry.status)), `docs/errors.md row of ${code} should show HTTP ${entry.status}`);
    }
  });

  it('docs/errors.md states the /graphql status the server sends: the registry status only for the codes that set it', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      const graphqlStatus = ERRORS_DOC.split('\n')
        .find((line) => line.startsWith(`| \`${code}\``))!
        .split('|')[2]!
        .trim();
      const expected = (STATUS_CODES as readonly string[]).includes(code)
        ? String(entry.status)
        : code === 'PAYLOAD_TOO_LARGE'
          ? '413'
          : '200';
      assert.ok(graphqlStatus.startsWith(expected), `${code}: docs/errors.md says "${graphqlStatus}", the server sends ${expected}`);
    }
  });
});
