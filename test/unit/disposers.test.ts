import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Disposers } from '../../src/app/lifecycle';

/** A logger that keeps its error lines. */
function recordingLogger() {
  const errors: { message: string; fields?: Record<string, unknown> }[] = [];
  return { errors, error: (message: string, fields?: Record<string, unknown>) => void errors.push({ message, fields }) };
}

describe('Disposers (the shutdown registry of createApp)', () => {
  it('runs the disposers in reverse order of registration, each after the previous one settled', async () => {
    const ran: string[] = [];
    const disposers = new Disposers(recordingLogger());
    for (const name of ['store', 'cache', 'apollo', 'http']) {
      disposers.add(name, async () => {
        ran.push(`${name} start`);
        await new Promise((resolve) => setTimeout(resolve, 2));
        ran.push(`${name} end`);
      });
    }
    await disposers.dispose();
    assert.deepEqual(ran, ['http start', 'http end', 'apollo start', 'apollo end', 'cache start', 'cache end', 'store start', 'store end']);
  });

  it('calls the last registered disposer synchronously (a listener closes before dispose() returns)', () => {
    const ran: string[] = [];
    const disposers = new Disposers(recordingLogger());
    disposers.add('first', () => ran.push('first'));
    disposers.add('last', () => ran.push('last'));
    const done = disposers.dispose();
    assert.deepEqual(ran, ['last']);
    return done;
  });

  it('runs the others when one fails, logs the failure with its part, and rejects with the first failure', async () => {
    const ran: string[] = [];
    const logger = recordingLogger();
    const disposers = new Disposers(logger);
    disposers.add('store', () => ran.push('store'));
    disposers.add('cache', () => {
      throw new Error('cache exploded');
    });
    disposers.add('queue', async () => {
      throw new Error('queue exploded');
    });
    disposers.add('http', () => ran.push('http'));
    await assert.rejects(disposers.dispose(), /queue exploded/);
    assert.deepEqual(ran, ['http', 'store']);
    assert.deepEqual(
      logger.errors.map((e) => [e.message, e.fields?.['part'], e.fields?.['error']]),
      [
        ['shutdown step failed', 'queue', 'queue exploded'],
        ['shutdown step failed', 'cache', 'cache exploded'],
      ],
    );
  });

  it('is idempotent: a second dispose() returns the same promise and runs nothing again', async () => {
    let runs = 0;
    const disposers = new Disposers(recordingLogger());
    disposers.add('store', async () => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 2));
    });
    const first = disposers.dispose();
    const second = disposers.dispose();
    assert.equal(first, second);
    await first;
    await disposers.dispose();
    assert.equal(runs, 1);
  });

  it('resolves at once with nothing registered', async () => {
    await new Disposers(recordingLogger()).dispose();
  });
});
