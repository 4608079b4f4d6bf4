import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { WorkerCrashError, WorkerPool, type WorkerPoolOptions } from '../../src/adapters/workers/worker-pool';
import { isAppError } from '../../src/errors';

interface Echo {
  input: unknown;
  threadId: number;
  startedAt: number;
  endedAt: number;
}

const FILE = join(__dirname, '..', 'helpers', 'pool-test.worker.js');
const timeoutError = () => new Error('TIMED_OUT');
const pools: WorkerPool[] = [];
const pool = (options: Partial<WorkerPoolOptions> = {}) => {
  const p = new WorkerPool({ name: 'test', file: FILE, size: 1, ...options });
  pools.push(p);
  return p;
};
const run = <T = Echo>(
  p: WorkerPool,
  op: string,
  input: unknown,
  extra: { lane?: 'interactive' | 'background'; timeoutMs?: number; queueTimeoutMs?: number } = {},
) => p.run<T>(op, input, { timeoutMs: 5_000, onTimeout: timeoutError, ...extra });

describe('WorkerPool', () => {
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it('runs tasks on threads and returns their results', async () => {
    const p = pool({ size: 2 });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => run(p, 'echo', i)));
    assert.deepEqual(
      results.map((r) => r.input),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.equal(new Set(results.map((r) => r.threadId)).size, 2);
  });

  it('keeps a second task queued in a busy thread, and runs it as soon as the first ends', async () => {
    const p = pool({ size: 1, pipeline: 2 });
    const [first, second] = await Promise.all([run(p, 'block', 150), run(p, 'echo', 'next')]);
    assert.equal(first.threadId, second.threadId);
    assert.ok(second.startedAt >= first.endedAt);
  });

  it('terminates a thread whose task runs past its limit; the task queued behind it still runs', async () => {
    const p = pool({ size: 1, pipeline: 2 });
    const stuck = run(p, 'block', 3_000, { timeoutMs: 200 });
    const behind = run(p, 'echo', 'behind');
    await assert.rejects(stuck, /TIMED_OUT/);
    const result = await behind;
    assert.equal(result.input, 'behind');
    const after = await run(p, 'echo', 'after');
    assert.equal(after.threadId, result.threadId, 'one fresh thread serves what follows');
  });

  it('fails only the task whose thread died', async () => {
    const p = pool({ size: 1, pipeline: 2 });
    const dying = run(p, 'exit', null);
    const behind = run(p, 'echo', 'behind');
    await assert.rejects(dying, (error: unknown) => error instanceof WorkerCrashError);
    assert.equal((await behind).input, 'behind');
  });

  it('carries an AppError’s code across the thread boundary', async () => {
    const p = pool();
    await assert.rejects(
      run(p, 'fail', 'BAD_USER_INPUT'),
      (error: unknown) => isAppError(error) && error.code === 'BAD_USER_INPUT' && error.details.reason === 'TEST',
    );
  });

  it('starts waiting interactive tasks before background ones', async () => {
    const p = pool({ size: 1, pipeline: 1 });
    const order: string[] = [];
    const blocker = run(p, 'block', 150);
    const tasks = [
      run(p, 'echo', 'b1', { lane: 'background' }).then(() => order.push('b1')),
      run(p, 'echo', 'b2', { lane: 'background' }).then(() => order.push('b2')),
      run(p, 'echo', 'i1').then(() => order.push('i1')),
    ];
    await Promise.all([blocker, ...tasks]);
    assert.deepEqual(order, ['i1', 'b1', 'b2']);
  });

  it('refuses interactive work with SERVER_BUSY when its queue is full or the wait is too long', async () => {
    const p = pool({ size: 1, pipeline: 1, maxQueue: 1 });
    const blocker = run(p, 'block', 400);
    const waiting = run(p, 'echo', 'waits', { queueTimeoutMs: 100 });
    await assert.rejects(run(p, 'echo', 'refused'), (error: unknown) => isAppError(error) && error.code === 'SERVER_BUSY');
    await assert.rejects(waiting, (error: unknown) => isAppError(error) && error.code === 'SERVER_BUSY');
    // Background work is not bounded by the interactive queue: it waits.
    const background = run(p, 'echo', 'bg', { lane: 'background' });
    await blocker;
    assert.equal((await background).input, 'bg');
  });

  it('close() rejects waiting and running tasks and refuses new ones', async () => {
    const p = pool({ size: 1, pipeline: 1 });
    const running = assert.rejects(run(p, 'block', 2_000));
    const waiting = assert.rejects(
      run(p, 'echo', 'waits'),
      (error: unknown) => isAppError(error) && error.details.reason === 'SHUTTING_DOWN',
    );
    await p.close();
    await Promise.all([running, waiting]);
    await assert.rejects(run(p, 'echo', 'late'), (error: unknown) => isAppError(error) && error.details.reason === 'SHUTTING_DOWN');
  });
});
