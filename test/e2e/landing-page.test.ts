import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp, startTestServer } from '../helpers/test-app';

/** The page a browser gets for GET /graphql, and its static text (what shows when no script can load). */
async function landingPage(url: string): Promise<{ status: number; html: string; text: string }> {
  const res = await fetch(`${url}/graphql`, { headers: { accept: 'text/html' } });
  const html = await res.text();
  const text = html
    .replace(/<script[\s\S]*?<\/script>/g, '')
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ');
  return { status: res.status, html, text };
}

describe('development landing page: Sandbox, and what to do when its CDN is unreachable', () => {
  let t: TestApp, url: string;
  before(async () => {
    ({ t, url } = await startTestServer({ NODE_ENV: 'development' }));
  });
  after(() => t.close());

  it('embeds Sandbox and, in plain HTML, links Studio Sandbox with the endpoint and shows a curl command', async () => {
    const page = await landingPage(url);
    assert.equal(page.status, 200);
    assert.match(page.html, /embeddable-sandbox\.cdn\.apollographql\.com/);
    // Without any script (offline: the CDN script fails), the help is there.
    assert.match(page.text, /did not load: it comes from Apollo's CDN/);
    assert.match(
      page.html,
      /href="https:\/\/studio\.apollographql\.com\/sandbox\/explorer\?endpoint=http%3A%2F%2Flocalhost%3A4000%2Fgraphql"/,
    );
    assert.match(page.text, /curl -s http:\/\/localhost:4000\/graphql -H 'content-type: application\/json'/);
    // The inline script that puts this page's URL in carries the page's nonce.
    const nonce = /nonce="?([A-Za-z0-9+/=_-]+)"?/.exec(page.html)![1]!;
    assert.match(page.html, new RegExp(`<script nonce="${nonce}">\\s*\\(function \\(\\) \\{\\s*var endpoint = window\\.location\\.origin`));
  });

  it('is off in production', async () => {
    const prod = await createTestApp({ NODE_ENV: 'production', KBQL_AUTH_MODE: 'none' });
    try {
      const prodUrl = await prod.app.listen(0, '127.0.0.1');
      const page = await landingPage(prodUrl);
      assert.doesNotMatch(page.html, /kbql-offline-help/);
    } finally {
      await prod.close();
    }
  });
});
