import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CLI } from '../helpers/cli';
import { ROOT, readDoc, runnableBlock, runnableBlocks } from '../helpers/docs';
import { minimalPdf } from '../helpers/jobs-fixtures';
import { JWT_ENV, gql, tokenFor } from '../helpers/security';
import { startTestServer, type TestApp } from '../helpers/test-app';

const run = promisify(execFile);
/** The URL the examples are written for; each runner swaps in its test server's. */
const DOC_ORIGIN = 'http://localhost:4000';

const VACATION = {
  id: 'vacation',
  title: 'Vacation policy',
  content: 'Employees receive 25 days of paid vacation per year. Unused days can be carried over until March 31.',
};

/** Runs a shell block with bash (`-euo pipefail`), the URL swapped for `url`. */
async function runShell(name: string, url: string, options: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  const script = runnableBlock(name).replaceAll(DOC_ORIGIN, url);
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], {
    cwd: options.cwd ?? ROOT,
    timeout: 120_000,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
  });
  return stdout;
}

/**
 * Runs a JavaScript block as written (only the URL changed to the test server's) with this Node — the minimum version
 * in CI — from a file in the repository, so `graphql-ws`, `ws` and `graphql-request` resolve as they would for a reader.
 */
async function runScript(name: string, url: string, args: string[] = []): Promise<unknown[]> {
  const file = path.join(ROOT, 'dist', `.readme-${name}.mjs`);
  await writeFile(file, runnableBlock(name).replaceAll(`ws://localhost:4000`, url.replace(/^http/, 'ws')).replaceAll(DOC_ORIGIN, url));
  try {
    const { stdout } = await run(process.execPath, [file, ...args], { timeout: 30_000, env: { ...process.env, KBQL_TOKEN: '' } });
    return stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as unknown);
  } finally {
    await rm(file, { force: true });
  }
}

/** Sends a GraphQL block as the query of one POST /graphql; fails on errors. */
async function runGraphql(name: string, url: string, token?: string): Promise<Record<string, any>> {
  const result = await gql(url, { query: runnableBlock(name) }, token);
  assert.equal(result.json.errors, undefined, JSON.stringify(result.json.errors));
  return result.json.data!;
}

/**
 * A directory with a `kbql` command, as `npm link` would give, that talks to `url`: the CLI has no URL variable, so
 * the stand-in adds `--url` (every command of the examples but `token` talks to a server).
 */
async function kbqlOnPath(url: string): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-bin-'));
  const script = `#!/bin/sh\nif [ "$1" = token ]; then exec "${process.execPath}" "${CLI}" "$@"; fi\nexec "${process.execPath}" "${CLI}" "$@" --url "${url}/graphql"\n`;
  await writeFile(path.join(dir, 'kbql'), script);
  await chmod(path.join(dir, 'kbql'), 0o755);
  return { dir, env: { PATH: `${dir}${path.delimiter}${process.env['PATH'] ?? ''}` } };
}

interface Servers {
  /** Development defaults, nothing stored: the first query starts here. */
  fresh: string;
  /** Development defaults, a `handbook` collection holding the vacation policy. */
  dev: string;
  /** Development defaults, for the CLI examples (they create their own collections). */
  cli: string;
  /** Production with JWTs (JWT_ENV) and https://app.example.com as a CORS origin. */
  jwt: string;
}

/** One runner per runnable block, by name: runs it as a reader would and checks what the page says it does. */
const RUNNERS: Record<string, (s: Servers) => Promise<void>> = {
  'first-query': async ({ fresh }) => {
    const stdout = await runShell('first-query', fresh);
    const outputs = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { data?: Record<string, any>; errors?: unknown[] });
    assert.equal(outputs.length, 3, `three JSON responses, got: ${stdout}`);
    for (const out of outputs) assert.equal(out.errors, undefined, JSON.stringify(out.errors));
    assert.equal(outputs[1]!.data!['ingestDocuments'].indexed, 2);
    const ask = outputs[2]!.data!['ask'];
    assert.equal(ask.abstained, false);
    assert.match(ask.answer, /\[1\]/);
    // The response README shows after the block is the one the server gives.
    const shown = /The last call answers with [^`]*`(\{"data":\{"ask".*?\}\}\})`/s.exec(readDoc('README.md'));
    assert.ok(shown, 'README shows the ask response');
    assert.deepEqual(outputs[2], JSON.parse(shown[1]!));
  },

  'cli-tour': async ({ cli }) => {
    const { dir, env } = await kbqlOnPath(cli);
    try {
      const stdout = await runShell('cli-tour', cli, { cwd: ROOT, env });
      assert.match(stdout, /INDEXED\s+\d+/);
      assert.match(stdout, /docs\/security\.md/, 'the search finds the rate limits in docs/security.md');
      assert.doesNotMatch(
        stdout,
        /Not found in the knowledge base/,
        'the docs answer the question README asks (docs/api.md, job retention)',
      );
      assert.match(stdout, /KBQL_JOB_RETENTION_DAYS/);
      assert.match(stdout, /kbql-docs/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },

  'cli-commands': async ({ cli }) => {
    const { dir, env } = await kbqlOnPath(cli);
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'kbql-cli-docs-'));
    try {
      await mkdir(path.join(cwd, 'docs'));
      await mkdir(path.join(cwd, 'notes', 'it'), { recursive: true });
      await mkdir(path.join(cwd, 'scans'));
      await writeFile(path.join(cwd, 'docs', 'vacation.md'), `# ${VACATION.title}\n\n${VACATION.content}\n`);
      await writeFile(path.join(cwd, 'notes', 'it', 'laptops.txt'), 'Every engineer gets a new laptop every three years.\n');
      await writeFile(path.join(cwd, 'scans', 'harbor.pdf'), minimalPdf(['Quartz harbors glow at dusk.'], { title: 'Harbor' }));
      const stdout = await runShell('cli-commands', cli, { cwd, env });
      assert.match(stdout, /25 days/);
      assert.match(stdout, /COMPLETED/, 'the async job completed');
      assert.match(stdout, /handbook/);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(cwd, { recursive: true, force: true });
    }
  },

  'start-ingestion': async ({ dev }) => {
    const data = await runGraphql('start-ingestion', dev);
    assert.equal(data['startIngestion'].total, 1);
    assert.match(data['startIngestion'].status, /^(QUEUED|RUNNING|COMPLETED)$/);
  },

  upload: async ({ jwt }) => {
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'kbql-upload-'));
    try {
      await writeFile(path.join(cwd, 'report.pdf'), minimalPdf(['Quarterly report.']));
      const stdout = await runShell('upload', jwt, { cwd, env: { TOKEN: await tokenFor('WRITER', 'acme') } });
      const upload = JSON.parse(stdout) as Record<string, unknown>;
      assert.match(String(upload['id']), /^upl_/);
      assert.equal(upload['filename'], 'report.pdf');
      assert.equal(upload['mediaType'], 'application/pdf');
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  },

  'graphql-request': async ({ dev }) => {
    const [ask] = (await runScript('graphql-request', dev)) as { answer: string | null; abstained: boolean; sources: unknown[] }[];
    assert.equal(ask!.abstained, false);
    assert.match(ask!.answer ?? '', /25 days/);
  },

  'follow-job': async ({ dev }) => {
    const started = await gql(dev, {
      query: 'mutation($d: [DocumentInput!]) { startIngestion(collection: "handbook", documents: $d) { id } }',
      variables: { d: [VACATION] },
    });
    const lines = (await runScript('follow-job', dev, [started.json.data!['startIngestion'].id])) as {
      kind: string;
      job: { status: string; indexed: number } | null;
    }[];
    assert.equal(lines.at(-1)!.kind, 'SUMMARY');
    assert.deepEqual(lines.at(-1)!.job, { status: 'COMPLETED', indexed: 1, failed: 0 });
  },

  'ask-stream': async ({ dev }) => {
    const lines = (await runScript('ask-stream', dev)) as { __typename: string; answer?: { answer: string | null } }[];
    assert.equal(lines[0]!.__typename, 'RetrievalDone');
    assert.equal(lines.at(-1)!.__typename, 'Completed');
    assert.match(lines.at(-1)!.answer!.answer ?? '', /25 days/);
  },

  'create-api-key': async ({ dev }) => {
    const data = await runGraphql('create-api-key', dev);
    assert.match(data['createApiKey'].secret, /^kbql_/);
    assert.equal(data['createApiKey'].apiKey.role, 'WRITER');
  },

  'dev-token': async ({ jwt }) => {
    const { dir, env } = await kbqlOnPath(jwt);
    try {
      const lines = (await runShell('dev-token', jwt, { env: { ...env, ...JWT_ENV } })).trim().split('\n');
      assert.match(lines[0]!, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
      assert.deepEqual(JSON.parse(lines[1]!), { data: { collections: { totalCount: 0 } } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },

  'cors-check': async ({ jwt, dev }) => {
    assert.match((await runShell('cors-check', jwt)).trim(), /^HTTP\/1\.1 204/, 'a listed origin');
    assert.match((await runShell('cors-check', dev)).trim(), /^HTTP\/1\.1 403/, 'an origin not listed');
  },
};

describe('the runnable blocks of README.md and docs/ run as written', () => {
  const apps: TestApp[] = [];
  const servers = {} as Servers;
  before(async () => {
    const start = async (key: keyof Servers, env: Record<string, string>) => {
      const { t, url } = await startTestServer(env);
      apps.push(t);
      servers[key] = url;
    };
    await start('fresh', { NODE_ENV: 'development' });
    await start('dev', { NODE_ENV: 'development' });
    await start('cli', { NODE_ENV: 'development' });
    await start('jwt', { ...JWT_ENV, NODE_ENV: 'production', KBQL_CORS_ORIGINS: 'https://app.example.com' });
    await gql(servers.dev, { query: 'mutation { createCollection(input: { name: "handbook" }) { id } }' });
    await gql(servers.dev, {
      query: 'mutation($d: [DocumentInput!]!) { ingestDocuments(collection: "handbook", documents: $d) { indexed } }',
      variables: { d: [VACATION] },
    });
  });
  after(async () => {
    for (const app of apps) await app.close();
  });

  it('every runnable block has a runner here, and every runner a block', () => {
    assert.deepEqual([...runnableBlocks().keys()].sort(), Object.keys(RUNNERS).sort());
  });

  for (const [name, runner] of Object.entries(RUNNERS)) {
    it(`${name} (${runnableBlocks().get(name)?.file ?? 'no block'})`, () => runner(servers));
  }
});
