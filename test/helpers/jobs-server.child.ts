/**
 * A kbql server as a child process, for the ingestion-job crash and multi-replica tests: `node jobs-server.child.js
 * <dataDir> [redisUrl]` starts `createApp` on a free port (auth off, offline embedder) and prints `listening <url>`.
 * With a redis URL the jobs use BullMQ and Redis (KBQL_JOB_QUEUE=redis). It runs until killed.
 */
import 'reflect-metadata';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';

async function main(dataDir: string, redisUrl: string | undefined): Promise<void> {
  const config = loadConfig({
    NODE_ENV: 'test',
    KBQL_LOG_LEVEL: 'silent',
    KBQL_DATA_DIR: dataDir,
    KBQL_AUTH_MODE: 'none',
    KBQL_INGEST_CONCURRENCY: process.env['KBQL_INGEST_CONCURRENCY'] ?? '2',
    KBQL_EMBEDDING_DIMENSIONS: '256',
    // Passed through when the test sets them (the re-embedding crash test: a second embedder, the exact index).
    ...pick(process.env, ['KBQL_EMBEDDERS', 'KBQL_VECTOR_INDEX']),
    ...(redisUrl
      ? {
          REDIS_URL: redisUrl,
          KBQL_JOB_QUEUE: 'redis',
          KBQL_CACHE_PREFIX: process.env['KBQL_CACHE_PREFIX'] ?? 'kbql',
          KBQL_JOB_LOCK_MS: process.env['KBQL_JOB_LOCK_MS'] ?? '30000',
        }
      : {}),
  });
  const app = await createApp(config);
  const url = await app.listen(0, '127.0.0.1');
  process.stdout.write(`listening ${url}\n`);
  process.on('SIGTERM', () => {
    void app.stop().then(() => process.exit(0));
  });
}

function pick(env: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (env[name] === undefined ? [] : [[name, env[name]]])));
}

if (require.main === module) {
  const [dataDir, redisUrl] = process.argv.slice(2);
  if (!dataDir) {
    process.stderr.write('usage: jobs-server.child.js <dataDir> [redisUrl]\n');
    process.exit(2);
  }
  main(dataDir, redisUrl).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
