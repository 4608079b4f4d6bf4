import type Database from 'better-sqlite3';

/**
 * Puts a SQLite connection in WAL mode. Two processes opening one new file at once (two replicas on a shared data
 * directory) both try to change its journal mode; SQLite refuses the one that would deadlock with SQLITE_BUSY at
 * once, without waiting out the busy timeout. So a busy refusal is retried for up to `timeoutMs`, with short sleeps:
 * this runs once per file at start-up, before the server takes requests.
 */
export function enableWal(db: Pick<Database.Database, 'pragma'>, timeoutMs = 5000): void {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      if (db.pragma('journal_mode', { simple: true }) === 'wal') return;
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if ((code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') || Date.now() >= deadline) throw error;
      Atomics.wait(SLEEPER, 0, 0, Math.min(100, 5 * 2 ** Math.min(attempt, 5)));
    }
  }
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));
