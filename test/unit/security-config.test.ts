import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Kind, parse, type OperationDefinitionNode } from 'graphql';
import { loadConfig } from '../../src/config';
import { estimateOperation } from '../../src/graphql/plugins/query-limits.plugin';
import { parseWindow } from '../../src/graphql/directives/rate-limit.directive';

const SECRET = 's'.repeat(32);

describe('security configuration', () => {
  it('auth is off by default in development and test, required in production', () => {
    assert.equal(loadConfig({}).auth.mode, 'none', 'a fresh `npm start` needs no token');
    assert.equal(loadConfig({ NODE_ENV: 'test' }).auth.mode, 'none');
    assert.throws(() => loadConfig({ NODE_ENV: 'production' }), /KBQL_JWT_SECRET or KBQL_JWT_JWKS_URL/);
    const prod = loadConfig({ NODE_ENV: 'production', KBQL_JWT_SECRET: SECRET });
    assert.deepEqual([prod.auth.mode, prod.auth.jwt?.algorithms], ['jwt', ['HS256']]);
    assert.equal(
      loadConfig({ NODE_ENV: 'production', KBQL_AUTH_MODE: 'none' }).auth.mode,
      'none',
      'explicitly off is allowed (and warned about)',
    );
  });

  it('pins algorithms to the key kind: HS* only with a secret, never with JWKS', () => {
    assert.deepEqual(loadConfig({ KBQL_AUTH_MODE: 'jwt', KBQL_JWT_JWKS_URL: 'https://idp.example/jwks' }).auth.jwt?.algorithms, [
      'RS256',
      'ES256',
    ]);
    assert.throws(
      () => loadConfig({ KBQL_AUTH_MODE: 'jwt', KBQL_JWT_JWKS_URL: 'https://idp.example/jwks', KBQL_JWT_ALGORITHMS: 'RS256,HS256' }),
      /HS\* algorithms never/,
    );
    assert.throws(() => loadConfig({ KBQL_AUTH_MODE: 'jwt', KBQL_JWT_SECRET: SECRET, KBQL_JWT_ALGORITHMS: 'RS256' }), /only HS256/);
    assert.throws(
      () => loadConfig({ KBQL_AUTH_MODE: 'jwt', KBQL_JWT_SECRET: SECRET, KBQL_JWT_JWKS_URL: 'https://idp.example/jwks' }),
      /exactly one/,
    );
    assert.throws(() => loadConfig({ KBQL_AUTH_MODE: 'jwt', KBQL_JWT_SECRET: 'short' }), /KBQL_JWT_SECRET/);
  });

  it('introspection only with NODE_ENV explicitly development or test; rate limits on except in test', () => {
    assert.equal(loadConfig({}).graphql.introspection, false, 'NODE_ENV unset counts as production here');
    assert.equal(loadConfig({ NODE_ENV: 'development' }).graphql.introspection, true);
    assert.equal(loadConfig({}).rateLimit.enabled, true);
    assert.equal(loadConfig({ NODE_ENV: 'test' }).rateLimit.enabled, false);
    assert.equal(loadConfig({ NODE_ENV: 'test', KBQL_RATE_LIMIT: 'true' }).rateLimit.enabled, true);
  });

  it('rate limits off by default in development with authentication off, on with it on and in production', () => {
    const dev = loadConfig({ NODE_ENV: 'development' });
    assert.equal(dev.auth.mode, 'none');
    assert.equal(dev.rateLimit.enabled, false);
    assert.match(dev.rateLimit.reason, /KBQL_AUTH_MODE=none/);
    assert.equal(loadConfig({ NODE_ENV: 'development', KBQL_RATE_LIMIT: 'true' }).rateLimit.enabled, true);
    assert.equal(loadConfig({ NODE_ENV: 'development', KBQL_AUTH_MODE: 'jwt', KBQL_JWT_SECRET: SECRET }).rateLimit.enabled, true);
    assert.equal(loadConfig({ NODE_ENV: 'production', KBQL_AUTH_MODE: 'none' }).rateLimit.enabled, true);
    assert.equal(loadConfig({ NODE_ENV: 'production', KBQL_JWT_SECRET: SECRET }).rateLimit.enabled, true);
  });

  it('CORS: Studio and localhost by default in development, nothing in production, * only outside production', () => {
    assert.deepEqual(
      { ...loadConfig({ NODE_ENV: 'development' }).cors },
      { origins: ['https://studio.apollographql.com'], anyOrigin: false, localhost: true, credentials: false },
    );
    assert.deepEqual(
      { ...loadConfig({ NODE_ENV: 'production', KBQL_JWT_SECRET: SECRET }).cors },
      { origins: [], anyOrigin: false, localhost: false, credentials: false },
    );
    assert.deepEqual(loadConfig({}).cors.origins, [], 'NODE_ENV unset counts as production here');
    const listed = loadConfig({
      NODE_ENV: 'production',
      KBQL_JWT_SECRET: SECRET,
      KBQL_CORS_ORIGINS: 'https://app.example.com,http://localhost:5173',
    }).cors;
    assert.deepEqual([...listed.origins], ['https://app.example.com', 'http://localhost:5173']);
    assert.equal(listed.localhost, false);
    assert.equal(loadConfig({ NODE_ENV: 'development', KBQL_CORS_ORIGINS: '*' }).cors.anyOrigin, true);
    assert.throws(
      () => loadConfig({ NODE_ENV: 'production', KBQL_JWT_SECRET: SECRET, KBQL_CORS_ORIGINS: '*' }),
      /KBQL_CORS_ORIGINS=\* is refused/,
    );
    assert.throws(
      () => loadConfig({ NODE_ENV: 'development', KBQL_CORS_ORIGINS: '*', KBQL_CORS_CREDENTIALS: 'true' }),
      /needs listed origins/,
    );
    assert.throws(() => loadConfig({ KBQL_CORS_ORIGINS: 'app.example.com' }), /KBQL_CORS_ORIGINS/);
  });
});

describe('query limits and rate-limit windows', () => {
  const figures = (query: string, variables?: Record<string, unknown>) => {
    const document = parse(query);
    return estimateOperation(
      document,
      document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!,
      variables,
    );
  };

  it('topK multiplies the cost of what search returns, from literals and variables', () => {
    const one = figures('{ search(collection: "c", query: "q", topK: 1) { hits { score } } }').cost;
    const hundred = figures('query($k: Int) { search(collection: "c", query: "q", topK: $k) { hits { score } } }', { k: 100 }).cost;
    assert.equal(one, 10 + 1 * 2);
    assert.equal(hundred, 10 + 100 * 2);
    assert.equal(figures('{ search(collection: "c", query: "q") { hits { score } } }').cost, 10 + 10 * 2, 'default topK');
  });

  it('counts depth and aliases through fragments, each fragment once (a fragment bomb stays cheap to measure)', () => {
    let doc = 'fragment F0 on Query { a: collections { totalCount } }';
    for (let i = 1; i <= 30; i++) doc += ` fragment F${i} on Query { ...F${i - 1} ...F${i - 1} }`;
    const started = performance.now();
    const f = figures(`{ ...F30 } ${doc}`);
    assert.ok(performance.now() - started < 500);
    assert.equal(f.aliases, 2 ** 30, 'the expanded alias count, computed without expanding');
    assert.equal(figures('{ ...A } fragment A on Query { ...A }').depth, Infinity, 'a cycle is endlessly deep');
  });

  it('parses windows', () => {
    assert.deepEqual(['30s', '1m', '2h', '1d'].map(parseWindow), [30, 60, 7200, 86_400]);
    assert.throws(() => parseWindow('1 minute'));
    assert.throws(() => parseWindow('0s'));
  });
});
