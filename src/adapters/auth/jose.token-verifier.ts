import { createHash } from 'node:crypto';
import type { JWTPayload, JWTVerifyGetKey } from 'jose' with { 'resolution-mode': 'import' };
import { AppError } from '../../errors';
import type { TokenVerifier } from '../../ports/token-verifier.port';
import { isRole, TENANT_PATTERN, type Principal, type Role } from '../../ports/principal.port';
import { VerifiedCache } from '../../verified-cache';

// False positive: the rule reads an import type's attributes as an object literal of error type; tsc resolves it.
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
type Jose = typeof import('jose', { with: { 'resolution-mode': 'import' } });
let loaded: Promise<Jose> | null = null;
/** jose 6 is an ES module: loaded with import() (this package is CommonJS), once. */
const jose = (): Promise<Jose> => (loaded ??= import('jose'));

export { TENANT_PATTERN };

export interface JoseVerifierOptions {
  /** HS* secret (at least 32 characters); give this or `jwksUrl`. */
  secret?: string | null;
  /** JWKS of the identity provider: fetched lazily, cached, refetched when a token names an unknown `kid`. */
  jwksUrl?: string | null;
  /** Accepted `alg` values; a token with any other (including `none`) is refused. */
  algorithms: readonly string[];
  /** Required `iss`; null: not checked. */
  issuer?: string | null;
  /** Required `aud`; null: not checked. */
  audience?: string | null;
  /** Least time between two JWKS fetches (an unknown kid refetches only after it), in ms. @default 30000 */
  jwksCooldownMs?: number;
  /** Tolerated clock difference on `exp`/`nbf`, in seconds. @default 30 */
  clockSkewSeconds?: number;
  /** @default 'kbql_role' */
  roleClaim?: string;
  /** @default 'kbql_tenant' */
  tenantClaim?: string;
  /**
   * How long a verified token is remembered, in ms (0 = off): repeated requests with it skip the signature check,
   * which was about 40% of a cached search's cost. An entry never outlives the token's `exp`. @default 60000
   */
  cacheTtlMs?: number;
  /** Tokens remembered at most (least recently used go first). @default 10000 */
  cacheMaxEntries?: number;
  /** The clock, in ms since the epoch, for both the cache and jose's `exp`/`nbf` checks (tests). @default Date.now */
  now?: () => number;
}

/**
 * JWT verification with jose: signature with the configured key only and only the pinned algorithms (so neither
 * `alg: none` nor an HS256 token signed with a public key passes), `exp` required, `iss`/`aud` checked when
 * configured, bounded clock skew; then the role and tenant claims must be present and valid. Every failure is
 * UNAUTHENTICATED with a `reason` (no token contents are echoed).
 */
export function createJoseVerifier(options: JoseVerifierOptions): TokenVerifier {
  if (!options.secret === !options.jwksUrl) throw new Error('give exactly one of secret or jwksUrl');
  // One key set for the verifier's life: jose caches the JWKS and refetches it (at most every 30 s) on an unknown kid.
  let keyPromise: Promise<Uint8Array | JWTVerifyGetKey> | null = null;
  const keyOf = () =>
    (keyPromise ??= options.secret
      ? Promise.resolve(new TextEncoder().encode(options.secret))
      : jose().then((j) =>
          j.createRemoteJWKSet(new URL(options.jwksUrl!), {
            timeoutDuration: 5_000,
            cooldownDuration: options.jwksCooldownMs ?? 30_000,
            cacheMaxAge: 10 * 60_000,
          }),
        ));
  const roleClaim = options.roleClaim ?? 'kbql_role';
  const tenantClaim = options.tenantClaim ?? 'kbql_tenant';
  const now = options.now ?? Date.now;
  const verifyOptions = () => ({
    algorithms: [...options.algorithms],
    issuer: options.issuer ?? undefined,
    audience: options.audience ?? undefined,
    clockTolerance: options.clockSkewSeconds ?? 30,
    requiredClaims: ['exp', 'sub'],
    currentDate: options.now ? new Date(now()) : undefined,
  });
  const cacheTtlMs = options.cacheTtlMs ?? 60_000;
  // Keyed by the token's SHA-256 (never the token itself); only successes go in (see VerifiedCache).
  const cache = cacheTtlMs > 0 ? new VerifiedCache<Principal>(options.cacheMaxEntries ?? 10_000, now) : null;
  return {
    async verify(token) {
      const digest = cache ? createHash('sha256').update(token).digest('base64url') : '';
      const remembered = cache?.get(digest);
      if (remembered) return remembered;
      const j = await jose();
      const key = await keyOf();
      let payload: JWTPayload;
      try {
        ({ payload } = await (typeof key === 'function'
          ? j.jwtVerify(token, key, verifyOptions())
          : j.jwtVerify(token, key, verifyOptions())));
      } catch (error) {
        throw new AppError('UNAUTHENTICATED', 'The token is not valid.', { reason: reasonOf(j, error) }, { cause: error });
      }
      const role = payload[roleClaim];
      const tenant = payload[tenantClaim];
      if (!isRole(role)) throw new AppError('UNAUTHENTICATED', `The token has no valid "${roleClaim}" claim.`, { reason: 'MISSING_ROLE' });
      if (typeof tenant !== 'string' || !TENANT_PATTERN.test(tenant)) {
        throw new AppError('UNAUTHENTICATED', `The token has no valid "${tenantClaim}" claim.`, { reason: 'MISSING_TENANT' });
      }
      const principal: Principal = Object.freeze({ kind: 'user', subject: payload.sub!, tenant, role });
      // Until the earlier of now + TTL and `exp` itself (no skew tolerance here: a remembered token is never stale).
      cache?.set(digest, principal, Math.min(now() + cacheTtlMs, payload.exp! * 1000));
      return principal;
    },
  };
}

function reasonOf({ errors }: Jose, error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'TOKEN_EXPIRED';
  if (error instanceof errors.JWTClaimValidationFailed) return `CLAIM_${error.claim.toUpperCase()}`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'ALGORITHM_NOT_ALLOWED';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'BAD_SIGNATURE';
  if (error instanceof errors.JWKSNoMatchingKey) return 'UNKNOWN_KEY';
  if (error instanceof errors.JWKSTimeout || (error instanceof errors.JOSEError && error.code === 'ERR_JWKS_INVALID'))
    return 'KEYS_UNAVAILABLE';
  return 'INVALID_TOKEN';
}

export interface DevTokenOptions {
  secret: string;
  role: Role;
  tenant: string;
  /** @default 'dev' */
  subject?: string;
  /** jose duration ("1h", "8h", "7d"). @default '8h' */
  expiresIn?: string;
  issuer?: string | null;
  audience?: string | null;
  roleClaim?: string;
  tenantClaim?: string;
}

/** An HS256 token for local use and tests (`kbql token`): what a real identity provider would issue. */
export async function mintDevToken(options: DevTokenOptions): Promise<string> {
  if (!TENANT_PATTERN.test(options.tenant)) throw new Error(`tenant must match ${TENANT_PATTERN.source}`);
  const { SignJWT } = await jose();
  const jwt = new SignJWT({ [options.roleClaim ?? 'kbql_role']: options.role, [options.tenantClaim ?? 'kbql_tenant']: options.tenant })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.subject ?? 'dev')
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '8h');
  if (options.issuer) jwt.setIssuer(options.issuer);
  if (options.audience) jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret));
}
