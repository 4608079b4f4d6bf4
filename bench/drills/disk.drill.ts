import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { isAppError } from '../../src/errors';
import {
  Checks,
  CREATE_COLLECTION,
  failureOf,
  gql,
  INGEST,
  listDocuments,
  PRODUCTION_ENV,
  SEARCH,
  syntheticDocument,
  token,
  type DrillReport,
} from './lib';

export interface DiskDrillOptions {
  /** Size of the tmpfs the data directory lives on, before it is grown. @default '2m' */
  size?: string;
}

function mount(args: string[]): void {
  execFileSync('mount', args, { stdio: 'pipe', timeout: 10_000 });
}

function umount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe', timeout: 10_000 });
  } catch {
    // not mounted
  }
}

/** True when this process may mount a tmpfs (root with CAP_SYS_ADMIN, as on the CI machines). */
export function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(path.join(os.tmpdir(), 'kbql-mount-probe-'));
  try {
    mount(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]);
    umount(probe);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/**
 * Drill 6 — disk full and read-only data directory for the embedded store. The data directory is a tmpfs of
 * `size` (a real ENOSPC, not a simulation inside SQLite); documents are ingested over HTTP until the disk is full.
 * The failing documents must come back FAILED with STORAGE_UNAVAILABLE, everything stored before must stay whole and
 * searchable, and once the tmpfs is grown ("space returns") the same documents ingest. Then the directory is made
 * read-only (a read-only bind mount): kbql must refuse to start with STORAGE_UNAVAILABLE and start normally, data
 * intact, once it is writable again. SQLite's integrity_check runs at the end.
 */
export async function diskDrill(options: DiskDrillOptions = {}): Promise<DrillReport> {
  const size = options.size ?? '2m';
  const header = ['step', 'outcome', 'documents', 'detail'];
  const title = `Drill 6 — disk full / read-only data directory (embedded store): tmpfs of ${size} mounted as KBQL_DATA_DIR, grown to 64m; read-only = bind mount remounted ro`;
  if (!canMountTmpfs())
    return { name: 'disk', title, header, rows: [], failures: [], skipped: 'needs root with permission to mount a tmpfs' };
  const checks = new Checks();
  const base = mkdtempSync(path.join(os.tmpdir(), 'kbql-drill-disk-'));
  const dataDir = path.join(base, 'data');
  const readOnlyView = path.join(base, 'ro');
  mkdirSync(dataDir);
  mkdirSync(readOnlyView);
  const rows: (string | number)[][] = [];
  const auth = token('WRITER');
  const start = (dir: string) =>
    createApp(loadConfig({ ...PRODUCTION_ENV, KBQL_DATA_DIR: dir, KBQL_EMBEDDING_DIMENSIONS: '64', KBQL_CACHE_RESULT_TTL_SECONDS: '0' }));
  let app: App | null = null;
  try {
    mount(['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dataDir]);
    app = await start(dataDir);
    const url = `${await app.listen(0, '127.0.0.1')}/graphql`;
    checks.that(failureOf(await gql(url, CREATE_COLLECTION, { name: 'disk' }, { token: auth })) === null, 'create collection');

    // Fill the disk, 20 documents per call, until a call's documents fail (bounded: 300 calls).
    let stored = 0;
    let failedBatch: ReturnType<typeof syntheticDocument>[] | null = null;
    let failedResults: { status: string; code: string | null; reason: string | null }[] = [];
    for (let call = 0; call < 300 && !failedBatch; call++) {
      const docs = Array.from({ length: 20 }, (_, j) => syntheticDocument(call * 20 + j, 0, 4));
      const r = await gql(url, INGEST, { c: 'disk', docs }, { token: auth, timeoutMs: 60_000 });
      checks.that(failureOf(r) === null, `ingest call ${call}: ${failureOf(r)}`);
      const payload = r.body?.data?.ingestDocuments;
      if (!payload) break;
      if (payload.failed > 0) {
        failedBatch = docs;
        failedResults = payload.results;
        stored += payload.indexed;
      } else {
        stored += payload.indexed;
      }
    }
    checks.that(failedBatch !== null, 'the disk filled up within 300 calls');
    const codes = [...new Set(failedResults.filter((r) => r.status === 'FAILED').map((r) => r.code))];
    checks.that(
      codes.length === 1 && codes[0] === 'STORAGE_UNAVAILABLE',
      `failed documents carry STORAGE_UNAVAILABLE (got ${codes.join(',')})`,
    );
    checks.that(
      failedResults.some((r) => /disk full/.test(r.reason ?? '')),
      'the reason says the disk is full',
    );
    rows.push([
      'ingest until the tmpfs is full',
      `FAILED: ${codes.join(',')}`,
      stored,
      failedResults.find((r) => r.status === 'FAILED')?.reason ?? '',
    ]);

    const whileFull = await listDocuments(url, auth, 'disk');
    const partial = whileFull.filter((d) => d.storedChunks !== d.chunkCount);
    checks.that(
      whileFull.length === stored && partial.length === 0,
      `while full: ${whileFull.length} documents (expected ${stored}), ${partial.length} partial`,
    );
    const search = await gql(url, SEARCH, { c: 'disk', q: 'glacier falcon' }, { token: auth });
    checks.that(failureOf(search) === null && search.body!.data.search.hits.length > 0, `search while full: ${failureOf(search)}`);
    rows.push(['read while full', failureOf(search) ?? 'search OK', whileFull.length, `${partial.length} partial documents`]);

    // Space returns: the same call succeeds.
    mount(['-o', 'remount,size=64m', dataDir]);
    const retry = await gql(url, INGEST, { c: 'disk', docs: failedBatch ?? [] }, { token: auth, timeoutMs: 60_000 });
    const retried = retry.body?.data?.ingestDocuments;
    checks.that(
      retried?.failed === 0 && retried.indexed + retried.unchanged === (failedBatch?.length ?? 0),
      `after growing: ${JSON.stringify(retried && { indexed: retried.indexed, unchanged: retried.unchanged, failed: retried.failed })}`,
    );
    const afterGrow = await listDocuments(url, auth, 'disk');
    const expected = new Set([...whileFull.map((d) => d.externalId), ...(failedBatch ?? []).map((d) => d.id)]);
    checks.that(
      afterGrow.length === expected.size && afterGrow.every((d) => d.storedChunks === d.chunkCount),
      `after growing: ${afterGrow.length} documents (expected ${expected.size})`,
    );
    rows.push([
      'tmpfs grown to 64m, same call again',
      `indexed ${retried?.indexed ?? '?'}, failed ${retried?.failed ?? '?'}`,
      afterGrow.length,
      'recovered without a restart',
    ]);
    await app.stop();
    app = null;

    // Read-only: a read-only view of the same directory.
    mount(['--bind', dataDir, readOnlyView]);
    mount(['-o', 'remount,ro,bind', readOnlyView]);
    let startError: unknown = null;
    try {
      app = await start(readOnlyView);
    } catch (error) {
      startError = error;
    }
    const code = isAppError(startError) ? startError.code : String(startError);
    checks.that(code === 'STORAGE_UNAVAILABLE', `start on a read-only directory: ${code}`);
    rows.push(['start on the read-only directory', `refused: ${code}`, '', isAppError(startError) ? startError.message : '']);
    if (app) {
      await app.stop();
      app = null;
    }
    mount(['-o', 'remount,rw,bind', readOnlyView]);
    app = await start(readOnlyView);
    const url2 = `${await app.listen(0, '127.0.0.1')}/graphql`;
    const afterRw = await listDocuments(url2, auth, 'disk');
    checks.that(
      afterRw.length === expected.size && afterRw.every((d) => d.storedChunks === d.chunkCount),
      `writable again: ${afterRw.length} documents`,
    );
    const write = await gql(url2, INGEST, { c: 'disk', docs: [syntheticDocument(99_999)] }, { token: auth });
    checks.that(write.body?.data?.ingestDocuments?.indexed === 1, 'writes work again');
    rows.push(['writable again, start', 'OK, write OK', afterRw.length + 1, 'data intact']);
    await app.stop();
    app = null;

    const db = new Database(path.join(dataDir, 'kbql.sqlite'), { readonly: true });
    const integrity = db.pragma('integrity_check', { simple: true });
    db.close();
    checks.that(integrity === 'ok', `integrity_check: ${String(integrity)}`);
    rows.push(['SQLite integrity_check', String(integrity), '', '']);
    return { name: 'disk', title, header, rows, failures: checks.failures };
  } finally {
    if (app) await app.stop().catch(() => undefined);
    umount(readOnlyView);
    umount(dataDir);
    rmSync(base, { recursive: true, force: true });
  }
}
