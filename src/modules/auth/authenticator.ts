import { AppError } from '../../errors';
import type { Authenticate } from '../../ports/authenticator.port';
import type { Principal } from '../../ports/principal.port';
import type { ApiKeyVerifier, TokenVerifier } from '../../ports/token-verifier.port';
import { DEVELOPMENT_PRINCIPAL } from './principal';

export interface AuthenticatorOptions {
  /** none: every caller is {@link DEVELOPMENT_PRINCIPAL}; jwt: the bearer token (a JWT or an API key) decides. */
  mode: 'none' | 'jwt';
  /** Required when mode is jwt. */
  verifier?: TokenVerifier;
  /** API keys; none: a `kbql_…` credential is refused like any invalid token. */
  apiKeys?: ApiKeyVerifier;
}

const API_KEY_PREFIX = 'kbql_';

/**
 * Who is calling, from the request headers: in `jwt` mode, neither `Authorization` nor `X-Api-Key` → null
 * (anonymous: only public fields answer, everything else is UNAUTHENTICATED); a malformed header, an invalid token or
 * key, or both headers at once → UNAUTHENTICATED, so a bad credential is refused outright rather than downgraded to
 * anonymous. A bearer credential starting with `kbql_` is an API key, anything else a JWT.
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticate {
  if (options.mode === 'none') return async () => DEVELOPMENT_PRINCIPAL;
  const verifier = options.verifier;
  if (!verifier) throw new Error('KBQL_AUTH_MODE=jwt needs a token verifier');
  const verifyKey = (key: string): Promise<Principal> => {
    if (!options.apiKeys) throw new AppError('UNAUTHENTICATED', 'API keys are not enabled.', { reason: 'API_KEYS_DISABLED' });
    return options.apiKeys.verify(key);
  };
  return async (authorization, apiKey) => {
    const hasAuthorization = authorization !== undefined && authorization !== '';
    const hasApiKey = apiKey !== undefined && apiKey !== '';
    if (hasAuthorization && hasApiKey) {
      throw new AppError('UNAUTHENTICATED', 'Send either an Authorization header or an X-Api-Key header, not both.', {
        reason: 'TWO_CREDENTIALS',
      });
    }
    if (hasApiKey) return verifyKey(apiKey.trim());
    if (!hasAuthorization) return null;
    const match = /^Bearer ([A-Za-z0-9_.~+/=-]{1,8192})$/.exec(authorization.trim());
    if (!match) throw new AppError('UNAUTHENTICATED', 'The Authorization header must be "Bearer <token>".', { reason: 'MALFORMED_HEADER' });
    const credential = match[1]!;
    return credential.startsWith(API_KEY_PREFIX) ? verifyKey(credential) : verifier.verify(credential);
  };
}
