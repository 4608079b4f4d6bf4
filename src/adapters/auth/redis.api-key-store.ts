import { createClient, type RedisClientType } from '@redis/client';
import { AppError } from '../../errors';
import type { Logger } from '../../logger';
import type { ApiKeyPage, ApiKeyRecord, ApiKeyRole, ApiKeyStore } from '../../ports/api-key-store.port';

export interface RedisApiKeyStoreOptions {
  /** The Redis of REDIS_URL. */
  url: string;
  /** Prefix of its keys (KBQL_CACHE_PREFIX): `<prefix>:apikey:<id>` (a hash) and `<prefix>:apikeys:<tenant>` (a sorted set). */
  prefix: string;
  /** Longest one Redis call may take, in ms; past it the call fails with UPSTREAM_TIMEOUT. @default 2000 */
  timeoutMs?: number;
  logger: Logger;
}

const FIELDS = ['id', 'tenant', 'name', 'role', 'secretHash', 'createdBy', 'createdAt'] as const;

/**
 * API keys in Redis, for replicas that share no disk (the Weaviate store with REDIS_URL set). One hash per key
 * (fields written one by one, so a revocation and a concurrent `lastUsedAt` update never overwrite each other;
 * `revokedAt` is set with HSETNX, so the first revocation time stays), and one sorted set of ids per tenant for
 * listing. Redis must keep these keys: run it with persistence and a `noeviction` (or `volatile-*`) policy — an
 * evicted key would simply stop authenticating. No offline queue: with Redis down a lookup fails at once
 * (UPSTREAM_UNAVAILABLE) instead of waiting.
 */
export class RedisApiKeyStore implements ApiKeyStore {
  readonly kind = 'redis';
  private readonly client: RedisClientType;
  private readonly timeoutMs: number;
  private connected: Promise<unknown> | null = null;
  private lastError = 0;

  constructor(private readonly options: RedisApiKeyStoreOptions) {
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      socket: { connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2_000) },
    }) as RedisClientType;
    this.client.on('error', (error: unknown) => {
      if (Date.now() - this.lastError < 10_000) return;
      this.lastError = Date.now();
      options.logger.warn('API key Redis unavailable; API keys not in the verification cache are refused with 503', {
        error: error instanceof Error ? error.message : String(error),
      });
    });
  }

  async init(): Promise<void> {
    // Start-up waits for Redis at most `timeoutMs`: past it kbql starts anyway (the client keeps reconnecting) and a
    // key lookup while Redis is down fails on its own (503); JWTs keep working.
    this.connected ??= this.client.connect().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.connected, new Promise((resolve) => (timer = setTimeout(resolve, this.timeoutMs)))]);
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => this.client.destroy());
  }

  async create(record: ApiKeyRecord): Promise<void> {
    const key = this.keyOf(record.id);
    const fresh = await this.call('create', () => this.client.hSetNX(key, 'id', record.id));
    if (!fresh) throw new AppError('CONFLICT', `An API key with id "${record.id}" exists.`, { id: record.id });
    const fields: Record<string, string> = {
      tenant: record.tenant,
      name: record.name,
      role: record.role,
      secretHash: record.secretHash,
      createdBy: record.createdBy,
      createdAt: String(record.createdAt.getTime()),
    };
    if (record.expiresAt) fields['expiresAt'] = String(record.expiresAt.getTime());
    await this.call('create', () =>
      this.client
        .multi()
        .hSet(key, fields)
        .zAdd(this.tenantKey(record.tenant), { score: record.createdAt.getTime(), value: record.id })
        .exec(),
    );
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    const hash = await this.call('get', () => this.client.hGetAll(this.keyOf(id)));
    return toRecord(hash);
  }

  async list(tenant: string, page: { offset: number; limit: number }): Promise<ApiKeyPage> {
    const key = this.tenantKey(tenant);
    const [total, ids] = await Promise.all([
      this.call('list', () => this.client.zCard(key)),
      page.limit === 0
        ? Promise.resolve([])
        : this.call('list', () => this.client.zRange(key, page.offset, page.offset + page.limit - 1, { REV: true })),
    ]);
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return { items: records.filter((r): r is ApiKeyRecord => r !== null && r.tenant === tenant), total };
  }

  async revoke(id: string, at: Date): Promise<ApiKeyRecord | null> {
    const key = this.keyOf(id);
    if (!(await this.call('revoke', () => this.client.exists(key)))) return null;
    await this.call('revoke', () => this.client.hSetNX(key, 'revokedAt', String(at.getTime())));
    return this.get(id);
  }

  async touch(id: string, at: Date): Promise<void> {
    await this.call('touch', () => this.client.hSet(this.keyOf(id), 'lastUsedAt', String(at.getTime())));
  }

  private keyOf(id: string): string {
    return `${this.options.prefix}:apikey:${id}`;
  }

  private tenantKey(tenant: string): string {
    return `${this.options.prefix}:apikeys:${tenant}`;
  }

  /** One Redis call, bounded by `timeoutMs`; a failure is UPSTREAM_UNAVAILABLE, a slow call UPSTREAM_TIMEOUT. */
  private async call<T>(operation: string, work: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new AppError('UPSTREAM_TIMEOUT', `The API key store (Redis) did not answer within ${this.timeoutMs} ms.`, {
              dependency: 'redis',
              operation,
            }),
          ),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([work(), late]);
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError(
        'UPSTREAM_UNAVAILABLE',
        'The API key store (Redis) is unavailable.',
        { dependency: 'redis', operation },
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

function toRecord(hash: Record<string, string>): ApiKeyRecord | null {
  // A key whose creation was interrupted between its two writes has only `id`: it never authenticates.
  if (!FIELDS.every((f) => typeof hash[f] === 'string')) return null;
  const date = (v: string | undefined) => (v === undefined ? null : new Date(Number(v)));
  return {
    id: hash['id']!,
    tenant: hash['tenant']!,
    name: hash['name']!,
    role: hash['role'] as ApiKeyRole,
    secretHash: hash['secretHash']!,
    createdBy: hash['createdBy']!,
    createdAt: new Date(Number(hash['createdAt'])),
    lastUsedAt: date(hash['lastUsedAt']),
    expiresAt: date(hash['expiresAt']),
    revokedAt: date(hash['revokedAt']),
  };
}
