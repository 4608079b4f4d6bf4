import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { upload } from '../helpers/jobs-fixtures';
import { startTestServer, type TestApp } from '../helpers/test-app';
import { nginxAvailable, renderTemplate, ROOT, startNginx, TEMPLATES_DIR, type RunningNginx } from '../stack/nginx';

const TEMPLATE = readFileSync(path.join(TEMPLATES_DIR, 'default.conf.template'), 'utf8');
/** The variables the template documents; Compose sets exactly these. */
const VARIABLES = ['KBQL_UPSTREAM_SERVERS', 'NGINX_PORT'];

describe('deploy/nginx/templates (the official image convention)', () => {
  it('uses only the documented ${VARIABLES}, and renders with none left over', () => {
    const stripped = TEMPLATE.replace(/#.*$/gm, '');
    assert.deepEqual([...new Set([...stripped.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]))].sort(), VARIABLES);
    const rendered = renderTemplate(TEMPLATE, { KBQL_UPSTREAM_SERVERS: 'server kbql:4000;', NGINX_PORT: '8080' });
    assert.doesNotMatch(rendered.replace(/#.*$/gm, ''), /\$\{/);
    assert.doesNotMatch(stripped, /\bresolve\b/, 'no `server … resolve` (nginx 1.27.3+ only)');
    assert.doesNotMatch(stripped, /non_idempotent/, 'a POST that reached a replica is never sent twice');
    for (const location of stripped.split(/\blocation\b/).slice(1)) {
      assert.doesNotMatch(location, /proxy_set_header/, 'a location-level proxy_set_header would drop the server-level ones');
    }
  });

  it('is what Compose mounts, with the variables set', () => {
    const compose = parse(readFileSync(path.join(ROOT, 'deploy', 'docker-compose.yml'), 'utf8').replace(/\$\{[^}]+\}/g, 'x'), { merge: true });
    const nginx = compose.services.nginx;
    assert.ok((nginx.volumes as string[]).includes('./nginx/templates:/etc/nginx/templates:ro'));
    assert.deepEqual(Object.keys(nginx.environment).sort(), VARIABLES);
    assert.match(nginx.environment.KBQL_UPSTREAM_SERVERS, /^server kbql:4000\b.*;$/);
    assert.deepEqual(readdirSync(TEMPLATES_DIR), ['default.conf.template']);
  });
});

describe('nginx from the template in front of kbql', { skip: nginxAvailable() ? false : 'nginx is not installed (apt-get install nginx)', timeout: 60_000 }, () => {
  let t: TestApp;
  let direct: string;
  let nginx: RunningNginx;

  before(async () => {
    ({ t, url: direct } = await startTestServer());
    nginx = await startNginx([new URL(direct).host]);
  });
  after(async () => {
    await nginx?.stop();
    await t?.close();
  });

  it('routes POST /v1/uploads to kbql (201 through nginx as directly)', async () => {
    const result = await upload(nginx.url, 'notes.txt', Buffer.from('Harbor lanterns glow copper at dusk.\n'), { mediaType: 'text/plain' });
    assert.equal(result.status, 201, JSON.stringify(result.body));
    assert.equal(typeof result.body.id, 'string');
  });

  it("keeps the client's X-Request-Id, and makes one only when there is none", async () => {
    const kept = await fetch(`${nginx.url}/healthz`, { headers: { 'x-request-id': 'client-chosen-id-42' } });
    assert.equal(kept.headers.get('x-request-id'), 'client-chosen-id-42');
    const made = await fetch(`${nginx.url}/healthz`);
    assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/, "nginx's $request_id");
  });

  it("answers a body over kbql's limit with kbql's JSON PAYLOAD_TOO_LARGE, and one over nginx's limit in the same shape", async () => {
    const overKbql = await fetch(`${nginx.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(16 * 1024 * 1024) } }),
    });
    assert.equal(overKbql.status, 413);
    assert.match(overKbql.headers.get('content-type') ?? '', /application\/json/);
    const body = (await overKbql.json()) as { errors: { extensions: { code: string; maxBytes?: number } }[] };
    assert.equal(body.errors[0]!.extensions.code, 'PAYLOAD_TOO_LARGE');
    assert.equal(body.errors[0]!.extensions.maxBytes, 16 * 1024 * 1024, "kbql's own answer");

    const overNginx = await fetch(`${nginx.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(18 * 1024 * 1024) });
    assert.equal(overNginx.status, 413);
    assert.match(overNginx.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(((await overNginx.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code, 'PAYLOAD_TOO_LARGE');
  });

  it('does not serve /metrics', async () => {
    assert.equal((await fetch(`${nginx.url}/metrics`)).status, 404);
  });
});
