import { execFile } from 'node:child_process';
import path from 'node:path';

/** The compiled CLI, as the `kbql` bin runs it. */
export const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** How one `kbql` run ended. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `kbql <args>` as a child process in `cwd` (60 s at most), never rejecting: the exit code is the result. */
export function kbql(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd, timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

/** A run as an assertion message. */
export const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
