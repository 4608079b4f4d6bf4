import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connectWeaviate, type WeaviateClientLike } from '../../src/adapters/weaviate/weaviate.client';
import { grpcRetryOptions, routeClientRetryLog } from '../../src/adapters/weaviate/weaviate.client-internals';
import { authFailureOf, isRetryableError, isTransientError, Resilience } from '../../src/adapters/weaviate/weaviate.resilience';
import { isAppError } from '../../src/errors';

/**
 * The real weaviate-client 3.12 (its gRPC search path, nice-grpc's retry middleware, its error wrapping) against stub
 * servers: REST answers /v1/meta (404 for any collection), gRPC answers the health check and fails every Search with
 * a chosen status. What kbql then sees, and how many requests reach the server.
 */

// nice-grpc and the client's generated service definitions are weaviate-client's own dependencies and files.
const clientDir = path.dirname(require.resolve('weaviate-client'));
const fromClient = createRequire(path.join(clientDir, 'index.js'));
interface NiceGrpcServer {
  add(definition: unknown, implementation: Record<string, unknown>): void;
  listen(address: string): Promise<number>;
  forceShutdown(): void;
}
const niceGrpc = fromClient('nice-grpc') as {
  createServer(): NiceGrpcServer;
  ServerError: new (code: number, details: string) => Error;
  Status: Record<string, number>;
};
const { WeaviateDefinition } = fromClient('./proto/v1/weaviate.js') as { WeaviateDefinition: unknown };
const { HealthDefinition } = fromClient('./proto/google/health/v1/health.js') as { HealthDefinition: unknown };

describe('gRPC failures through the real weaviate-client (stub server)', () => {
  let rest: Server;
  let grpc: NiceGrpcServer;
  let client: WeaviateClientLike;
  let searchStatus = 'INTERNAL';
  let searches = 0;
  const savedDelay = (grpcRetryOptions as { retryBaseDelayMs?: number }).retryBaseDelayMs;

  before(async () => {
    rest = createHttpServer((req, res) => {
      if (req.url?.startsWith('/v1/schema/')) {
        res.writeHead(404).end(); // Weaviate's answer for a collection that does not exist
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version: '1.35.3', hostname: 'http://[::]:8080', modules: {} }));
    });
    await new Promise<void>((resolve) => rest.listen(0, '127.0.0.1', resolve));
    grpc = niceGrpc.createServer();
    grpc.add(HealthDefinition, { check: () => Promise.resolve({ status: 1 }), watch: () => undefined });
    const unused = (): Promise<never> => Promise.reject(new niceGrpc.ServerError(niceGrpc.Status['UNIMPLEMENTED']!, 'stub'));
    grpc.add(WeaviateDefinition, {
      batchObjects: unused,
      batchReferences: unused,
      batchDelete: unused,
      tenantsGet: unused,
      aggregate: unused,
      batchStream: unused,
      search: () => {
        searches++;
        return Promise.reject(new niceGrpc.ServerError(niceGrpc.Status[searchStatus]!, `stub says ${searchStatus}`));
      },
    });
    const grpcPort = await grpc.listen('127.0.0.1:0');
    client = await connectWeaviate({
      httpHost: '127.0.0.1',
      httpPort: (rest.address() as AddressInfo).port,
      httpSecure: false,
      httpPath: '',
      grpcHost: '127.0.0.1',
      grpcPort,
      grpcSecure: false,
      timeouts: { initMs: 5_000, queryMs: 5_000, insertMs: 5_000 },
    });
    // The client's retry delays start at 1 s (nice-grpc's default); 1 ms keeps this test fast, the count is the same.
    (grpcRetryOptions as { retryBaseDelayMs?: number }).retryBaseDelayMs = 1;
  });

  after(async () => {
    (grpcRetryOptions as { retryBaseDelayMs?: number }).retryBaseDelayMs = savedDelay;
    await client.close();
    grpc.forceShutdown();
    await new Promise<void>((resolve) => rest.close(() => resolve()));
  });

  async function searchError(status: string): Promise<{ error: unknown; requests: number }> {
    searchStatus = status;
    const before = searches;
    const error = await client
      .collection('KbqlRegistry')
      .fetchObjects({ limit: 1 })
      .then(
        () => assert.fail('the stub never answers a search'),
        (e: unknown) => e,
      );
    return { error, requests: searches - before };
  }

  it('UNAUTHENTICATED and PERMISSION_DENIED arrive as status text and map to the WEAVIATE_* reasons, unretried', async () => {
    for (const [status, reason] of [
      ['UNAUTHENTICATED', 'WEAVIATE_UNAUTHENTICATED'],
      ['PERMISSION_DENIED', 'WEAVIATE_FORBIDDEN'],
    ] as const) {
      const { error, requests } = await searchError(status);
      assert.equal((error as Error).name, 'WeaviateQueryError', String(error));
      assert.match((error as Error).message, new RegExp(`Search ${status}: stub says`));
      assert.equal(authFailureOf(error), reason);
      assert.equal(isTransientError(error), false);
      assert.equal(requests, 1);
      const resilience = new Resilience({ target: 'stub', retries: 2, retryInitialDelayMs: 1 });
      await assert.rejects(
        resilience.run('search', () => Promise.reject(error)),
        (e: unknown) => isAppError(e) && e.code === 'UPSTREAM_UNAVAILABLE' && e.details['reason'] === reason,
      );
    }
  });

  it('a collection that does not exist has no description (REST 404 → null, how a free name reads)', async () => {
    assert.equal(await client.collectionDescription('KbqlName_0123'), null);
  });

  it('INTERNAL is retried by neither the client nor kbql', async () => {
    const { error, requests } = await searchError('INTERNAL');
    assert.equal(requests, 1);
    assert.equal(isTransientError(error), false);
    assert.equal(isRetryableError(error), false);
  });

  it('UNAVAILABLE: the client makes 1 + 5 requests, logged through the sink, and kbql adds none', async (t) => {
    const warn = t.mock.method(console, 'warn', () => undefined);
    const lines: string[] = [];
    const detach = routeClientRetryLog((message) => lines.push(message));
    try {
      const { error, requests } = await searchError('UNAVAILABLE');
      assert.equal(requests, 6, 'the bound docs/weaviate.md states');
      assert.equal(isTransientError(error), true, 'counts towards the breaker');
      assert.equal(isRetryableError(error), false, 'but kbql does not retry it again');
      assert.equal(lines.length, 5, 'one log line per client retry');
      assert.equal(warn.mock.callCount(), 0, 'nothing on console.warn');
    } finally {
      detach();
    }
  });
});
