import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { enableWal } from '../sqlite-wal';
import { TenantQueueFull } from '../../ports/job-store.port';
import type {
  CreateJobOptions,
  JobDeletion,
  JobDocumentState,
  JobListFilter,
  JobPayload,
  JobRecord,
  JobStage,
  JobStatus,
  JobStore,
  NewJob,
} from '../../ports/job-store.port';

export interface SqliteJobStoreOptions {
  /** Directory of the database; the file is `<dataDir>/jobs.sqlite` (next to the knowledge store's, not inside it). */
  dataDir: string;
  /**
   * How long a statement waits for another connection's lock, in ms.
   * @default 5000
   */
  busyTimeoutMs?: number;
}

interface JobRow {
  id: string;
  tenant: string;
  collection_id: string;
  status: JobStatus;
  total: number;
  cancel_requested: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY NOT NULL,
    tenant TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
  );
  CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, created_at DESC, id);
  CREATE INDEX IF NOT EXISTS jobs_by_collection ON jobs (collection_id, created_at DESC, id);
  CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (finished_at) WHERE finished_at IS NULL;
  CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at, id) WHERE finished_at IS NOT NULL;
  CREATE TABLE IF NOT EXISTS job_documents (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    stage TEXT NOT NULL,
    state TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (job_id, idx)
  ) WITHOUT ROWID;
`;

const toJob = (row: JobRow): JobRecord => ({
  id: row.id,
  tenant: row.tenant,
  collectionId: row.collection_id,
  status: row.status,
  total: row.total,
  cancelRequested: row.cancel_requested === 1,
  createdAt: new Date(row.created_at),
  updatedAt: new Date(row.updated_at),
  finishedAt: row.finished_at === null ? null : new Date(row.finished_at),
});

const toState = (json: string): JobDocumentState => {
  const raw = JSON.parse(json) as Omit<JobDocumentState, 'updatedAt'> & { updatedAt: number };
  return { ...raw, updatedAt: new Date(raw.updatedAt) };
};
const fromState = (state: JobDocumentState): string => JSON.stringify({ ...state, updatedAt: state.updatedAt.getTime() });

/**
 * Job state in its own SQLite file in the data dir (WAL; a job and all its documents are written in one
 * transaction, each stage change is one committed row update), so a process killed at any point restarts with
 * every job and payload it had accepted.
 */
export class SqliteJobStore implements JobStore {
  readonly kind = 'sqlite';
  private db: Database.Database | null = null;

  constructor(private readonly options: SqliteJobStoreOptions) {}

  async init(): Promise<void> {
    if (this.db) return;
    mkdirSync(this.options.dataDir, { recursive: true });
    const db = new Database(join(this.options.dataDir, 'jobs.sqlite'));
    enableWal(db, this.options.busyTimeoutMs ?? 5000);
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${this.options.busyTimeoutMs ?? 5000}`);
    db.exec(SCHEMA);
    this.db = db;
  }

  async close(): Promise<void> {
    this.statements.clear();
    this.db?.close();
    this.db = null;
  }

  private readonly statements = new Map<string, Database.Statement>();

  private get conn(): Database.Database {
    if (!this.db) throw new Error('SqliteJobStore used before init() or after close()');
    return this.db;
  }

  /** A prepared statement, prepared once per SQL text (every document stage change runs a few). */
  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.conn.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  async createJob(job: NewJob, options: CreateJobOptions = {}): Promise<JobRecord> {
    const db = this.conn;
    const max = options.maxOpenDocumentsPerTenant;
    const at = job.createdAt.getTime();
    const insertJob = db.prepare(
      `INSERT INTO jobs (id, tenant, collection_id, status, total, created_at, updated_at) VALUES (?, ?, ?, 'QUEUED', ?, ?, ?)`,
    );
    const insertDoc = db.prepare(`INSERT INTO job_documents (job_id, idx, stage, state, payload) VALUES (?, ?, ?, ?, ?)`);
    // IMMEDIATE takes the write lock before the count: another connection cannot insert between check and write.
    db.transaction(() => {
      if (max !== undefined) {
        const open = this.countOpen(job.tenant);
        if (open + job.documents.length > max) throw new TenantQueueFull(open, job.documents.length, max);
      }
      insertJob.run(job.id, job.tenant, job.collectionId, job.documents.length, at, at);
      for (const { state, payload } of job.documents)
        insertDoc.run(job.id, state.index, state.stage, fromState(state), JSON.stringify(payload));
    }).immediate();
    return (await this.getJob(job.id))!;
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const row = this.sql(`SELECT * FROM jobs WHERE id = ?`).get(id) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  async listJobs(filter: JobListFilter, page: { offset: number; limit: number }): Promise<{ items: JobRecord[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.collectionId) {
      where.push('collection_id = ?');
      params.push(filter.collectionId);
    } else {
      where.push('tenant = ?');
      params.push(filter.tenant);
    }
    if (filter.status) {
      where.push('status = ?');
      params.push(filter.status);
    }
    const clause = where.join(' AND ');
    const total = (this.sql(`SELECT count(*) AS n FROM jobs WHERE ${clause}`).get(...params) as { n: number }).n;
    const rows = this.sql(`SELECT * FROM jobs WHERE ${clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`).all(
      ...params,
      page.limit,
      page.offset,
    ) as JobRow[];
    return { items: rows.map(toJob), total };
  }

  async unfinishedJobs(): Promise<JobRecord[]> {
    return (this.sql(`SELECT * FROM jobs WHERE finished_at IS NULL ORDER BY created_at, id`).all() as JobRow[]).map(toJob);
  }

  async getDocuments(jobId: string): Promise<JobDocumentState[]> {
    const rows = this.sql(`SELECT state FROM job_documents WHERE job_id = ? ORDER BY idx`).all(jobId) as { state: string }[];
    return rows.map((r) => toState(r.state));
  }

  async getDocument(jobId: string, index: number): Promise<JobDocumentState | null> {
    const row = this.sql(`SELECT state FROM job_documents WHERE job_id = ? AND idx = ?`).get(jobId, index) as { state: string } | undefined;
    return row ? toState(row.state) : null;
  }

  async openCount(jobId: string): Promise<number> {
    const row = this.sql(
      `SELECT count(*) AS n FROM job_documents WHERE job_id = ? AND stage NOT IN ('INDEXED', 'UNCHANGED', 'FAILED', 'CANCELLED')`,
    ).get(jobId) as { n: number };
    return row.n;
  }

  async openDocuments(tenant: string): Promise<number> {
    return this.countOpen(tenant);
  }

  private countOpen(tenant: string): number {
    // Only unfinished jobs can hold open documents (a retry reopens its job right after re-queueing).
    const row = this.sql(
      `SELECT count(*) AS n FROM jobs j JOIN job_documents d ON d.job_id = j.id
        WHERE j.tenant = ? AND j.finished_at IS NULL AND d.stage NOT IN ('INDEXED', 'UNCHANGED', 'FAILED', 'CANCELLED')`,
    ).get(tenant) as { n: number };
    return row.n;
  }

  async getPayload(jobId: string, index: number): Promise<JobPayload | null> {
    const row = this.sql(`SELECT payload FROM job_documents WHERE job_id = ? AND idx = ?`).get(jobId, index) as
      { payload: string } | undefined;
    return row ? (JSON.parse(row.payload) as JobPayload) : null;
  }

  async transition(jobId: string, state: JobDocumentState, from: readonly JobStage[]): Promise<boolean> {
    if (from.length === 0) return false;
    const marks = from.map(() => '?').join(', ');
    const update = this.sql(`UPDATE job_documents SET stage = ?, state = ? WHERE job_id = ? AND idx = ? AND stage IN (${marks})`);
    const touch = this.sql(`UPDATE jobs SET updated_at = ? WHERE id = ?`);
    // One commit for both rows.
    return this.conn.transaction(() => {
      const changed = update.run(state.stage, fromState(state), jobId, state.index, ...from).changes === 1;
      if (changed) touch.run(Date.now(), jobId);
      return changed;
    })();
  }

  async replacePayload(jobId: string, index: number, payload: JobPayload): Promise<void> {
    this.sql(`UPDATE job_documents SET payload = ? WHERE job_id = ? AND idx = ?`).run(JSON.stringify(payload), jobId, index);
  }

  async dropPayload(jobId: string, index: number): Promise<void> {
    this.sql(`UPDATE job_documents SET payload = 'null' WHERE job_id = ? AND idx = ?`).run(jobId, index);
  }

  async setCancelRequested(jobId: string): Promise<void> {
    this.sql(`UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?`).run(Date.now(), jobId);
  }

  async markRunning(jobId: string): Promise<void> {
    this.sql(`UPDATE jobs SET status = 'RUNNING', updated_at = ? WHERE id = ? AND status = 'QUEUED'`).run(Date.now(), jobId);
  }

  async markFinished(jobId: string, at: Date, status: JobStatus): Promise<boolean> {
    const result = this.sql(`UPDATE jobs SET finished_at = ?, status = ?, updated_at = ? WHERE id = ? AND finished_at IS NULL`).run(
      at.getTime(),
      status,
      at.getTime(),
      jobId,
    );
    return result.changes === 1;
  }

  async reopen(jobId: string): Promise<void> {
    this.sql(`UPDATE jobs SET finished_at = NULL, cancel_requested = 0, status = 'RUNNING', updated_at = ? WHERE id = ?`).run(
      Date.now(),
      jobId,
    );
  }

  async deleteJob(jobId: string): Promise<JobDeletion> {
    // The checks and the delete in one transaction: a retry reopening the job (or queueing a document) cannot slip in.
    const removeJob = this.sql(
      `DELETE FROM jobs WHERE id = ? AND finished_at IS NOT NULL AND status IN ('COMPLETED', 'COMPLETED_WITH_ERRORS', 'CANCELLED')
         AND NOT EXISTS (SELECT 1 FROM job_documents WHERE job_id = ? AND stage NOT IN ('INDEXED', 'UNCHANGED', 'FAILED', 'CANCELLED'))`,
    );
    // ON DELETE CASCADE does this too, but only on a connection with foreign keys on: say it explicitly.
    const removeDocuments = this.sql(`DELETE FROM job_documents WHERE job_id = ?`);
    const exists = this.sql(`SELECT 1 FROM jobs WHERE id = ?`);
    return this.conn.transaction((): JobDeletion => {
      if (removeJob.run(jobId, jobId).changes === 1) {
        removeDocuments.run(jobId);
        return 'deleted';
      }
      return exists.get(jobId) ? 'active' : 'missing';
    })();
  }

  async deleteFinishedBefore(finishedBefore: Date, limit: number): Promise<number> {
    if (limit <= 0) return 0;
    // The same conditions as deleteJob, so a job being retried does not take a place in the batch.
    const ids = this.sql(
      `SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN ('COMPLETED', 'COMPLETED_WITH_ERRORS', 'CANCELLED')
         AND NOT EXISTS (SELECT 1 FROM job_documents WHERE job_id = jobs.id AND stage NOT IN ('INDEXED', 'UNCHANGED', 'FAILED', 'CANCELLED'))
       ORDER BY finished_at, id LIMIT ?`,
    ).all(finishedBefore.getTime(), limit) as { id: string }[];
    let deleted = 0;
    for (const { id } of ids) {
      // One transaction per job (at most KBQL_MAX_DOCUMENTS_PER_JOB rows), yielding in between: a long backlog
      // never holds the write lock, or this thread, for the whole batch.
      if ((await this.deleteJob(id)) === 'deleted') deleted += 1;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return deleted;
  }
}
