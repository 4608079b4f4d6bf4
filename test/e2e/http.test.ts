import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { postGraphql } from '../helpers/http';
import { createTestApp, type TestApp, startTestServer } from '../helpers/test-app';

type LooseBody = Record<string, any>;

describe('HTTP (real server on port 0)', () => {
  let t: TestApp, url: string;

  before(async () => {
    ({ t, url } = await startTestServer({ NODE_ENV: 'development', KBQL_MAX_BODY_BYTES: '65536' }));
  });
  after(() => t.close());

  it('serves /healthz and /readyz with the store check', async () => {
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    const report = (await ready.json()) as { status: string; checks: Record<string, { status: string; critical: boolean }> };
    assert.equal(report.status, 'ready');
    assert.deepEqual(Object.keys(report.checks), ['store', 'vectorIndex']);
    assert.equal(report.checks.store!.status, 'up');
    assert.equal(report.checks.store!.critical, true);
  });

  it('answers 413 PAYLOAD_TOO_LARGE above the body limit', async () => {
    const big = JSON.stringify({ query: '{ collections { totalCount } }', variables: { pad: 'x'.repeat(70_000) } });
    const res = await postGraphql<LooseBody>(url, big);
    assert.equal(res.status, 413);
    assert.equal(res.body.errors[0].extensions.code, 'PAYLOAD_TOO_LARGE');
  });

  it('reads a refused body to its end before answering 413, as a proxy that writes all of it first needs', async () => {
    // nginx sends the whole body before reading the answer: a connection closed under it while it writes is a 502.
    // Before the fix kbql answered at once and closed, so the later writes here failed with EPIPE/ECONNRESET.
    for (const declared of [true, false]) {
      const { hostname, port } = new URL(url);
      const socket = net.connect(Number(port), hostname);
      let received = '';
      let writeError: Error | null = null;
      socket.on('data', (part: Buffer) => (received += part.toString('utf8')));
      socket.on('error', (error) => (writeError ??= error));
      await new Promise((resolve) => socket.once('connect', resolve));
      const piece = 'x'.repeat(16 * 1024);
      const pieces = 7; // 112 KiB: over the 64 KiB limit, within the drain budget
      socket.write(
        `POST /graphql HTTP/1.1\r\nhost: kbql\r\ncontent-type: application/json\r\n` +
          (declared ? `content-length: ${piece.length * pieces}\r\n\r\n` : 'transfer-encoding: chunked\r\n\r\n'),
      );
      for (let i = 0; i < pieces; i++) {
        await sleep(40);
        if (writeError) break;
        socket.write(declared ? piece : `${piece.length.toString(16)}\r\n${piece}\r\n`);
        if (i < pieces - 1) assert.equal(received, '', `no answer before the body is sent (piece ${i})`);
      }
      if (!declared) socket.write('0\r\n\r\n');
      const deadline = Date.now() + 5_000;
      while (!received.includes('PAYLOAD_TOO_LARGE') && !writeError && Date.now() < deadline) await sleep(10);
      socket.destroy();
      assert.equal(writeError, null, `${declared ? 'content-length' : 'chunked'}: the connection stayed open while the body was written`);
      assert.match(received, /^HTTP\/1\.1 413 /);
      assert.match(received, /"code":"PAYLOAD_TOO_LARGE"/);
    }
  });

  it('decodes a body whose multi-byte characters are split between the parts it arrives in', async () => {
    // The body is decoded part by part as it arrives; a character cut between two parts must come out whole.
    const text = 'Le café du 日本語 team 😀 — ü.';
    assert.equal((await t.execute('mutation { createCollection(input: { name: "utf8" }) { id } }')).errors, undefined);
    const payload = Buffer.from(
      JSON.stringify({
        query: 'query($d: DocumentInput!) { previewChunks(collection: "utf8", document: $d) { chunks { text } } }',
        variables: { d: { id: 'd', content: text, contentType: 'TEXT' } },
      }),
    );
    const { hostname, port } = new URL(url);
    const socket = net.connect(Number(port), hostname);
    const parts: Buffer[] = [];
    socket.on('data', (part: Buffer) => parts.push(part));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      'POST /graphql HTTP/1.1\r\nhost: kbql\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n',
    );
    // One byte a part: every character of two to four bytes is cut.
    for (const byte of payload) socket.write(Buffer.concat([Buffer.from('1\r\n'), Buffer.from([byte]), Buffer.from('\r\n')]));
    socket.write('0\r\n\r\n');
    await new Promise((resolve) => socket.once('close', resolve));
    const received = Buffer.concat(parts).toString('utf8');
    assert.match(received, /^HTTP\/1\.1 200 /, received);
    const body = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as {
      data: { previewChunks: { chunks: { text: string }[] } };
    };
    assert.ok(body.data, received);
    assert.deepEqual(
      body.data.previewChunks.chunks.map((c) => c.text),
      [text],
    );
  });

  it('rejects malformed JSON and unknown routes with clear codes, and echoes request ids', async () => {
    const bad = await postGraphql<LooseBody>(url, '{not json');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].extensions.code, 'BAD_REQUEST');
    const missing = await fetch(`${url}/nope`);
    assert.equal(missing.status, 404);
    const ok = await postGraphql<LooseBody>(url, { query: '{ collections { totalCount } }' }, { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-request-id'), 'abc-123');
    assert.equal(ok.body.data.collections.totalCount >= 0, true);
  });

  it('keeps Apollo CSRF prevention on for GET requests', async () => {
    const res = await fetch(`${url}/graphql?query=${encodeURIComponent('{ collections { totalCount } }')}`);
    assert.equal(res.status, 400);
    const allowed = await fetch(`${url}/graphql?query=${encodeURIComponent('{ collections { totalCount } }')}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    assert.equal(allowed.status, 200);
  });

  it('serves the Apollo Sandbox landing page in development', async () => {
    const res = await fetch(`${url}/graphql`, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /sandbox/i);
  });

  it('reports GraphQL validation errors with Apollo codes', async () => {
    const res = await postGraphql<LooseBody>(url, { query: '{ nope }' });
    assert.equal(res.status, 400);
    assert.equal(res.body.errors[0].extensions.code, 'GRAPHQL_VALIDATION_FAILED');
  });
});

describe('HTTP in production mode', () => {
  it('serves no landing page and no introspection', async () => {
    const t = await createTestApp({ NODE_ENV: 'production', KBQL_JWT_SECRET: 'production-test-secret-of-at-least-32-chars' });
    const url = await t.app.listen(0, '127.0.0.1');
    try {
      const res = await fetch(`${url}/graphql`, { headers: { accept: 'text/html' } });
      assert.notEqual(res.status, 200);
      const introspection = await postGraphql<LooseBody>(url, { query: '{ __schema { queryType { name } } }' });
      assert.equal(introspection.body.errors[0].extensions.code, 'GRAPHQL_VALIDATION_FAILED');
    } finally {
      await t.close();
    }
  });
});
