import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../src/errors';
import { createTestApp } from '../helpers/test-app';

describe('KBQL_STORE=weaviate without a reachable Weaviate', () => {
  it('fails start-up within the init timeout with a clear UPSTREAM_UNAVAILABLE naming the URL', async () => {
    const started = Date.now();
    await assert.rejects(
      createTestApp({ KBQL_STORE: 'weaviate', WEAVIATE_URL: 'http://127.0.0.1:1', KBQL_WEAVIATE_INIT_TIMEOUT_MS: '800' }),
      (error: unknown) => error instanceof AppError && error.code === 'UPSTREAM_UNAVAILABLE' && /127\.0\.0\.1:1/.test(error.message),
    );
    assert.ok(Date.now() - started < 8_000, `gave up after ${Date.now() - started} ms`);
  });
});
