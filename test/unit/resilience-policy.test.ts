import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createResiliencePolicy,
  isCircuitOpenError,
  isTimeoutError,
  type ResiliencePolicyOptions,
} from '../../src/adapters/resilience/resilience-policy';

class Transient extends Error {}
class Permanent extends Error {}

const FAST = { backoff: { initialDelayMs: 1, maxDelayMs: 2 } } as const;
const policy = (options: Partial<ResiliencePolicyOptions> = {}) =>
  createResiliencePolicy({ isTransient: (e) => e instanceof Transient, ...FAST, ...options });

/** A call that fails with the given errors in turn, then answers 'ok'; counts its attempts. */
function flaky(...failures: Error[]) {
  const call = async (_signal: AbortSignal): Promise<string> => {
    call.attempts++;
    const failure = failures.shift();
    if (failure) throw failure;
    return 'ok';
  };
  call.attempts = 0;
  return call;
}

describe('createResiliencePolicy', () => {
  it('retries transient failures only, up to `retries` times', async () => {
    const p = policy({ retries: 2 });
    const recovers = flaky(new Transient(), new Transient());
    assert.equal(await p.execute(recovers), 'ok');
    assert.equal(recovers.attempts, 3);

    const exhausted = flaky(new Transient('1'), new Transient('2'), new Transient('3'));
    await assert.rejects(p.execute(exhausted), { message: '3' });
    assert.equal(exhausted.attempts, 3);

    const permanent = flaky(new Permanent('no'));
    await assert.rejects(p.execute(permanent), Permanent);
    assert.equal(permanent.attempts, 1);
  });

  it('retries per call as told: off, or another count', async () => {
    const p = policy({ retries: 2, breaker: { threshold: 100 } });
    const off = flaky(new Transient(), new Transient());
    await assert.rejects(p.execute(off, { retry: false }), Transient);
    assert.equal(off.attempts, 1);
    const more = flaky(new Transient(), new Transient(), new Transient(), new Transient());
    assert.equal(await p.execute(more, { retries: 4 }), 'ok');
    assert.equal(more.attempts, 5);
    const none = flaky(new Transient());
    await assert.rejects(policy({ retries: 0 }).execute(none), Transient);
    assert.equal(none.attempts, 1);
  });

  it('waits between retries, at most backoff.maxDelayMs each', async () => {
    const p = policy({ retries: 3, backoff: { initialDelayMs: 1_000, maxDelayMs: 40 } });
    const started = performance.now();
    assert.equal(await p.execute(flaky(new Transient(), new Transient(), new Transient())), 'ok');
    // Three waits, each capped at 40 ms (a 1 s initial delay would otherwise dominate).
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 35 && elapsed < 600, `elapsed ${elapsed} ms`);
  });

  it('bounds each attempt by timeoutMs: the signal aborts and the call fails with a timeout error', async () => {
    const p = policy({ timeoutMs: 30, retries: 0 });
    let seen: AbortSignal | undefined;
    const error = await p
      .execute(async (signal) => {
        seen = signal;
        await sleep(1_000, undefined, { signal }).catch(() => undefined);
        return 'late';
      })
      .catch((e: unknown) => e);
    assert.equal(isTimeoutError(error), true);
    assert.equal(isCircuitOpenError(error), false);
    assert.equal(seen?.aborted, true);
    assert.equal(p.timeoutMs, 30);
    assert.equal(await p.execute(async () => 'fast'), 'fast');
  });

  it('with timeoutScope total, the bound covers every attempt and the waits between them', async () => {
    const p = policy({ retries: 1_000, backoff: { initialDelayMs: 5, maxDelayMs: 5 }, isFailure: () => false });
    const always = async (): Promise<string> => {
      throw new Transient();
    };
    const started = performance.now();
    const error = await p.execute(always, { timeoutMs: 60, timeoutScope: 'total', breaker: false }).catch((e: unknown) => e);
    assert.equal(isTimeoutError(error), true);
    assert.ok(performance.now() - started < 1_000);
  });

  it('opens the circuit after `threshold` consecutive failures, fails fast, and closes after a good trial call', async () => {
    const p = policy({ retries: 0, breaker: { threshold: 2, halfOpenAfterMs: 50 } });
    assert.equal(p.state, 'closed');
    assert.equal(p.breakerThreshold, 2);
    assert.equal(p.breakerHalfOpenAfterMs, 50);
    await assert.rejects(p.execute(flaky(new Transient())), Transient);
    assert.equal(p.state, 'closed');
    await assert.rejects(p.execute(flaky(new Transient())), Transient);
    assert.equal(p.state, 'open');

    const skipped = flaky();
    const error = await p.execute(skipped).catch((e: unknown) => e);
    assert.equal(isCircuitOpenError(error), true);
    assert.equal(skipped.attempts, 0, 'an open circuit does not call');

    await sleep(70);
    assert.equal(await p.execute(flaky()), 'ok');
    assert.equal(p.state, 'closed');
  });

  it('counts what isFailure says, and a call that skips the breaker does not count', async () => {
    const p = policy({ retries: 0, isFailure: (e) => e instanceof Permanent, breaker: { threshold: 1 } });
    await assert.rejects(p.execute(flaky(new Transient())), Transient);
    assert.equal(p.state, 'closed', 'transient but not a failure');
    await assert.rejects(p.execute(flaky(new Permanent())), Permanent);
    assert.equal(p.state, 'open');

    const q = policy({ retries: 0, breaker: { threshold: 1 } });
    await assert.rejects(q.execute(flaky(new Transient()), { breaker: false }), Transient);
    assert.equal(q.state, 'closed');
  });

  it("stops retrying when the caller's signal aborts", async () => {
    const p = policy({ retries: 5, backoff: { initialDelayMs: 50, maxDelayMs: 50 } });
    const controller = new AbortController();
    const call = flaky(new Transient(), new Transient(), new Transient(), new Transient());
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(p.execute(call, { signal: controller.signal }));
    assert.ok(call.attempts < 5, `${call.attempts} attempts`);
  });

  it('refuses invalid options with RangeError', () => {
    const isTransient = () => true;
    assert.throws(() => createResiliencePolicy({ isTransient, retries: -1 }), RangeError);
    assert.throws(() => createResiliencePolicy({ isTransient, retries: 1.5 }), RangeError);
    assert.throws(() => createResiliencePolicy({ isTransient, timeoutMs: 0 }), RangeError);
    assert.throws(() => createResiliencePolicy({ isTransient, backoff: { initialDelayMs: -1 } }), RangeError);
    assert.throws(() => createResiliencePolicy({ isTransient, backoff: { maxDelayMs: Number.NaN } }), RangeError);
    assert.throws(() => createResiliencePolicy({ isTransient, breaker: { threshold: 0 } }), RangeError);
    assert.throws(() => createResiliencePolicy({ isTransient, breaker: { halfOpenAfterMs: 0 } }), RangeError);
    const defaults = createResiliencePolicy({ isTransient });
    assert.deepEqual(
      [defaults.timeoutMs, defaults.breakerThreshold, defaults.breakerHalfOpenAfterMs, defaults.state],
      [undefined, 5, 10_000, 'closed'],
    );
  });
});
