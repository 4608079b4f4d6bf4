import { AppError } from '../../errors';
import { DEVELOPMENT_PRINCIPAL, type Principal } from './principal';

/** Verifies a bearer token; throws UNAUTHENTICATED (with a `reason`) for anything but a valid one. */
export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
}

export interface AuthenticatorOptions {
  /** none: every caller is {@link DEVELOPMENT_PRINCIPAL}; jwt: the bearer token decides. */
  mode: 'none' | 'jwt';
  /** Required when mode is jwt. */
  verifier?: TokenVerifier;
}

/**
 * Who is calling, from the request headers: in `jwt` mode, no Authorization header → null (anonymous: only public
 * fields answer, everything else is UNAUTHENTICATED); a malformed header or an invalid token → UNAUTHENTICATED, so a
 * bad credential is refused outright rather than downgraded to anonymous.
 */
export function createAuthenticator(options: AuthenticatorOptions): (authorization: string | undefined) => Promise<Principal | null> {
  if (options.mode === 'none') return async () => DEVELOPMENT_PRINCIPAL;
  const verifier = options.verifier;
  if (!verifier) throw new Error('KBQL_AUTH_MODE=jwt needs a token verifier');
  return async (authorization) => {
    if (authorization === undefined || authorization === '') return null;
    const match = /^Bearer ([A-Za-z0-9_.~+/=-]{1,8192})$/.exec(authorization.trim());
    if (!match) throw new AppError('UNAUTHENTICATED', 'The Authorization header must be "Bearer <token>".', { reason: 'MALFORMED_HEADER' });
    return verifier.verify(match[1]!);
  };
}
