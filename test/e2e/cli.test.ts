import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KbqlClient } from '../../src/cli/client';
import { DocumentsDocument, type AskQuery, type SearchQuery } from '../../src/generated/graphql';
import { createTestApp, type TestApp } from '../helpers/test-app';
import { CLI, kbql, show } from '../helpers/cli';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('kbql CLI against a real server (child processes over HTTP)', () => {
  let t: TestApp, url: string;
  let dir: string;

  before(async () => {
    t = await createTestApp();
    url = `${await t.app.listen(0, '127.0.0.1')}/graphql`;
    dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-cli-'));
    const files: Record<string, string> = {
      'docs/vacation.md':
        '# Vacation policy\n\nEmployees receive 25 days of paid vacation per year. Unused days can be carried over until March 31.\n',
      'docs/laptops.txt': 'Every engineer gets a new laptop every three years. Order it through the IT service desk.\n',
      'docs/sub/security.html':
        '<html><head><title>Security rules</title></head><body><p>Passwords must be at least 14 characters long.</p><p>Report phishing within one hour.</p></body></html>',
      'docs/empty.txt': '',
      'docs/scan.pdf': '%PDF-1.4 not ingested',
      'docs/.drafts/secret.md': '# Draft\n\nNot for the knowledge base.\n',
    };
    for (const [file, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), content);
    }
  });

  after(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('ingests a folder with a progress bar and the INDEXED / UNCHANGED / FAILED summary', async () => {
    const r = await kbql(['ingest', 'docs', '--collection', 'handbook', '--create', '--progress', '--url', url], dir);
    assert.equal(r.code, 3, `FAILED documents exit with 3\n${show(r)}`);
    assert.match(r.stdout, /^INDEXED\s+3$/m, show(r));
    assert.match(r.stdout, /^UNCHANGED\s+0$/m);
    assert.match(r.stdout, /^FAILED\s+1$/m);
    assert.match(r.stdout, /docs\/empty\.txt: BAD_USER_INPUT/);
    assert.match(r.stdout, /1 other file skipped/);
    assert.match(r.stderr, /4\/4 docs \| [\d.]+ docs\/s \| 3 indexed, 0 unchanged, 1 failed/, show(r));

    const client = new KbqlClient({ url });
    const { documents } = await client.request(DocumentsDocument, { collection: 'handbook', first: 10 });
    assert.deepEqual(documents.edges.map((e) => e.node.externalId).sort(), [
      'docs/laptops.txt',
      'docs/sub/security.html',
      'docs/vacation.md',
    ]);
    const vacation = documents.edges.find((e) => e.node.externalId === 'docs/vacation.md')!.node;
    assert.equal(vacation.contentType, 'MARKDOWN');
    assert.equal(vacation.title, 'Vacation policy');
  });

  it('re-ingests a glob in small batches as UNCHANGED, with --json for scripts', async () => {
    const r = await kbql(
      ['ingest', 'docs/**/*.{md,html,txt}', '-c', 'handbook', '--batch-size', '1', '--json', '--no-progress', '--url', url],
      dir,
    );
    assert.equal(r.code, 3, show(r));
    const summary = JSON.parse(r.stdout) as {
      files: number;
      indexed: number;
      unchanged: number;
      failed: number;
      results: { id: string; status: string }[];
    };
    assert.deepEqual(
      { files: summary.files, indexed: summary.indexed, unchanged: summary.unchanged, failed: summary.failed },
      { files: 4, indexed: 0, unchanged: 3, failed: 1 },
    );
    assert.deepEqual(summary.results.map((x) => `${x.id}:${x.status}`).sort(), [
      'docs/empty.txt:FAILED',
      'docs/laptops.txt:UNCHANGED',
      'docs/sub/security.html:UNCHANGED',
      'docs/vacation.md:UNCHANGED',
    ]);
    assert.equal(r.stderr, '', 'no progress bar with --no-progress');

    const clean = await kbql(['ingest', 'docs/vacation.md', 'docs/sub', '-c', 'handbook', '--url', url], dir);
    assert.equal(clean.code, 0, show(clean));
    assert.match(clean.stdout, /^UNCHANGED\s+2$/m);
  });

  it('asks: prints the answer with [n] markers and the numbered sources', async () => {
    const r = await kbql(['ask', 'How many vacation days do employees get?', '-c', 'handbook', '--url', url], dir);
    assert.equal(r.code, 0, show(r));
    const [answer, ...rest] = r.stdout.split('\n');
    assert.match(answer!, /25 days.*\[1\]/);
    assert.match(rest.join('\n'), /^Sources:\n {2}\[1\] Vacation policy \(docs\/vacation\.md\)\n {6}.*25 days/m);
    assert.match(r.stdout, /^ {2}\[2\] /m);

    const json = await kbql(['ask', 'How', 'many', 'vacation', 'days?', '-c', 'handbook', '--json', '--url', url], dir);
    assert.equal(json.code, 0, show(json));
    const ask = JSON.parse(json.stdout) as AskQuery['ask'];
    assert.equal(ask.abstained, false);
    assert.deepEqual(
      ask.sources.map((s) => s.n),
      ask.sources.map((_, i) => i + 1),
    );
    assert.equal(ask.sources[0]!.document.externalId, 'docs/vacation.md');
  });

  it('searches and lists collections', async () => {
    const r = await kbql(['search', 'laptop', 'refresh', '-c', 'handbook', '--mode', 'keyword', '-k', '2', '--json', '--url', url], dir);
    assert.equal(r.code, 0, show(r));
    const search = JSON.parse(r.stdout) as SearchQuery['search'];
    assert.equal(search.mode, 'KEYWORD');
    assert.equal(search.hits[0]!.document.externalId, 'docs/laptops.txt');

    const human = await kbql(['search', 'laptop', '-c', 'handbook', '--url', url], dir);
    assert.match(human.stdout, /^ {2}1\. [\d.]+ {2}docs\/laptops\.txt #0$/m, show(human));

    const list = await kbql(['collections', '--url', url], dir);
    assert.equal(list.code, 0, show(list));
    assert.match(list.stdout, /^NAME\s+DOCUMENTS\s+CHUNKS\s+EMBEDDER\s+ID$/m);
    assert.match(list.stdout, /^handbook\s+3\s+3\s+/m);
  });

  it('exits non-zero with a one-line reason: unknown collection, unreachable server, bad usage', async () => {
    const unknown = await kbql(['ask', 'anything', '-c', 'nope', '--url', url], dir);
    assert.equal(unknown.code, 1, show(unknown));
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /^kbql: NOT_FOUND: Collection "nope" was not found\.$/m);

    const ingestUnknown = await kbql(['ingest', 'docs', '-c', 'nope', '--no-progress', '--url', url], dir);
    assert.equal(ingestUnknown.code, 1, show(ingestUnknown));
    assert.match(ingestUnknown.stderr, /NOT_FOUND.*--create/);

    const port = await closedPort();
    const unreachable = await kbql(['collections', '--url', `http://127.0.0.1:${port}/graphql`], dir);
    assert.equal(unreachable.code, 1, show(unreachable));
    assert.match(unreachable.stderr, new RegExp(`^kbql: cannot reach http://127\\.0\\.0\\.1:${port}/graphql: ECONNREFUSED$`, 'm'));

    const usage = await kbql(['ask', 'no collection given', '--url', url], dir);
    assert.equal(usage.code, 2, show(usage));
    assert.match(usage.stderr, /required option '-c, --collection <name>'/);
    const missing = await kbql(['ingest', 'no-such-dir', '-c', 'handbook', '--url', url], dir);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /nothing found at "no-such-dir"/);
  });

  it('sends the bearer token and JSON content type', async () => {
    const seen: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    const fake = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ data: { collections: { totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] } } }));
      });
    });
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    try {
      const { port } = fake.address() as net.AddressInfo;
      const r = await kbql(['collections', '--url', `http://127.0.0.1:${port}`, '--token', 's3cret', '--json'], dir);
      assert.equal(r.code, 0, show(r));
      assert.deepEqual(JSON.parse(r.stdout), []);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.headers.authorization, 'Bearer s3cret');
      assert.equal(seen[0]!.headers['content-type'], 'application/json');
      assert.match((JSON.parse(seen[0]!.body) as { query: string }).query, /^query Collections\(/);
    } finally {
      fake.closeAllConnections();
      await new Promise((resolve) => fake.close(resolve));
    }
  });
});

describe('kbql serve', () => {
  let child: ChildProcess | null = null;
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-serve-'));
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('runs the server entry point, answers the CLI, and drains on SIGTERM with exit 0', async () => {
    child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], {
      env: { ...process.env, NODE_ENV: 'test', KBQL_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.resume();
    const ready = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready in 60 s: ${stdout}`)), 60_000);
      child!.stdout!.on('data', () => {
        const m = /kbql ready at (\S+)/.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child!.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`exited with ${code}: ${stdout}`));
      });
    });
    const list = await kbql(['collections', '--url', ready, '--json'], dataDir);
    assert.equal(list.code, 0, show(list));
    assert.deepEqual(JSON.parse(list.stdout), []);

    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  });
});
