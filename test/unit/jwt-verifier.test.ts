import assert from 'node:assert/strict';
import { createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createJoseVerifier, mintDevToken } from '../../src/adapters/auth/jose.token-verifier';
import { isAppError } from '../../src/errors';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
function rs256(privateKey: KeyObject, kid: string, exp = Math.floor(Date.now() / 1000) + 600): string {
  const input = `${b64({ alg: 'RS256', kid })}.${b64({ sub: 's', exp, kbql_role: 'READER', kbql_tenant: 't' })}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
}
const reason = (code: string) => (e: unknown) => isAppError(e) && e.code === 'UNAUTHENTICATED' && e.details['reason'] === code;

describe('JWT verifier (jose)', () => {
  const k1 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const k2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const published: { key: KeyObject; kid: string }[] = [{ key: k1.publicKey, kid: 'k1' }];
  let fetches = 0;
  let server: http.Server;
  let jwksUrl: string;

  before(async () => {
    server = http.createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: published.map(({ key, kid }) => ({ ...key.export({ format: 'jwk' }), kid, alg: 'RS256' })) }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('caches the JWKS and refetches it when a token names an unknown kid (rotation)', async () => {
    const verifier = createJoseVerifier({ jwksUrl, algorithms: ['RS256'], jwksCooldownMs: 0 });
    assert.equal((await verifier.verify(rs256(k1.privateKey, 'k1'))).role, 'READER');
    await verifier.verify(rs256(k1.privateKey, 'k1'));
    assert.equal(fetches, 1, 'the second token is verified from the cache');
    published.push({ key: k2.publicKey, kid: 'k2' });
    assert.equal((await verifier.verify(rs256(k2.privateKey, 'k2'))).tenant, 't');
    assert.equal(fetches, 2, 'the unknown kid caused one refetch');
    await assert.rejects(verifier.verify(rs256(k2.privateKey, 'k3')), reason('UNKNOWN_KEY'));
  });

  it('bounds clock skew: an expiry within the tolerance passes, beyond it fails', async () => {
    const verifier = createJoseVerifier({ jwksUrl, algorithms: ['RS256'], clockSkewSeconds: 30 });
    const t = Math.floor(Date.now() / 1000);
    assert.ok(await verifier.verify(rs256(k1.privateKey, 'k1', t - 10)));
    await assert.rejects(verifier.verify(rs256(k1.privateKey, 'k1', t - 120)), reason('TOKEN_EXPIRED'));
  });

  it('mints dev tokens that the HS256 verifier accepts, and only with the right secret', async () => {
    const secret = 'x'.repeat(40);
    const token = await mintDevToken({ secret, role: 'WRITER', tenant: 'acme', subject: 'me' });
    const principal = await createJoseVerifier({ secret, algorithms: ['HS256'] }).verify(token);
    assert.deepEqual(principal, { kind: 'user', subject: 'me', tenant: 'acme', role: 'WRITER' });
    await assert.rejects(createJoseVerifier({ secret: 'y'.repeat(40), algorithms: ['HS256'] }).verify(token), reason('BAD_SIGNATURE'));
    await assert.rejects(createJoseVerifier({ secret, algorithms: ['HS512'] }).verify(token), reason('ALGORITHM_NOT_ALLOWED'));
  });
});

describe('JWT verifier: verified-token cache', () => {
  const secret = 'cache-test-secret-0123456789abcdef0123';
  const sign = (claims: Record<string, unknown>): string => {
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'svc', kbql_role: 'READER', kbql_tenant: 'acme', ...claims })}`;
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  };
  const start = Date.parse('2026-03-01T12:00:00Z');
  const sec = (ms: number) => Math.floor(ms / 1000);

  it('a repeated token is answered from the cache (same principal object, no signature check), until the TTL', async () => {
    let now = start;
    const verifier = createJoseVerifier({ secret, algorithms: ['HS256'], clockSkewSeconds: 0, cacheTtlMs: 60_000, now: () => now });
    const token = sign({ exp: sec(start) + 3600 });
    const first = await verifier.verify(token);
    assert.deepEqual(first, { kind: 'user', subject: 'svc', tenant: 'acme', role: 'READER' });
    assert.equal(await verifier.verify(token), first, 'the very object cached on the first verification');
    now += 60_001;
    const third = await verifier.verify(token);
    assert.notEqual(third, first, 'past the TTL the token is verified again');
    assert.deepEqual(third, first);
    const off = createJoseVerifier({ secret, algorithms: ['HS256'], clockSkewSeconds: 0, cacheTtlMs: 0, now: () => now });
    assert.notEqual(await off.verify(token), await off.verify(token), 'cacheTtlMs 0: every call verifies');
  });

  it('an expired token is refused even when it was cached (the entry ends at exp, whatever the TTL)', async () => {
    let now = start;
    const verifier = createJoseVerifier({ secret, algorithms: ['HS256'], clockSkewSeconds: 0, cacheTtlMs: 600_000, now: () => now });
    const token = sign({ exp: sec(start) + 10 });
    await verifier.verify(token);
    now = start + 9_000;
    assert.ok(await verifier.verify(token), 'still valid, from the cache');
    now = (sec(start) + 10) * 1000;
    await assert.rejects(verifier.verify(token), reason('TOKEN_EXPIRED'));
    now = start + 3_600_000;
    await assert.rejects(verifier.verify(token), reason('TOKEN_EXPIRED'));
  });

  it('failures are never cached: a token refused before its nbf is accepted once it is valid; a bad one stays refused', async () => {
    let now = start;
    const verifier = createJoseVerifier({ secret, algorithms: ['HS256'], clockSkewSeconds: 0, cacheTtlMs: 60_000, now: () => now });
    const early = sign({ nbf: sec(start) + 5, exp: sec(start) + 3600 });
    await assert.rejects(verifier.verify(early), reason('CLAIM_NBF'));
    now += 5_000;
    assert.ok(await verifier.verify(early));
    const forged = `${early.slice(0, early.lastIndexOf('.'))}.${'A'.repeat(43)}`;
    await assert.rejects(verifier.verify(forged), reason('BAD_SIGNATURE'));
    await assert.rejects(
      verifier.verify(forged),
      reason('BAD_SIGNATURE'),
      'a forged signature on a cached token’s claims is not the cached token',
    );
  });
});
