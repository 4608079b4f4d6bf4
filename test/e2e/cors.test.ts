import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { postGraphql } from '../helpers/http';
import { JWT_ENV } from '../helpers/security';
import { createTestApp, type TestApp, startTestServer } from '../helpers/test-app';

const STUDIO = 'https://studio.apollographql.com';
const EVIL = 'https://evil.example';
const QUERY = JSON.stringify({ query: '{ collections { totalCount } }' });

const preflight = (url: string, origin: string) =>
  fetch(`${url}/graphql`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type,authorization,apollo-require-preflight,x-api-key',
    },
  });
const actual = (url: string, origin: string, headers: Record<string, string> = {}) =>
  postGraphql(url, QUERY, { headers: { origin, ...headers } });

describe('CORS on /graphql (real server on port 0)', () => {
  describe('development defaults: Studio and localhost', () => {
    let t: TestApp, url: string;
    before(async () => {
      ({ t, url } = await startTestServer({ NODE_ENV: 'development' }));
    });
    after(() => t.close());

    it('answers an allowed preflight 204 with the headers Sandbox and clients send', async () => {
      for (const origin of [STUDIO, 'http://localhost:5173', 'http://127.0.0.1:3000']) {
        const res = await preflight(url, origin);
        assert.equal(res.status, 204, origin);
        assert.equal(res.headers.get('access-control-allow-origin'), origin);
        assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
        const allowed = (res.headers.get('access-control-allow-headers') ?? '').split(',');
        for (const header of ['apollo-require-preflight', 'authorization', 'content-type', 'x-api-key'])
          assert.ok(allowed.includes(header), header);
        assert.equal(res.headers.get('access-control-allow-credentials'), null, 'credentials off unless configured');
        assert.match(res.headers.get('vary') ?? '', /Origin/);
      }
    });

    it('gives an allowed actual request Access-Control-Allow-Origin', async () => {
      const res = await actual(url, STUDIO);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), STUDIO);
      assert.match(res.headers.get('access-control-expose-headers') ?? '', /x-request-id/);
    });

    it('refuses a preflight from another origin with 403 naming the variable, and sends no CORS header on its requests', async () => {
      const res = await preflight(url, EVIL);
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      const body = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
      assert.equal(body.errors[0]!.extensions.code, 'FORBIDDEN');
      assert.match(body.errors[0]!.message, /KBQL_CORS_ORIGINS/);
      const post = await actual(url, EVIL);
      assert.equal(post.status, 200, 'served as before; the browser withholds it');
      assert.equal(post.headers.get('access-control-allow-origin'), null);
    });

    it('answers OPTIONS without Origin (not a browser) 204 with Allow, and other methods still 405', async () => {
      const res = await fetch(`${url}/graphql`, { method: 'OPTIONS' });
      assert.equal(res.status, 204);
      assert.match(res.headers.get('allow') ?? '', /POST/);
      const put = await fetch(`${url}/graphql`, { method: 'PUT', headers: { origin: STUDIO } });
      assert.equal(put.status, 405);
    });
  });

  describe('production: none by default, listed origins when configured', () => {
    let closed: TestApp;
    let open: TestApp;
    let closedUrl: string;
    let openUrl: string;
    before(async () => {
      closed = await createTestApp({ ...JWT_ENV, NODE_ENV: 'production' });
      open = await createTestApp({
        ...JWT_ENV,
        NODE_ENV: 'production',
        KBQL_CORS_ORIGINS: 'https://app.example.com',
        KBQL_CORS_CREDENTIALS: 'true',
      });
      closedUrl = await closed.app.listen(0, '127.0.0.1');
      openUrl = await open.app.listen(0, '127.0.0.1');
    });
    after(async () => {
      await closed.close();
      await open.close();
    });

    it('refuses every origin by default, Studio included', async () => {
      for (const origin of [STUDIO, 'http://localhost:5173']) {
        const res = await preflight(closedUrl, origin);
        assert.equal(res.status, 403, origin);
        assert.equal(res.headers.get('access-control-allow-origin'), null);
        const post = await actual(closedUrl, origin);
        assert.equal(post.headers.get('access-control-allow-origin'), null);
      }
    });

    it('allows exactly the listed origin, with credentials when configured', async () => {
      const ok = await preflight(openUrl, 'https://app.example.com');
      assert.equal(ok.status, 204);
      assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example.com');
      assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
      const post = await actual(openUrl, 'https://app.example.com');
      assert.equal(post.status, 401, 'still needs a token');
      assert.equal(post.headers.get('access-control-allow-origin'), 'https://app.example.com', 'the browser may read the 401');
      assert.equal((await preflight(openUrl, STUDIO)).status, 403);
      assert.equal((await actual(openUrl, EVIL)).headers.get('access-control-allow-origin'), null);
    });
  });
});
