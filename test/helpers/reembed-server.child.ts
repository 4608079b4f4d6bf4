/**
 * A kbql server as a child process for the re-embedding crash test: `node reembed-server.child.js <dataDir>` starts
 * `createApp` on a free port (auth off) with the embedders of {@link REEMBED_ENV} and prints `listening <url>`.
 * It runs until killed.
 */
import 'reflect-metadata';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';

/** Embedder A (`default`): hash, 256 dimensions; embedder B (`b`): hash, 128 dimensions. */
export const REEMBED_ENV = {
  KBQL_EMBEDDING_DIMENSIONS: '256',
  KBQL_EMBEDDERS: JSON.stringify({ b: { provider: 'hash', dimensions: 128 } }),
} as const;

async function main(dataDir: string): Promise<void> {
  const config = loadConfig({
    NODE_ENV: 'test',
    KBQL_LOG_LEVEL: 'silent',
    KBQL_DATA_DIR: dataDir,
    KBQL_AUTH_MODE: 'none',
    KBQL_VECTOR_INDEX: 'exact',
    ...REEMBED_ENV,
  });
  const app = await createApp(config);
  const url = await app.listen(0, '127.0.0.1');
  process.stdout.write(`listening ${url}\n`);
  process.on('SIGTERM', () => {
    void app.stop().then(() => process.exit(0));
  });
}

if (require.main === module) {
  const [dataDir] = process.argv.slice(2);
  if (!dataDir) {
    process.stderr.write('usage: reembed-server.child.js <dataDir>\n');
    process.exit(2);
  }
  main(dataDir).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
