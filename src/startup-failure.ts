import { ConfigError } from './config';

/** What start-up needed, for the hint (null when the configuration itself failed). */
export interface StartupSetting {
  host: string;
  port: number;
  dataDir: string;
}

/**
 * A start-up failure as one line saying what went wrong and one hint saying what to change — no stack trace for
 * the failures a user causes (port in use, data directory not writable, bad configuration); anything else keeps
 * its stack (a bug to report).
 */
export function describeStartupFailure(
  error: unknown,
  setting: StartupSetting | null,
): { line: string; hint: string | null; stack: string | null } {
  if (error instanceof ConfigError) {
    return {
      line: `kbql: invalid configuration: ${error.problems.join('; ')}`,
      hint: 'fix the variables named above (README, Configuration, lists every variable with its default)',
      stack: null,
    };
  }
  // A configuration that cannot work (replicas on different stores sharing one Redis): the message says it all.
  if (error instanceof Error && error.name === 'StoreConflictError') return { line: `kbql: ${error.message}`, hint: null, stack: null };
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const syscall = (error as NodeJS.ErrnoException | undefined)?.syscall;
  if (setting && syscall === 'listen') {
    const where = `${setting.host}:${setting.port}`;
    if (code === 'EADDRINUSE') {
      return {
        line: `kbql: cannot listen on ${where}: the port is already in use`,
        hint: `stop the other process or choose another port, e.g. PORT=${setting.port + 1} (PORT=0 picks a free one)`,
        stack: null,
      };
    }
    if (code === 'EACCES') {
      return {
        line: `kbql: cannot listen on ${where}: permission denied`,
        hint: 'ports below 1024 need privileges: set PORT to 1024 or above',
        stack: null,
      };
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      return {
        line: `kbql: cannot listen on ${where}: no such local address`,
        hint: 'set HOST to an address of this machine (127.0.0.1, or 0.0.0.0 for every interface)',
        stack: null,
      };
    }
  }
  const path = (error as NodeJS.ErrnoException | undefined)?.path;
  const inDataDir = setting !== null && (path?.startsWith(setting.dataDir) || setting.dataDir.startsWith(path ?? '\0'));
  if (setting && inDataDir && ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENOSPC', 'EEXIST'].includes(code ?? '')) {
    return {
      line: `kbql: the data directory ${setting.dataDir} cannot be created or written (${code})`,
      hint: 'set KBQL_DATA_DIR to a writable directory (it is created if missing)',
      stack: null,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { line: `kbql: start-up failed: ${message}`, hint: null, stack: error instanceof Error ? (error.stack ?? null) : null };
}
