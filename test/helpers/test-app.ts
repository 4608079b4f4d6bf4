import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createApp, type App, type AppOverrides } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createContext } from '../../src/app/context';

export interface TestApp {
  app: App;
  dataDir: string;
  /** Runs an operation through the real schema in process (no HTTP). Throws on a non-single result. */
  execute<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
  ): Promise<{
    data?: T | null;
    errors?: readonly { message: string; extensions?: Record<string, unknown>; path?: readonly (string | number)[] }[];
  }>;
  close(): Promise<void>;
}

/** A fresh app on a fresh temp data dir, with test-friendly config; `env` overrides variables. */
export async function createTestApp(env: Record<string, string> = {}, overrides: AppOverrides = {}): Promise<TestApp> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-test-'));
  // Metrics on the main port even with NODE_ENV=production (its default, 9464, would collide between parallel tests).
  const config = loadConfig({
    NODE_ENV: 'test',
    KBQL_LOG_LEVEL: 'silent',
    KBQL_DATA_DIR: dataDir,
    PORT: '0',
    KBQL_METRICS_PORT: 'main',
    ...env,
  });
  const app = await createApp(config, overrides);
  return {
    app,
    dataDir,
    async execute(query, variables) {
      const response = await app.apollo.executeOperation(
        { query, variables },
        { contextValue: createContext(app.store, 'test-request', { services: app.services }) },
      );
      if (response.body.kind !== 'single') throw new Error('expected a single result');
      return response.body.singleResult as never;
    },
    async close() {
      await app.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Fails the test with the GraphQL errors when there are any. */
export function dataOf<T>(result: { data?: T | null; errors?: readonly { message: string }[] }): T {
  if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  if (!result.data) throw new Error('no data');
  // As a client sees it: plain JSON (graphql-js builds null-prototype objects).
  return JSON.parse(JSON.stringify(result.data)) as T;
}

/** The `extensions.code` of the first error. */
export function codeOf(result: { errors?: readonly { extensions?: Record<string, unknown> }[] }): unknown {
  return result.errors?.[0]?.extensions?.code;
}

/** {@link createTestApp} listening on 127.0.0.1, port 0; `url` is its origin. */
export async function startTestServer(
  env: Record<string, string> = {},
  overrides: AppOverrides = {},
): Promise<{ t: TestApp; url: string }> {
  const t = await createTestApp(env, overrides);
  return { t, url: await t.app.listen(0, '127.0.0.1') };
}
