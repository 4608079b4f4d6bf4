import 'reflect-metadata';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildSchema, type GraphQLFieldConfig, type GraphQLSchema } from 'graphql';
import { MapperKind, mapSchema } from '@graphql-tools/utils';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { AppError } from '../../src/errors';
import { applyAuthDirective } from '../../src/graphql/directives/auth.directive';
import { createRateLimitTransform } from '../../src/graphql/directives/rate-limit.directive';
import { createFormatError } from '../../src/graphql/format-error';
import { attachSubscriptionServer, type SubscriptionServer } from '../../src/http/subscriptions';
import { createLogger } from '../../src/logger';
import type { Principal } from '../../src/ports/principal.port';

/**
 * The WebSocket transport on its own, over a real socket: a small schema with the real @auth and @rateLimit
 * transforms, the real error formatter and limits; a fake authenticator (tokens are names).
 */
interface Ctx {
  principal: Principal | null;
  clientIp: string;
}

const SDL = /* GraphQL */ `
  directive @auth(requires: Role! = READER) on OBJECT | FIELD_DEFINITION
  directive @rateLimit(window: String! = "1m", max: Int! = 60) on OBJECT | FIELD_DEFINITION
  enum Role {
    READER
    WRITER
    ADMIN
  }
  type Query {
    hello: String @auth(requires: READER)
  }
  type Tick {
    n: Int!
    next: Tick
  }
  type Subscription {
    ticks(count: Int!, delayMs: Int! = 0): Tick! @auth(requires: READER) @rateLimit(window: "1m", max: 3)
    adminTicks: Tick! @auth(requires: ADMIN)
    failing: Tick! @auth(requires: READER)
  }
`;

const PRINCIPALS: Record<string, Principal> = {
  reader: { kind: 'user', subject: 'r', tenant: 't', role: 'READER' },
  reader2: { kind: 'user', subject: 'r2', tenant: 't', role: 'READER' },
  reader3: { kind: 'user', subject: 'r3', tenant: 't', role: 'READER' },
  reader4: { kind: 'user', subject: 'r4', tenant: 't', role: 'READER' },
  reader5: { kind: 'user', subject: 'r5', tenant: 't', role: 'READER' },
  reader6: { kind: 'user', subject: 'r6', tenant: 't', role: 'READER' },
};
/** Connections one caller may hold in this suite. */
const MAX_CONNECTIONS = 3;

/** What the producers did: how many streams started, and how many were stopped by the transport. */
const producer = { started: 0, stopped: 0, stoppedSignal: [] as (() => void)[] };

async function* ticks(count: number, delayMs: number): AsyncGenerator<{ ticks: { n: number } }> {
  producer.started++;
  let finished = false;
  try {
    for (let n = 1; n <= count; n++) {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      yield { ticks: { n } };
    }
    finished = true;
  } finally {
    if (!finished) {
      producer.stopped++;
      for (const signal of producer.stoppedSignal.splice(0)) signal();
    }
  }
}

function testSchema(): GraphQLSchema {
  const base = mapSchema(buildSchema(SDL), {
    [MapperKind.OBJECT_FIELD]: (field, name, type): GraphQLFieldConfig<unknown, Ctx> => {
      if (type === 'Query') return { ...field, resolve: () => 'hi' };
      if (type !== 'Subscription') return field;
      if (name === 'failing') {
        return {
          ...field,
          subscribe: async () => {
            throw new Error('database password is hunter2');
          },
        };
      }
      return {
        ...field,
        subscribe: (_source, args) => ticks(Number(args['count'] ?? 1), Number(args['delayMs'] ?? 0)),
      };
    },
  });
  const limited = createRateLimitTransform<Ctx>({ keyPrefix: 'test' })(base);
  return applyAuthDirective<Ctx>(limited);
}

describe('GraphQL subscriptions over WebSocket', () => {
  let server: http.Server;
  let subscriptions: SubscriptionServer;
  let url: string;
  const clients: Client[] = [];

  before(async () => {
    server = http.createServer((_req, res) => res.writeHead(404).end());
    const logger = createLogger('silent');
    subscriptions = attachSubscriptionServer<Ctx>({
      httpServer: server,
      schema: testSchema(),
      authenticate: async (authorization) => {
        if (!authorization) return null;
        const name = authorization.replace(/^Bearer /, '');
        const principal = PRINCIPALS[name];
        if (!principal) throw new AppError('UNAUTHENTICATED', 'bad token', { reason: 'INVALID_TOKEN' });
        return principal;
      },
      context: (_requestId, principal) => ({ principal, clientIp: '127.0.0.1' }),
      limits: { maxDepth: 4, maxCost: 1000, maxAliases: 2, maxTopK: 200 },
      maxTokens: 500,
      introspection: false,
      formatError: createFormatError({ exposeInternal: false, logger }),
      logger,
      maxPayloadBytes: 64 * 1024,
      maxConnectionsPerCaller: MAX_CONNECTIONS,
      callerKey: (principal) => principal?.subject ?? 'anonymous',
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  });

  after(async () => {
    for (const client of clients) await client.dispose();
    await subscriptions.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const client = (token?: string): Client => {
    const c = createClient({
      url,
      webSocketImpl: WebSocket,
      lazy: true,
      retryAttempts: 0,
      connectionParams: token ? { authorization: `Bearer ${token}` } : undefined,
    });
    clients.push(c);
    return c;
  };

  /** Every result of one operation, in order (a refusal as one `{ errors }` result); a closed socket rejects. */
  const collect = async (c: Client, query: string, variables?: Record<string, unknown>): Promise<Record<string, unknown>[]> => {
    const results: Record<string, unknown>[] = [];
    try {
      for await (const result of c.iterate({ query, variables }))
        results.push(JSON.parse(JSON.stringify(result)) as Record<string, unknown>);
    } catch (error) {
      // An operation refused before it ran arrives as an `error` message: the client throws its errors.
      if (!Array.isArray(error)) throw error;
      results.push({ errors: error });
    }
    return results;
  };
  const codeOfResult = (result: Record<string, unknown> | undefined) =>
    (result?.['errors'] as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code ?? null;

  it('streams every event of a subscription in order to an authorised caller', async () => {
    const results = await collect(client('reader'), 'subscription { ticks(count: 3) { n } }');
    assert.deepEqual(
      results.map((r) => (r['data'] as { ticks: { n: number } }).ticks.n),
      [1, 2, 3],
    );
  });

  it('refuses a guarded subscription to an anonymous caller (UNAUTHENTICATED) and a weak role (FORBIDDEN), before the stream starts', async () => {
    const startedBefore = producer.started;
    const anonymous = await collect(client(), 'subscription { ticks(count: 1) { n } }');
    assert.equal(codeOfResult(anonymous[0]), 'UNAUTHENTICATED');
    const weak = await collect(client('reader'), 'subscription { adminTicks { n } }');
    assert.equal(codeOfResult(weak[0]), 'FORBIDDEN');
    assert.equal(producer.started, startedBefore);
  });

  it('closes the connection of a caller with a bad token (4403), running nothing', async () => {
    const startedBefore = producer.started;
    await assert.rejects(
      collect(client('forged'), 'subscription { ticks(count: 1) { n } }'),
      (error: unknown) => (error as { code?: number }).code === 4403 && (error as { reason?: string }).reason === 'UNAUTHENTICATED',
    );
    assert.equal(producer.started, startedBefore);
  });

  it('serves only subscriptions: queries and mutations belong on HTTP', async () => {
    const results = await collect(client('reader'), '{ hello }');
    assert.equal(codeOfResult(results[0]), 'BAD_USER_INPUT');
  });

  it('applies the HTTP limits: too deep, too many aliases, too many tokens', async () => {
    const deep = await collect(client('reader'), 'subscription { ticks(count: 1) { next { next { next { next { n } } } } } }');
    assert.equal(codeOfResult(deep[0]), 'QUERY_TOO_DEEP');
    const aliases = await collect(client('reader'), 'subscription { ticks(count: 1) { a: n b: n c: n } }');
    assert.equal(codeOfResult(aliases[0]), 'QUERY_TOO_COMPLEX');
    const huge = `subscription { ticks(count: 1) { ${'n '.repeat(600)} } }`;
    assert.equal(codeOfResult((await collect(client('reader'), huge))[0]), 'GRAPHQL_PARSE_FAILED');
    let deepValue: unknown = 1;
    for (let i = 0; i < 1_000; i++) deepValue = [deepValue];
    const deepVariables = await collect(client('reader'), 'subscription($v: Int) { ticks(count: 1) { n } }', { v: deepValue });
    assert.equal(codeOfResult(deepVariables[0]), 'BAD_USER_INPUT');
  });

  it('counts @rateLimit once per started stream (the 4th within the window → RATE_LIMITED with retryAfter)', async () => {
    const c = client('reader2');
    for (let i = 0; i < 3; i++) assert.equal((await collect(c, 'subscription { ticks(count: 2) { n } }')).length, 2);
    const fourth = await collect(c, 'subscription { ticks(count: 2) { n } }');
    assert.equal(codeOfResult(fourth[0]), 'RATE_LIMITED');
    const extensions = (fourth[0]!['errors'] as { extensions: { retryAfter: number } }[])[0]!.extensions;
    assert.ok(extensions.retryAfter >= 1);
  });

  it('masks an internal failure with an errorId', async () => {
    const results = await collect(client('reader3'), 'subscription { failing { n } }');
    assert.equal(codeOfResult(results[0]), 'INTERNAL_SERVER_ERROR');
    assert.doesNotMatch(JSON.stringify(results), /hunter2/);
  });

  it('stops the producer when the client completes early or disconnects', async () => {
    const stoppedBefore = producer.stopped;
    const c = client('reader4');
    const iterator = c.iterate({ query: 'subscription { ticks(count: 1000, delayMs: 5) { n } }' });
    const first = await iterator.next();
    assert.equal((first.value as { data: { ticks: { n: number } } }).data.ticks.n, 1);
    const stopped = new Promise<void>((resolve) => producer.stoppedSignal.push(resolve));
    await iterator.return?.(undefined);
    await stopped;
    assert.equal(producer.stopped, stoppedBefore + 1);

    // A dropped connection (no complete message at all) stops it too.
    const raw = client('reader5');
    const dropped = raw.iterate({ query: 'subscription { ticks(count: 1000, delayMs: 5) { n } }' });
    await dropped.next();
    const stoppedAgain = new Promise<void>((resolve) => producer.stoppedSignal.push(resolve));
    await raw.dispose();
    await stoppedAgain;
    assert.equal(producer.stopped, stoppedBefore + 2);
  });

  it('hides field suggestions where introspection is off, as HTTP does', async () => {
    const results = await collect(client('reader'), 'subscription { tick(count: 1) { n } }');
    assert.equal(codeOfResult(results[0]), 'GRAPHQL_VALIDATION_FAILED');
    const text = JSON.stringify(results);
    assert.match(text, /Cannot query field/);
    assert.doesNotMatch(text, /Did you mean/);
    const argument = await collect(client('reader'), 'subscription { ticks(cont: 1) { n } }');
    assert.doesNotMatch(JSON.stringify(argument), /Did you mean/);
  });

  it('caps the connections of one caller (the next is closed with 4429 RATE_LIMITED) and frees a slot on close', async () => {
    const held = Array.from({ length: MAX_CONNECTIONS }, () => client('reader6'));
    const iterators = held.map((c) => c.iterate({ query: 'subscription { ticks(count: 1000, delayMs: 20) { n } }' }));
    for (const iterator of iterators) await iterator.next();
    await assert.rejects(
      collect(client('reader6'), 'subscription { ticks(count: 1) { n } }'),
      (error: unknown) => (error as { code?: number }).code === 4429 && (error as { reason?: string }).reason === 'RATE_LIMITED',
    );
    // Another caller is not affected.
    assert.equal((await collect(client('reader5'), 'subscription { ticks(count: 1) { n } }')).length, 1);
    await held[0]!.dispose();
    await new Promise((resolve) => setTimeout(resolve, 100));
    // A slot is free again (adminTicks: ticks' @rateLimit budget of this caller is spent).
    const again = await collect(client('reader6'), 'subscription { adminTicks { n } }');
    assert.equal(codeOfResult(again[0]), 'FORBIDDEN', 'connected and ran (refused by @auth, not by the cap)');
    for (const c of held.slice(1)) await c.dispose();
  });

  it('refuses an upgrade on another path', async () => {
    const socket = new WebSocket(url.replace('/graphql', '/elsewhere'), 'graphql-transport-ws');
    const status = await new Promise<number>((resolve) => {
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('error', () => resolve(-1));
    });
    assert.equal(status, 404);
  });
});
