import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { gql } from '../helpers/security';
import { startTestServer, type TestApp } from '../helpers/test-app';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..', '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The README block after `<!-- runnable: name -->`. */
function block(name: string): string {
  const match = new RegExp(`<!-- runnable: ${name} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(README);
  assert.ok(match, `README has a runnable ${name} block`);
  return match[1]!;
}

/**
 * Runs a README script as written (only the URL changed to the test server's) with this Node — the minimum version
 * in CI — from a file in the repository, so `graphql-ws` and `ws` resolve as they would for a reader.
 */
async function runBlock(name: string, url: string, args: string[] = []): Promise<unknown[]> {
  const file = path.join(ROOT, 'dist', `.readme-${name}.mjs`);
  await writeFile(file, block(name).replaceAll('ws://localhost:4000', url.replace(/^http/, 'ws')));
  try {
    const { stdout } = await run(process.execPath, [file, ...args], { timeout: 30_000, env: { ...process.env, KBQL_TOKEN: '' } });
    return stdout.trim().split('\n').map((line) => JSON.parse(line) as unknown);
  } finally {
    await rm(file, { force: true });
  }
}

describe('README WebSocket examples run as written on Node 20', () => {
  let t: TestApp, url: string;
  before(async () => {
    ({ t, url } = await startTestServer({ NODE_ENV: 'development' }));
    await gql(url, { query: 'mutation { createCollection(input: { name: "handbook" }) { id } }' });
  });
  after(() => t.close());

  it('follow-job prints the job progress and its summary', async () => {
    const started = await gql(url, {
      query: 'mutation($d: [DocumentInput!]) { startIngestion(collection: "handbook", documents: $d) { id } }',
      variables: { d: [{ id: 'vacation', title: 'Vacation policy', content: 'Employees receive 25 days of paid vacation per year.' }] },
    });
    const lines = (await runBlock('follow-job', url, [started.json.data!['startIngestion'].id])) as { kind: string; job: { status: string; indexed: number } | null }[];
    assert.equal(lines.at(-1)!.kind, 'SUMMARY');
    assert.deepEqual(lines.at(-1)!.job, { status: 'COMPLETED', indexed: 1, failed: 0 });
  });

  it('ask-stream prints the streamed answer, ending with Completed', async () => {
    const lines = (await runBlock('ask-stream', url)) as { __typename: string; answer?: { answer: string | null } }[];
    assert.equal(lines[0]!.__typename, 'RetrievalDone');
    assert.equal(lines.at(-1)!.__typename, 'Completed');
    assert.match(lines.at(-1)!.answer!.answer ?? '', /25 days/);
  });
});
