import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import { startTracing } from '../src/observability/tracing-sdk';

/**
 * One server under test for `http-throughput.bench`, in its own process so the load generator does not share its
 * event loop. Prints `READY <url>` once listening; stops on SIGTERM.
 *
 *   node dist/bench/http-target.js kbql <dataDir> [NAME=value ...]   kbql in production mode on an existing data dir
 *   node dist/bench/http-target.js apollo <response.json>            bare Apollo Server 5 answering from memory
 */

/** The part of kbql's schema the benchmark query touches, for the bare server. */
export const BARE_TYPE_DEFS = `#graphql
  type Query { search(collection: String!, query: String!, topK: Int): SearchPayload! }
  type SearchPayload { hits: [SearchHit!]! }
  type SearchHit { score: Float! vectorScore: Float keywordScore: Float chunk: Chunk! document: Document! }
  type Chunk { id: ID! index: Int! text: String! }
  type Document { id: ID! externalId: String! title: String }
`;

async function main(): Promise<void> {
  const [kind, arg, ...rest] = process.argv.slice(2);
  let stop: () => Promise<void>;
  let url: string;
  if (kind === 'kbql') {
    const extra = Object.fromEntries(rest.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
    // The OpenTelemetry SDK reads its own OTEL_* variables (sampler, endpoint) from the environment, as in main.ts.
    for (const [name, value] of Object.entries(extra)) if (name.startsWith('OTEL_')) process.env[name] = value;
    const config = loadConfig({ NODE_ENV: 'production', KBQL_LOG_LEVEL: 'error', KBQL_DATA_DIR: arg!, PORT: '0', ...extra });
    const tracing = config.tracing.exporter
      ? startTracing({ serviceName: config.tracing.serviceName, exporter: config.tracing.exporter })
      : null;
    const app = await createApp(config);
    const origin = await app.listen(0, '127.0.0.1');
    url = `${origin}/graphql`;
    await untilReady(origin);
    stop = async () => {
      await app.stop();
      await tracing?.shutdown();
    };
  } else if (kind === 'apollo') {
    const payload = JSON.parse(readFileSync(arg!, 'utf8')) as unknown;
    const server = new ApolloServer({ typeDefs: BARE_TYPE_DEFS, resolvers: { Query: { search: () => payload } } });
    ({ url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } }));
    stop = () => server.stop();
  } else {
    throw new Error(`unknown target ${kind}`);
  }
  process.on('SIGTERM', () => {
    void stop().finally(() => process.exit(0));
  });
  process.stdout.write(`READY ${url}\n`);
}

/**
 * Waits for `/readyz`: the store maps its vector indexes after listening, and a search before that scans exactly,
 * so its fused scores could differ from the graph's in the last digits (the bench compares responses byte for byte).
 */
async function untilReady(origin: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const status = await fetch(`${origin}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${origin}/readyz did not answer 200 within 120 s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
