import type { Principal } from './principal.port';

/** Verifies a bearer token (a JWT). Implemented by `adapters/auth/jose.token-verifier.ts`. */
export interface TokenVerifier {
  /**
   * The caller the token identifies. Throws AppError UNAUTHENTICATED (with a `reason`: TOKEN_EXPIRED, BAD_SIGNATURE,
   * MISSING_ROLE, …) for anything but a valid token; never echoes the token's contents.
   */
  verify(token: string): Promise<Principal>;
}

/** Verifies a service API key (`kbql_…`). Implemented by `modules/auth/api-key.service.ts`. */
export interface ApiKeyVerifier {
  /**
   * The service principal of the key. Throws AppError UNAUTHENTICATED (with a `reason`: MALFORMED_API_KEY,
   * INVALID_API_KEY, API_KEY_REVOKED, API_KEY_EXPIRED) for anything but a valid key.
   */
  verify(key: string): Promise<Principal>;
}
