import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { UploadRecord, UploadStore } from '../../ports/job-store.port';

const ID = /^[A-Za-z0-9_-]{8,64}$/;

interface StoredRecord extends Omit<UploadRecord, 'createdAt' | 'expiresAt'> {
  createdAt: number;
  expiresAt: number;
}

/**
 * Uploads as files under `<dataDir>/uploads`: `<id>.bin` (the bytes) and `<id>.json` (the record), each written to a
 * temporary name and renamed, so a reader never sees half a file. Expired ones are deleted by {@link sweep}.
 */
export class FileUploadStore implements UploadStore {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'uploads');
  }

  async put(record: UploadRecord, data: Buffer): Promise<void> {
    if (!ID.test(record.id)) throw new Error(`bad upload id ${record.id}`);
    await mkdir(this.dir, { recursive: true });
    const stored: StoredRecord = { ...record, createdAt: record.createdAt.getTime(), expiresAt: record.expiresAt.getTime() };
    await writeFile(join(this.dir, `${record.id}.bin.tmp`), data);
    await rename(join(this.dir, `${record.id}.bin.tmp`), join(this.dir, `${record.id}.bin`));
    await writeFile(join(this.dir, `${record.id}.json.tmp`), JSON.stringify(stored));
    await rename(join(this.dir, `${record.id}.json.tmp`), join(this.dir, `${record.id}.json`));
  }

  async get(id: string): Promise<{ record: UploadRecord; data: Buffer } | null> {
    if (!ID.test(id)) return null;
    let stored: StoredRecord;
    try {
      stored = JSON.parse(await readFile(join(this.dir, `${id}.json`), 'utf8')) as StoredRecord;
    } catch {
      return null;
    }
    if (stored.expiresAt <= Date.now()) return null;
    const data = await readFile(join(this.dir, `${id}.bin`)).catch(() => null);
    if (!data) return null;
    return { record: { ...stored, createdAt: new Date(stored.createdAt), expiresAt: new Date(stored.expiresAt) }, data };
  }

  async sweep(now: Date): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const id = name.slice(0, -'.json'.length);
      try {
        const stored = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as StoredRecord;
        if (stored.expiresAt > now.getTime()) continue;
      } catch {
        // unreadable record: remove it with its bytes
      }
      await rm(join(this.dir, `${id}.bin`), { force: true });
      await rm(join(this.dir, name), { force: true });
      removed++;
    }
    return removed;
  }

  async close(): Promise<void> {}
}
