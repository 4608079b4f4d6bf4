import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WeaviateKnowledgeStore } from '../../src/adapters/weaviate/weaviate.knowledge-store';
import { isAppError } from '../../src/errors';

/**
 * The real weaviate-client against a stub that refuses every REST request the way Weaviate does when the API key is
 * wrong (401) or lacks a role (403): what start-up makes of it, through the client's own connect path.
 */
describe('KBQL_STORE=weaviate with credentials Weaviate refuses (real weaviate-client, stub server)', () => {
  let server: Server;
  let status = 401;
  let hits = 0;

  before(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        status === 401
          ? JSON.stringify({ code: 401, message: 'anonymous access not enabled, please provide an auth scheme such as OIDC' })
          : JSON.stringify({ error: [{ message: "forbidden: user 'kbql' has insufficient permissions to read_cluster" }] }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  for (const [code, reason] of [
    [401, 'WEAVIATE_UNAUTHENTICATED'],
    [403, 'WEAVIATE_FORBIDDEN'],
  ] as const) {
    it(`HTTP ${code}: init fails at once with UPSTREAM_UNAVAILABLE, reason ${reason}, without retrying`, async () => {
      status = code;
      hits = 0;
      const { port } = server.address() as AddressInfo;
      const store = new WeaviateKnowledgeStore({ url: `http://127.0.0.1:${port}`, grpcPort: 1, apiKey: 'wrong', initTimeoutMs: 4_000 });
      const started = Date.now();
      try {
        await assert.rejects(store.init(), (error: unknown) => {
          assert.ok(isAppError(error), String(error));
          assert.equal(error.code, 'UPSTREAM_UNAVAILABLE');
          assert.equal(error.details['reason'], reason);
          assert.match(error.message, /refused kbql's credentials/);
          return true;
        });
      } finally {
        await store.close();
      }
      assert.ok(Date.now() - started < 2_000, `gave up after ${Date.now() - started} ms, not at the 4 s bound`);
      // One connect attempt asks /v1/meta (and, concurrently, the version it needs) once: no retries.
      assert.ok(hits <= 2, `${hits} requests: a refused key is not retried`);
    });
  }
});
