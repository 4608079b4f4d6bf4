import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auditServer } from 'graphql-http';
import { startTestServer, type TestApp } from '../helpers/test-app';

const FRONT_DOOR = readFileSync(path.resolve(__dirname, '..', '..', '..', 'docs', 'front-door.md'), 'utf8');

/**
 * The GraphQL-over-HTTP audit suite of `graphql-http` against the real server. Every MUST passes; the counts by
 * level are the ones docs/front-door.md's "GraphQL over HTTP" section states (a change shows here first).
 */
describe('GraphQL over HTTP audit (graphql-http serverAudits)', () => {
  let t: TestApp, url: string;
  before(async () => {
    ({ t, url } = await startTestServer({ NODE_ENV: 'development' }));
  });
  after(() => t.close());

  it('passes every MUST; the SHOULD/MAY results are the documented ones', async () => {
    const results = await auditServer({ url: `${url}/graphql` });
    const failed = results.filter((r): r is Exclude<typeof r, { status: 'ok' }> => r.status !== 'ok');
    const mustFailures = failed.filter((r) => r.name.startsWith('MUST'));
    assert.deepEqual(
      mustFailures.map((r) => `${r.name}: ${r.reason}`),
      [],
    );
    const summary = {
      ok: results.filter((r) => r.status === 'ok').length,
      warn: results.filter((r) => r.status === 'warn').length,
      notice: results.filter((r) => r.status === 'notice').length,
    };
    process.stdout.write(`graphql-http audit: ${JSON.stringify(summary)}\n${failed.map((r) => `  ${r.status} ${r.name}`).join('\n')}\n`);
    const stated = /graphql-http[^\n]*audit[^\n]*?: (\d+) ok, (\d+) warn, (\d+) notice/.exec(FRONT_DOOR);
    assert.ok(stated, 'docs/front-door.md states the audit result');
    assert.deepEqual(summary, { ok: Number(stated[1]), warn: Number(stated[2]), notice: Number(stated[3]) });
  });
});
