import { Redis } from 'ioredis';
import { AppError } from '../../errors';
import type {
  JobDeletion,
  JobDocumentState,
  JobEvent,
  JobEventBus,
  JobListFilter,
  JobPayload,
  JobRecord,
  JobStage,
  JobStatus,
  JobStore,
  NewJob,
  UploadRecord,
  UploadStore,
} from '../../ports/job-store.port';
import { isTerminal, TenantQueueFull, type CreateJobOptions } from '../../ports/job-store.port';

export interface RedisJobsOptions {
  url: string;
  /** Prefix of every key, e.g. `kbql:jobs`. */
  prefix: string;
  /**
   * Longest one Redis command may take, in ms (then it fails; the queue retries the document).
   * @default 5000
   */
  commandTimeoutMs?: number;
}

/** A client whose every command is bounded: no offline queue growing while Redis is away, a command timeout. */
export function createJobsRedisClient(options: RedisJobsOptions): Redis {
  return new Redis(options.url, {
    commandTimeout: options.commandTimeoutMs ?? 5000,
    connectTimeout: 5000,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    lazyConnect: false,
  });
}

/**
 * Closes a client for good. A close event still in flight (Redis just went away) could otherwise schedule a
 * reconnect after `disconnect()`, and a reconnecting client keeps the process alive: no retry strategy, no reconnect.
 */
export function closeRedisClient(client: Redis): void {
  client.options.retryStrategy = () => null;
  client.disconnect();
}

const unavailable = (error: unknown): AppError =>
  new AppError('UPSTREAM_UNAVAILABLE', 'The job store (Redis) is unavailable.', { reason: 'JOB_STORE' }, { cause: error });

async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw unavailable(error);
  }
}

/** Lua: whether a stage is terminal (the same set as TERMINAL_STAGES). */
const LUA_TERMINAL = `local function terminal(s) return s == 'INDEXED' or s == 'UNCHANGED' or s == 'FAILED' or s == 'CANCELLED' end`;

/**
 * Compare-and-set of one document's stage. The tenant's open-document counter moves in the same script, so it
 * never drifts from the stages; only jobs created with the counter (`counted`) move it. ARGV[5]: the counter keys'
 * prefix (the key names the tenant, read from the job).
 */
const TRANSITION = `
${LUA_TERMINAL}
local current = redis.call('HGET', KEYS[1], ARGV[1])
for i = 6, #ARGV do
  if current == ARGV[i] then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
    redis.call('HSET', KEYS[3], 'updatedAt', ARGV[4])
    local delta = (terminal(ARGV[2]) and 0 or 1) - (terminal(current) and 0 or 1)
    if delta ~= 0 then
      local job = redis.call('HMGET', KEYS[3], 'tenant', 'counted')
      if job[1] and job[2] == '1' then
        local left = redis.call('INCRBY', ARGV[5] .. job[1], delta)
        if left < 0 then redis.call('SET', ARGV[5] .. job[1], 0) end
      end
    end
    return 1
  end
end
return 0`;

/**
 * Creates a job, checking the tenant's open-document counter first when ARGV[1] >= 0. KEYS: job, stage, state,
 * payload, unfinished, by-tenant, by-collection, open counter. ARGV: max (-1: none), id, tenant, collectionId,
 * createdAt, then index, stage, state, payload per document. Returns {1, open after} or {0, open} (refused).
 */
const CREATE = `
${LUA_TERMINAL}
local max = tonumber(ARGV[1])
local open = tonumber(redis.call('GET', KEYS[8]) or '0')
if open < 0 then open = 0 end
local add = 0
for i = 6, #ARGV, 4 do
  if not terminal(ARGV[i + 1]) then add = add + 1 end
end
if max >= 0 and open + add > max then return {0, open} end
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'tenant', ARGV[3], 'collectionId', ARGV[4], 'status', 'QUEUED',
  'total', (#ARGV - 5) / 4, 'cancelRequested', 0, 'createdAt', ARGV[5], 'updatedAt', ARGV[5], 'finishedAt', '', 'counted', 1)
for i = 6, #ARGV, 4 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 3])
end
redis.call('SADD', KEYS[5], ARGV[2])
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[2])
redis.call('ZADD', KEYS[7], ARGV[5], ARGV[2])
redis.call('SET', KEYS[8], open + add)
return {1, open + add}`;

const FINISH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local finished = redis.call('HGET', KEYS[1], 'finishedAt')
if finished and finished ~= '' then return 0 end
redis.call('HSET', KEYS[1], 'finishedAt', ARGV[1], 'status', ARGV[2], 'updatedAt', ARGV[1])
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[3])
return 1`;

/**
 * Deletes a finished job and its keys, or says why not. KEYS: job, stage, state, payload, unfinished, finished,
 * by-tenant, by-collection (the last two from the job's own immutable fields, read just before). UNLINK: a job's
 * hashes can hold thousands of fields, freed off Redis's main thread.
 */
const DELETE = `
local job = redis.call('HMGET', KEYS[1], 'id', 'finishedAt', 'status')
if not job[1] then
  redis.call('ZREM', KEYS[6], ARGV[1])
  return 'missing'
end
if not job[2] or job[2] == '' then return 'active' end
if job[3] ~= 'COMPLETED' and job[3] ~= 'COMPLETED_WITH_ERRORS' and job[3] ~= 'CANCELLED' then return 'active' end
local stages = redis.call('HVALS', KEYS[2])
for i = 1, #stages do
  local s = stages[i]
  if s ~= 'INDEXED' and s ~= 'UNCHANGED' and s ~= 'FAILED' and s ~= 'CANCELLED' then return 'active' end
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
return 'deleted'`;

/** Keys the finished-job index backfill reads per SCAN step, and steps per sweep (bounded work per sweep). */
const BACKFILL_SCAN_COUNT = 1000;
const BACKFILL_STEPS_PER_SWEEP = 50;

const RUNNING = `
if redis.call('HGET', KEYS[1], 'status') == 'QUEUED' then
  redis.call('HSET', KEYS[1], 'status', 'RUNNING', 'updatedAt', ARGV[1])
end
return 1`;

const toState = (json: string): JobDocumentState => {
  const raw = JSON.parse(json) as Omit<JobDocumentState, 'updatedAt'> & { updatedAt: number | string };
  return { ...raw, updatedAt: new Date(raw.updatedAt) };
};
const fromState = (state: JobDocumentState): string => JSON.stringify({ ...state, updatedAt: state.updatedAt.getTime() });

/**
 * Job state in Redis, shared by every replica: a hash per job, and per job three hashes keyed by document index
 * (stage, state JSON, payload JSON). Stage changes are compare-and-set Lua scripts, finishing a job is a set-once
 * script, so two replicas never both cancel-and-claim a document or both announce a job's end.
 */
export class RedisJobStore implements JobStore {
  readonly kind = 'redis';
  private readonly p: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.p = prefix;
  }

  private job(id: string) {
    return `${this.p}:job:${id}`;
  }
  private stages(id: string) {
    return `${this.p}:job:${id}:stage`;
  }
  private states(id: string) {
    return `${this.p}:job:${id}:state`;
  }
  private payloads(id: string) {
    return `${this.p}:job:${id}:payload`;
  }
  private get unfinished() {
    return `${this.p}:unfinished`;
  }
  /** Finished job ids scored by `finishedAt` (ms): what retention reads, oldest first. */
  private get finished() {
    return `${this.p}:finished`;
  }
  private byTenant(tenant: string) {
    return `${this.p}:by-tenant:${tenant}`;
  }
  private byCollection(id: string) {
    return `${this.p}:by-collection:${id}`;
  }
  /**
   * A tenant's open (not terminal) documents across its jobs, kept by the create and transition scripts. Jobs
   * written before the counter existed are not in it.
   */
  private openCounter(tenant: string) {
    return `${this.p}:open-documents:${tenant}`;
  }

  async init(): Promise<void> {
    await guarded(() => this.redis.ping());
  }

  async close(): Promise<void> {}

  async createJob(job: NewJob, options: CreateJobOptions = {}): Promise<JobRecord> {
    const max = options.maxOpenDocumentsPerTenant ?? -1;
    const args: string[] = [String(max), job.id, job.tenant, job.collectionId, String(job.createdAt.getTime())];
    for (const { state, payload } of job.documents) args.push(String(state.index), state.stage, fromState(state), JSON.stringify(payload));
    const keys = [
      this.job(job.id),
      this.stages(job.id),
      this.states(job.id),
      this.payloads(job.id),
      this.unfinished,
      this.byTenant(job.tenant),
      this.byCollection(job.collectionId),
      this.openCounter(job.tenant),
    ];
    const [written, open] = (await guarded(() => this.redis.eval(CREATE, keys.length, ...keys, ...args))) as [number, number];
    if (written !== 1) throw new TenantQueueFull(open, job.documents.length, max);
    return (await this.getJob(job.id))!;
  }

  async openDocuments(tenant: string): Promise<number> {
    const value = await guarded(() => this.redis.get(this.openCounter(tenant)));
    return Math.max(0, Number(value ?? 0));
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const raw = await guarded(() => this.redis.hgetall(this.job(id)));
    return raw['id'] ? toJob(raw) : null;
  }

  async listJobs(filter: JobListFilter, page: { offset: number; limit: number }): Promise<{ items: JobRecord[]; total: number }> {
    const key = filter.collectionId ? this.byCollection(filter.collectionId) : this.byTenant(filter.tenant);
    const ids = await guarded(() => this.redis.zrevrange(key, 0, -1));
    let jobs = await this.getJobs(ids);
    if (filter.status) jobs = jobs.filter((j) => j.status === filter.status);
    return { items: jobs.slice(page.offset, page.offset + page.limit), total: jobs.length };
  }

  async unfinishedJobs(): Promise<JobRecord[]> {
    const ids = await guarded(() => this.redis.smembers(this.unfinished));
    return (await this.getJobs(ids)).filter((j) => !j.finishedAt).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  private async getJobs(ids: string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.job(id));
    const results = (await guarded(() => pipeline.exec())) ?? [];
    return results.flatMap(([error, raw]) =>
      !error && raw && (raw as Record<string, string>)['id'] ? [toJob(raw as Record<string, string>)] : [],
    );
  }

  async getDocuments(jobId: string): Promise<JobDocumentState[]> {
    const raw = await guarded(() => this.redis.hvals(this.states(jobId)));
    return raw.map(toState).sort((a, b) => a.index - b.index);
  }

  async getDocument(jobId: string, index: number): Promise<JobDocumentState | null> {
    const raw = await guarded(() => this.redis.hget(this.states(jobId), String(index)));
    return raw ? toState(raw) : null;
  }

  async openCount(jobId: string): Promise<number> {
    const stages = await guarded(() => this.redis.hvals(this.stages(jobId)));
    return stages.filter((s) => !isTerminal(s as JobStage)).length;
  }

  async getPayload(jobId: string, index: number): Promise<JobPayload | null> {
    const raw = await guarded(() => this.redis.hget(this.payloads(jobId), String(index)));
    return raw ? (JSON.parse(raw) as JobPayload) : null;
  }

  async transition(jobId: string, state: JobDocumentState, from: readonly JobStage[]): Promise<boolean> {
    if (from.length === 0) return false;
    const result = await guarded(() =>
      this.redis.eval(
        TRANSITION,
        3,
        this.stages(jobId),
        this.states(jobId),
        this.job(jobId),
        String(state.index),
        state.stage,
        fromState(state),
        String(Date.now()),
        this.openCounter(''),
        ...from,
      ),
    );
    return result === 1;
  }

  async replacePayload(jobId: string, index: number, payload: JobPayload): Promise<void> {
    await guarded(() => this.redis.hset(this.payloads(jobId), String(index), JSON.stringify(payload)));
  }

  async dropPayload(jobId: string, index: number): Promise<void> {
    await guarded(() => this.redis.hdel(this.payloads(jobId), String(index)));
  }

  async setCancelRequested(jobId: string): Promise<void> {
    await guarded(() => this.redis.hset(this.job(jobId), 'cancelRequested', 1, 'updatedAt', Date.now()));
  }

  async markRunning(jobId: string): Promise<void> {
    await guarded(() => this.redis.eval(RUNNING, 1, this.job(jobId), String(Date.now())));
  }

  async markFinished(jobId: string, at: Date, status: JobStatus): Promise<boolean> {
    const result = await guarded(() =>
      this.redis.eval(FINISH, 3, this.job(jobId), this.unfinished, this.finished, String(at.getTime()), status, jobId),
    );
    return result === 1;
  }

  async reopen(jobId: string): Promise<void> {
    await guarded(() =>
      this.redis
        .multi()
        .hset(this.job(jobId), 'finishedAt', '', 'cancelRequested', 0, 'status', 'RUNNING', 'updatedAt', Date.now())
        .sadd(this.unfinished, jobId)
        .zrem(this.finished, jobId)
        .exec(),
    );
  }

  async deleteJob(jobId: string): Promise<JobDeletion> {
    const [id, tenant, collectionId] = await guarded(() => this.redis.hmget(this.job(jobId), 'id', 'tenant', 'collectionId'));
    if (!id || !tenant || !collectionId) {
      await guarded(() => this.redis.zrem(this.finished, jobId));
      return 'missing';
    }
    const result = await guarded(() =>
      this.redis.eval(
        DELETE,
        8,
        this.job(jobId),
        this.stages(jobId),
        this.states(jobId),
        this.payloads(jobId),
        this.unfinished,
        this.finished,
        this.byTenant(tenant),
        this.byCollection(collectionId),
        jobId,
      ),
    );
    return result as JobDeletion;
  }

  async deleteFinishedBefore(finishedBefore: Date, limit: number): Promise<number> {
    if (limit <= 0) return 0;
    await this.backfillFinishedIndex();
    let deleted = 0;
    // Entries kept (a job a retry is reopening) stay in the index: skip past them, up to a bound.
    let skipped = 0;
    while (deleted < limit && skipped < 10 * limit) {
      const ids = await guarded(() =>
        this.redis.zrangebyscore(this.finished, '-inf', `(${finishedBefore.getTime()}`, 'LIMIT', skipped, limit - deleted),
      );
      if (ids.length === 0) break;
      // One short script per job: other clients' commands run in between, however long the backlog.
      for (const id of ids) {
        const result = await this.deleteJob(id);
        if (result === 'deleted') deleted += 1;
        else if (result === 'active') skipped += 1;
        // 'missing': another replica deleted it, and its entry is gone from the index too.
      }
    }
    return deleted;
  }

  private backfillDone = false;

  /**
   * Jobs finished before the finished index existed are not in it: a SCAN over job keys adds them, a bounded number
   * of steps per sweep, the cursor kept in Redis so the replicas share the walk (adding twice is harmless), then a
   * marker ends it for good.
   */
  private async backfillFinishedIndex(): Promise<void> {
    if (this.backfillDone) return;
    const marker = `${this.p}:finished:backfilled`;
    const cursorKey = `${this.p}:finished:backfill-cursor`;
    if ((await guarded(() => this.redis.exists(marker))) === 1) {
      this.backfillDone = true;
      return;
    }
    const jobPrefix = this.job('');
    let cursor = (await guarded(() => this.redis.get(cursorKey))) ?? '0';
    for (let step = 0; step < BACKFILL_STEPS_PER_SWEEP; step++) {
      const [next, keys] = await guarded(() => this.redis.scan(cursor, 'MATCH', `${jobPrefix}*`, 'COUNT', BACKFILL_SCAN_COUNT));
      const ids = keys.map((key) => key.slice(jobPrefix.length)).filter((id) => id.length > 0 && !id.includes(':'));
      if (ids.length > 0) {
        const read = this.redis.pipeline();
        for (const id of ids) read.hget(this.job(id), 'finishedAt');
        const finishedAt = (await guarded(() => read.exec())) ?? [];
        const add = this.redis.pipeline();
        ids.forEach((id, i) => {
          const [error, at] = finishedAt[i] ?? [null, null];
          if (!error && typeof at === 'string' && at !== '') add.zadd(this.finished, 'NX', Number(at), id);
        });
        if (add.length > 0) await guarded(() => add.exec());
      }
      cursor = next;
      if (cursor === '0') {
        await guarded(() => this.redis.multi().set(marker, '1').del(cursorKey).exec());
        this.backfillDone = true;
        return;
      }
      await guarded(() => this.redis.set(cursorKey, cursor));
    }
  }
}

function toJob(raw: Record<string, string>): JobRecord {
  return {
    id: raw['id']!,
    tenant: raw['tenant']!,
    collectionId: raw['collectionId']!,
    status: raw['status'] as JobStatus,
    total: Number(raw['total']),
    cancelRequested: raw['cancelRequested'] === '1',
    createdAt: new Date(Number(raw['createdAt'])),
    updatedAt: new Date(Number(raw['updatedAt'])),
    finishedAt: raw['finishedAt'] ? new Date(Number(raw['finishedAt'])) : null,
  };
}

/**
 * Progress events over Redis pub/sub (one channel per job), so a client subscribed on one replica sees the stages
 * of documents another replica processes. Delivery is best effort: the summary is re-read from the job store.
 */
export class RedisJobEventBus implements JobEventBus {
  private readonly listeners = new Map<string, Set<(event: JobEvent) => void>>();
  private readonly subscriber: Redis;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.subscriber = redis.duplicate();
    this.subscriber.on('error', () => {
      // reconnects on its own; subscriptions are restored by ioredis (autoResubscribe)
    });
    this.subscriber.on('message', (channel: string, message: string) => {
      const jobId = channel.slice(this.channel('').length);
      const set = this.listeners.get(jobId);
      if (!set) return;
      let event: JobEvent;
      try {
        event = JSON.parse(message) as JobEvent;
      } catch {
        return;
      }
      if (event.kind === 'STAGE') event.document.updatedAt = new Date(event.document.updatedAt);
      for (const listener of set) listener(event);
    });
  }

  private channel(jobId: string): string {
    return `${this.prefix}:events:${jobId}`;
  }

  async publish(event: JobEvent): Promise<void> {
    await guarded(() => this.redis.publish(this.channel(event.jobId), JSON.stringify(event)));
  }

  async subscribe(jobId: string, listener: (event: JobEvent) => void): Promise<() => void> {
    let set = this.listeners.get(jobId);
    if (!set) {
      set = new Set();
      this.listeners.set(jobId, set);
      await guarded(() => this.subscriber.subscribe(this.channel(jobId)));
    }
    set.add(listener);
    return () => {
      const current = this.listeners.get(jobId);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) {
        this.listeners.delete(jobId);
        this.subscriber.unsubscribe(this.channel(jobId)).catch(() => undefined);
      }
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    closeRedisClient(this.subscriber);
  }
}

/** Uploads in Redis with their expiry (any replica can take the upload another received). */
export class RedisUploadStore implements UploadStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(id: string): string {
    return `${this.prefix}:upload:${id}`;
  }

  async put(record: UploadRecord, data: Buffer): Promise<void> {
    const ttl = Math.max(1, Math.ceil((record.expiresAt.getTime() - Date.now()) / 1000));
    await guarded(() =>
      this.redis.multi().hset(this.key(record.id), 'record', JSON.stringify(record), 'data', data).expire(this.key(record.id), ttl).exec(),
    );
  }

  async get(id: string): Promise<{ record: UploadRecord; data: Buffer } | null> {
    const [recordJson, data] = await guarded(() => this.redis.hmgetBuffer(this.key(id), 'record', 'data'));
    if (!recordJson || !data) return null;
    const raw = JSON.parse(recordJson.toString('utf8')) as UploadRecord;
    const record = { ...raw, createdAt: new Date(raw.createdAt), expiresAt: new Date(raw.expiresAt) };
    return record.expiresAt.getTime() > Date.now() ? { record, data } : null;
  }

  async sweep(): Promise<number> {
    return 0; // Redis expires them.
  }

  async close(): Promise<void> {}
}
