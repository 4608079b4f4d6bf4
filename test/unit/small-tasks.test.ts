import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmallTasks } from '../../src/adapters/workers/small-tasks';
import type { Settled } from '../../src/adapters/workers/worker-pool';
import { AppError } from '../../src/errors';

/** A batch runner that doubles numbers and fails negative ones, recording each batch it was given. */
function doubling(): {
  batches: { inputs: number[]; priority: string }[];
  run: (inputs: number[], priority: string) => Promise<Settled<number>[]>;
} {
  const batches: { inputs: number[]; priority: string }[] = [];
  return {
    batches,
    run: (inputs, priority) => {
      batches.push({ inputs, priority });
      return Promise.resolve(
        inputs.map((n) =>
          n < 0 ? { ok: false, error: { message: `negative: ${n}`, code: 'BAD_USER_INPUT', details: { n } } } : { ok: true, value: n * 2 },
        ),
      );
    },
  };
}

describe('SmallTasks: small inputs share worker tasks', () => {
  it('gathers the calls of one turn into one task per lane, each input settling on its own', async () => {
    const runner = doubling();
    const tasks = new SmallTasks<number, number>(runner.run);
    const results = await Promise.allSettled([
      tasks.run(1, 10, 'interactive'),
      tasks.run(-2, 10, 'interactive'),
      tasks.run(3, 10, 'interactive'),
      tasks.run(4, 10, 'background'),
    ]);
    assert.deepEqual(runner.batches, [
      { inputs: [1, -2, 3], priority: 'interactive' },
      { inputs: [4], priority: 'background' },
    ]);
    assert.deepEqual(results[0], { status: 'fulfilled', value: 2 });
    assert.deepEqual(results[2], { status: 'fulfilled', value: 6 });
    assert.deepEqual(results[3], { status: 'fulfilled', value: 8 });
    const failed = results[1];
    assert.ok(failed.status === 'rejected' && failed.reason instanceof AppError && failed.reason.code === 'BAD_USER_INPUT');
    assert.deepEqual(failed.reason.details, { n: -2 });
  });

  it('starts a task as soon as it holds its most inputs or characters; later calls go in the next', async () => {
    const runner = doubling();
    const tasks = new SmallTasks<number, number>(runner.run, 3, 100);
    const done = Promise.all([1, 2, 3, 4, 5].map((n) => tasks.run(n, 1, 'interactive')));
    // The first three left at once, before the turn ended.
    assert.deepEqual(
      runner.batches.map((b) => b.inputs),
      [[1, 2, 3]],
    );
    assert.deepEqual(await done, [2, 4, 6, 8, 10]);
    await Promise.all([tasks.run(6, 60, 'interactive'), tasks.run(7, 60, 'interactive'), tasks.run(8, 1, 'interactive')]);
    assert.deepEqual(
      runner.batches.map((b) => b.inputs),
      [[1, 2, 3], [4, 5], [6, 7], [8]],
    );
  });

  it('a task that fails fails each of its inputs with that error; calls of later turns are not affected', async () => {
    let fail = true;
    const tasks = new SmallTasks<number, number>((inputs) =>
      fail ? Promise.reject(new Error('thread crashed')) : Promise.resolve(inputs.map((n) => ({ ok: true as const, value: n }))),
    );
    const first = await Promise.allSettled([tasks.run(1, 1, 'interactive'), tasks.run(2, 1, 'interactive')]);
    assert.deepEqual(
      first.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok')),
      ['thread crashed', 'thread crashed'],
    );
    fail = false;
    assert.equal(await tasks.run(3, 1, 'interactive'), 3);
  });

  it('an answer with fewer outcomes than inputs fails the inputs left without one', async () => {
    const tasks = new SmallTasks<number, number>((inputs) => Promise.resolve([{ ok: true as const, value: inputs[0]! }]));
    const results = await Promise.allSettled([tasks.run(1, 1, 'interactive'), tasks.run(2, 1, 'interactive')]);
    assert.equal(results[0].status, 'fulfilled');
    assert.ok(results[1].status === 'rejected' && /fewer results/.test((results[1].reason as Error).message));
  });
});
