import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { graphqlRequest } from '../helpers/http';
import { createTestApp } from '../helpers/test-app';

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');
const DIMENSIONS = 8;
/** Generous bounds for a loaded machine: they only turn a hang into a failure, nothing is timed. */
const WAIT_MS = 60_000;

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * An OpenAI-compatible embeddings endpoint whose next call can be held until the test releases it, plus an OTLP/HTTP
 * traces receiver — the two things kbql's main.js talks to in this test.
 */
class ProviderStub {
  readonly server = http.createServer((req, res) => void this.handle(req, res));
  readonly traceBodies: unknown[] = [];
  private hold: { arrived: () => void; released: Promise<void> } | null = null;

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next embeddings call waits for `release()`; resolves `arrived` when it comes in. */
  holdNext(): { arrived: Promise<void>; release: () => void } {
    let arrived!: () => void;
    let release!: () => void;
    const arrivedP = new Promise<void>((resolve) => (arrived = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.hold = { arrived, released };
    return { arrived: arrivedP, release };
  }

  spanNames(): string[] {
    const names: string[] = [];
    for (const body of this.traceBodies as { resourceSpans?: { scopeSpans?: { spans?: { name: string }[] }[] }[] }[]) {
      for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) names.push(s.name);
    }
    return names;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'GET' && req.url === '/v1/models')
      return json(res, { object: 'list', data: [{ id: 'stub-model', object: 'model' }] });
    if (req.method === 'POST' && req.url === '/v1/traces') {
      this.traceBodies.push(JSON.parse(body));
      return json(res, {});
    }
    if (req.method === 'POST' && req.url === '/v1/embeddings') {
      const hold = this.hold;
      this.hold = null;
      if (hold) {
        hold.arrived();
        await hold.released;
      }
      const request = JSON.parse(body) as { input: string | string[]; encoding_format?: string };
      const inputs = Array.isArray(request.input) ? request.input : [request.input];
      const data = inputs.map((text, index) => {
        const digest = createHash('sha256').update(text).digest();
        const vector = Array.from({ length: DIMENSIONS }, (_, i) => digest[i]! / 255 + 0.01);
        const embedding = request.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
        return { object: 'embedding', index, embedding };
      });
      return json(res, { object: 'list', data, model: 'stub-model', usage: { prompt_tokens: 0, total_tokens: 0 } });
    }
    res.writeHead(404).end();
  }
}

function json(res: http.ServerResponse, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describe('SIGTERM (compiled main.js as a child process)', () => {
  const stub = new ProviderStub();
  let child: ChildProcess | null = null;
  let dataDir = '';
  let stubUrl = '';

  before(async () => {
    stubUrl = await stub.start();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-sigterm-'));
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await stub.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('lets a slow in-flight request finish, refuses new connections, flushes traces, then exits 0', async () => {
    child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        PORT: '0',
        KBQL_DATA_DIR: dataDir,
        KBQL_LOG_LEVEL: 'info',
        KBQL_EMBEDDER: 'openai',
        OPENAI_BASE_URL: `${stubUrl}/v1`,
        KBQL_EMBEDDING_MODEL: 'stub-model',
        KBQL_EMBEDDING_DIMENSIONS: String(DIMENSIONS),
        OTEL_EXPORTER_OTLP_ENDPOINT: stubUrl,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const w of [...waiters]) {
        const m = stdout.match(w.pattern);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child!.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const stdoutMatch = (pattern: RegExp) =>
      within(
        new Promise<RegExpMatchArray>((resolve, reject) => {
          const m = stdout.match(pattern);
          if (m) return resolve(m);
          waiters.push({ pattern, resolve });
          void exited.then(({ code }) => reject(new Error(`main.js exited (${code}) before printing ${pattern}:\n${stdout}\n${stderr}`)));
        }),
        `${pattern}`,
      );

    const url = (await stdoutMatch(/kbql ready at (http:\/\/\S+)\/graphql/))[1]!;
    const port = Number(new URL(url).port);
    type Body = { data?: { search: { hits: unknown[] } }; errors?: unknown[] };
    const post = (query: string) => graphqlRequest<Body>(url, query, undefined, { headers: { 'x-request-id': 'slow-1' } });

    const created = await post('mutation Create { createCollection(input: { name: "handbook" }) { id } }');
    assert.equal(created.status, 200);
    const ready = (await (await fetch(`${url}/readyz`)).json()) as {
      status: string;
      checks: Record<string, { status: string; critical: boolean }>;
    };
    assert.equal(ready.status, 'ready');
    assert.deepEqual(
      ready.checks.embedder,
      { ...ready.checks.embedder, status: 'up', critical: false },
      'the provider is checked, non-critical',
    );

    const held = stub.holdNext();
    const slow = post('query Slow { search(collection: "handbook", query: "vacation days", mode: VECTOR) { hits { score } } }');
    await within(held.arrived, 'the embedding call to reach the provider');

    child.kill('SIGTERM');
    await stdoutMatch(/SIGTERM received, draining/);
    assert.equal(await connectRefused(port), true, 'no new connections once draining');
    assert.equal(child.exitCode, null, 'still running while a request is in flight');

    held.release();
    const response = await within(slow, 'the slow response');
    assert.equal(response.status, 200);
    const body = response.body;
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    assert.deepEqual(body.data?.search.hits, []);

    const { code, signal } = await within(exited, 'main.js to exit');
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, stderr);

    // Traces were flushed to the collector before exit; the slow request's spans are among them.
    const names = stub.spanNames();
    for (const name of ['POST /graphql', 'query Slow', 'kbql.retrieve', 'kbql.embed'])
      assert.ok(names.includes(name), `${name} exported; got ${names.join(', ')}`);
    // The request was logged as a success, and the process said it stopped.
    const logs = stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const slowLine = logs.find((l) => l.msg === 'request' && l.operation === 'Slow');
    assert.equal(slowLine?.outcome, 'ok');
    assert.match(String(slowLine?.traceId), /^[0-9a-f]{32}$/);
    assert.equal(logs.at(-1)?.msg, 'kbql stopped');
  });
});

describe('drain (in process)', () => {
  it('does not wait forever for a connection that never completes a request', async () => {
    const t = await createTestApp();
    const url = new URL(await t.app.listen(0, '127.0.0.1'));
    const socket = net.connect(Number(url.port), '127.0.0.1');
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write('POST /graphql HTTP/1.1\r\nhost: x\r\n'); // headers never finished
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await within(t.close(), 'stop() with a half-open connection');
      await within(closed, 'the half-open connection to be cut');
    } finally {
      socket.destroy();
    }
  });
});
