/** A worker for `test/unit/worker-pool.test.ts`: tasks that answer, block, fail or kill their thread. */
import { threadId } from 'node:worker_threads';
import { AppError } from '../../src/errors';
import { serveWorkerTasks } from '../../src/adapters/workers/serve-tasks';

serveWorkerTasks({
  /** The input back, with the thread that ran it and when it started and ended. */
  echo: (input: unknown) => ({ input, threadId, startedAt: Date.now(), endedAt: Date.now() }),
  /** Blocks the thread for `ms` (a stuck parser), then answers like `echo`. */
  block: (ms: number) => {
    const startedAt = Date.now();
    while (Date.now() - startedAt < ms);
    return { input: ms, threadId, startedAt, endedAt: Date.now() };
  },
  fail: (code: string) => {
    throw new AppError(code as AppError['code'], 'failed on purpose', { reason: 'TEST' });
  },
  exit: () => process.exit(3),
});
