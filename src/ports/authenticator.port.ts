import type { Principal } from './principal.port';

/**
 * Who is calling, from the `Authorization` and `X-Api-Key` headers; what both transports (HTTP and WebSocket) call
 * before anything runs. Built by `modules/auth/authenticator.ts` (`createAuthenticator`).
 *
 * Resolves to null for an anonymous caller (no credential; only public fields answer) and rejects with AppError
 * UNAUTHENTICATED for a malformed header, an invalid credential, or both headers at once.
 */
export type Authenticate = (authorization: string | undefined, apiKey?: string) => Promise<Principal | null>;
