import { mintDevToken } from '../adapters/auth/jose.token-verifier';
import { loadConfig } from '../config';
import type { Role } from '../ports/principal.port';
import { CliError, EXIT } from './client';

export interface TokenOptions {
  role: Role;
  tenant: string;
  subject: string;
  expires: string;
}

/**
 * `kbql token`: prints an HS256 JWT signed with KBQL_JWT_SECRET, with the role and tenant claims, issuer and audience
 * the server is configured with — for local use and tests; production tokens come from your identity provider.
 */
export async function runToken(options: TokenOptions): Promise<number> {
  const config = loadConfig();
  const jwt = config.auth.jwt;
  if (!jwt?.secret) {
    throw new CliError('kbql token signs with KBQL_JWT_SECRET: set it (and KBQL_AUTH_MODE=jwt), as for the server', EXIT.USAGE);
  }
  const token = await mintDevToken({
    secret: jwt.secret,
    role: options.role,
    tenant: options.tenant,
    subject: options.subject,
    expiresIn: options.expires,
    issuer: jwt.issuer,
    audience: jwt.audience,
    roleClaim: jwt.roleClaim,
    tenantClaim: jwt.tenantClaim,
  });
  process.stdout.write(`${token}\n`);
  return EXIT.OK;
}
