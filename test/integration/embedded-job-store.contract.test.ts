import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteJobStore } from '../../src/adapters/jobs/sqlite.job-store';
import { defineJobStoreContractSuite } from '../contract/job-store.contract';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

defineJobStoreContractSuite('SQLite (embedded)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kbql-jobstore-'));
  dirs.push(dir);
  const store = new SqliteJobStore({ dataDir: dir });
  await store.init();
  const twins: SqliteJobStore[] = [];
  return {
    store,
    async twin() {
      const other = new SqliteJobStore({ dataDir: dir });
      await other.init();
      twins.push(other);
      return other;
    },
    async leftovers(jobId) {
      const db = new Database(join(dir, 'jobs.sqlite'), { readonly: true });
      try {
        const jobs = (db.prepare(`SELECT count(*) AS n FROM jobs WHERE id = ?`).get(jobId) as { n: number }).n;
        const docs = (db.prepare(`SELECT count(*) AS n FROM job_documents WHERE job_id = ?`).get(jobId) as { n: number }).n;
        return jobs + docs;
      } finally {
        db.close();
      }
    },
    close: async () => {
      for (const other of twins) await other.close();
      await store.close();
    },
  };
});
