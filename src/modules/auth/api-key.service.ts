import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError, badInput, notFound } from '../../errors';
import type { ApiKeyRecord, ApiKeyStore } from '../../ports/api-key-store.port';
import { toConnection, toWindow, type Connection, type PageArgs } from '../../graphql/pagination';
import { hasRole, type Principal, type Role } from '../../ports/principal.port';
import { VerifiedCache } from '../../verified-cache';

/** Every key starts with this, so a leaked one is recognisable (secret scanners, logs) and told apart from a JWT. */
export const API_KEY_PREFIX = 'kbql_';
/** `kbql_<id: 16 hex>_<secret: 32 random bytes, base64url>`. */
export const API_KEY_PATTERN = /^kbql_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const MAX_API_KEY_NAME_CHARS = 100;

export interface ApiKeyServiceOptions {
  store: ApiKeyStore;
  /**
   * How long a verified key is trusted without reading the store again, in ms. A revocation through this replica
   * takes effect at once (its entry is dropped); one made through another replica within this period.
   * @default 30000
   */
  cacheTtlMs?: number;
  /** @default 10000 */
  cacheMaxEntries?: number;
  /** The clock, in ms since the epoch (tests). @default Date.now */
  now?: () => number;
}

export interface CreateApiKeyArgs {
  name: string;
  role: Role;
  expiresAt?: Date | null;
}

/** What `createApiKey` returns: the record and the only copy of the key kbql will ever give out. */
export interface CreatedApiKey {
  apiKey: ApiKeyRecord;
  secret: string;
}

interface Verified {
  principal: Principal;
  secretHash: Buffer;
}

/**
 * Service API keys: ADMINs create them for their own tenant with a role no higher than their own, list and revoke
 * them; services send them as `Authorization: Bearer kbql_…` or `X-Api-Key: kbql_…` and act as a `service`
 * principal of the key's tenant and role.
 *
 * A key is `kbql_<id>_<secret>`: the id finds the record, the secret (256 random bits) proves possession. Only
 * SHA-256 of the secret is stored — a plain hash suffices (no slow KDF) because the secret is random, not a password
 * — and it is compared in constant time. Unknown id, wrong secret, revoked and expired keys are all UNAUTHENTICATED
 * (with a `reason`), decided before any resolver runs.
 */
export class ApiKeyService {
  readonly #cache: VerifiedCache<Verified>;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(private readonly options: ApiKeyServiceOptions) {
    this.#now = options.now ?? Date.now;
    this.#ttlMs = options.cacheTtlMs ?? 30_000;
    this.#cache = new VerifiedCache<Verified>(options.cacheMaxEntries ?? 10_000, this.#now);
  }

  /** Whether `credential` has the shape of an API key (then it is never tried as a JWT). */
  static looksLikeKey(credential: string): boolean {
    return credential.startsWith(API_KEY_PREFIX);
  }

  async create(args: CreateApiKeyArgs, creator: Principal): Promise<CreatedApiKey> {
    const name = args.name.trim();
    if (name.length === 0 || name.length > MAX_API_KEY_NAME_CHARS) {
      throw badInput(`An API key name has 1 to ${MAX_API_KEY_NAME_CHARS} characters.`, { field: 'name' });
    }
    if (!hasRole(creator, args.role)) {
      throw new AppError('FORBIDDEN', `You cannot create a key with the ${args.role} role; you have ${creator.role}.`, {
        requires: args.role,
      });
    }
    const now = this.#now();
    if (args.expiresAt && !(args.expiresAt.getTime() > now)) throw badInput('expiresAt must be in the future.', { field: 'expiresAt' });
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const record: ApiKeyRecord = {
      id,
      tenant: creator.tenant,
      name,
      role: args.role,
      secretHash: sha256(secret).toString('hex'),
      createdBy: creator.subject,
      createdAt: new Date(now),
      lastUsedAt: null,
      expiresAt: args.expiresAt ?? null,
      revokedAt: null,
    };
    await this.options.store.create(record);
    return { apiKey: record, secret: `${API_KEY_PREFIX}${id}_${secret}` };
  }

  /** Revokes a key of the caller's tenant (again: no change). NOT_FOUND for an unknown key or another tenant's. */
  async revoke(id: string, caller: Principal): Promise<ApiKeyRecord> {
    const existing = /^[0-9a-f]{16}$/.test(id) ? await this.options.store.get(id) : null;
    if (!existing || existing.tenant !== caller.tenant) throw notFound('ApiKey', id);
    const revoked = await this.options.store.revoke(id, new Date(this.#now()));
    // At once in this replica; other replicas drop their copy within cacheTtlMs.
    this.#cache.delete(id);
    if (!revoked) throw notFound('ApiKey', id);
    return revoked;
  }

  /** The caller's tenant's keys, newest first (revoked and expired ones included, so they can be audited). */
  async list(args: PageArgs, caller: Principal): Promise<Connection<ApiKeyRecord>> {
    const window = toWindow(args);
    return toConnection(await this.options.store.list(caller.tenant, window), window);
  }

  /** The principal of a valid key; UNAUTHENTICATED (with a `reason`) otherwise. */
  async verify(credential: string): Promise<Principal> {
    const match = API_KEY_PATTERN.exec(credential);
    if (!match) throw unauthenticated('MALFORMED_API_KEY');
    const [, id, secret] = match as unknown as [string, string, string];
    const presented = sha256(secret);
    const cached = this.#cache.get(id);
    if (cached && timingSafeEqual(cached.secretHash, presented)) return cached.principal;

    const record = await this.options.store.get(id);
    // Unknown id and wrong secret answer alike, so ids cannot be probed.
    const stored = record ? Buffer.from(record.secretHash, 'hex') : null;
    if (!record || stored!.length !== presented.length || !timingSafeEqual(stored!, presented)) throw unauthenticated('INVALID_API_KEY');
    if (record.revokedAt) throw unauthenticated('API_KEY_REVOKED');
    const now = this.#now();
    if (record.expiresAt && record.expiresAt.getTime() <= now) throw unauthenticated('API_KEY_EXPIRED');
    const principal: Principal = Object.freeze({
      kind: 'service',
      subject: `apikey:${record.id}`,
      tenant: record.tenant,
      role: record.role,
    });
    this.#cache.set(id, { principal, secretHash: presented }, Math.min(now + this.#ttlMs, record.expiresAt?.getTime() ?? Infinity));
    // lastUsedAt is refreshed on each store read, i.e. at most once per cache period per replica; best effort.
    this.options.store.touch(id, new Date(now)).catch(() => undefined);
    return principal;
  }
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

const unauthenticated = (reason: string): AppError => new AppError('UNAUTHENTICATED', 'The API key is not valid.', { reason });
