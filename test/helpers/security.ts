import { HashEmbedder } from '../../src/adapters/embedders/hash.embedder';
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { mintDevToken } from '../../src/adapters/auth/jose.token-verifier';
import type { Role } from '../../src/ports/principal.port';
import type { Embedder } from '../../src/ports/embedder.port';
import type { KnowledgeStore } from '../../src/ports/knowledge-store.port';
import { postGraphql, type GraphqlBody } from './http';

export const JWT_SECRET = 'kbql-security-test-secret-0123456789abcdef';
export const JWT_ISSUER = 'https://idp.test.kbql';
export const JWT_AUDIENCE = 'kbql-api';

/** Environment of an app with JWT auth on (HS256 secret, issuer and audience checked). */
export const JWT_ENV: Record<string, string> = {
  KBQL_AUTH_MODE: 'jwt',
  KBQL_JWT_SECRET: JWT_SECRET,
  KBQL_JWT_ISSUER: JWT_ISSUER,
  KBQL_JWT_AUDIENCE: JWT_AUDIENCE,
};

/** A valid token for the JWT_ENV app. */
export const tokenFor = (role: Role, tenant: string, subject = `${tenant}-${role.toLowerCase()}`): Promise<string> =>
  mintDevToken({ secret: JWT_SECRET, role, tenant, subject, expiresIn: '10m', issuer: JWT_ISSUER, audience: JWT_AUDIENCE });

export interface HttpResult {
  status: number;
  headers: Headers;
  json: GraphqlBody;
}

/** POST /graphql over real HTTP ({@link postGraphql}), bounded at 30 s; the body under `json`. */
export async function gql(url: string, body: unknown, token?: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  const response = await postGraphql(url, body, { token, headers, timeoutMs: 30_000 });
  return { status: response.status, headers: response.headers, json: response.body };
}

/** The embedder kbql uses by default, counting calls (hardening tests assert none happened). */
export class CountingEmbedder implements Embedder {
  readonly inner = new HashEmbedder();
  readonly info = this.inner.info;
  readonly maxBatchSize = 2048;
  calls = 0;
  embed(texts: readonly string[]): Promise<Float32Array[]> {
    this.calls++;
    return this.inner.embed(texts);
  }
}

/** An embedded store in `dataDir` whose every method call after `init` is counted (by name). */
export function countingStore(dataDir: string): { store: KnowledgeStore; calls: Map<string, number>; total(): number } {
  const inner = new EmbeddedKnowledgeStore({ dataDir });
  const calls = new Map<string, number>();
  const quiet = new Set(['init', 'close', 'ping', 'kind', 'warmUp', 'warmUpState']);
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string' || quiet.has(prop)) return value;
      return (...args: unknown[]) => {
        calls.set(prop, (calls.get(prop) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as KnowledgeStore;
  return { store, calls, total: () => [...calls.values()].reduce((a, b) => a + b, 0) };
}
