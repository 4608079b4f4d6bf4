import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diskDrill } from '../../bench/drills/disk.drill';
import { killDrill } from '../../bench/drills/kill.drill';
import { printReport, type DrillReport } from '../../bench/drills/lib';
import { loadDrill } from '../../bench/drills/load.drill';
import { providerDrill } from '../../bench/drills/provider.drill';
import { redisDrill } from '../../bench/drills/redis.drill';
import { sigtermDrill } from '../../bench/drills/sigterm.drill';

/**
 * The deploy drills of `npm run drills`, shortened to a few seconds each (same code, same checks, smaller
 * durations and counts). Each prints its table; a drill that cannot run here (no redis-server, not root) is skipped
 * with its reason.
 */
function verdict(t: { diagnostic(message: string): void; skip(message?: string): void }, report: DrillReport): void {
  printReport(report);
  if (report.skipped) {
    t.skip(report.skipped);
    return;
  }
  assert.deepEqual(report.failures, [], `${report.name}: ${report.failures.join('; ')}`);
  assert.ok(report.rows.length > 0, 'the drill produced a table');
}

describe('deploy drills (short)', { concurrency: false }, () => {
  it('1 load: mixed search/ask/ingest at a fixed rate, 0 errors, RSS within its bound', { timeout: 60_000 }, async (t) => {
    verdict(t, await loadDrill({ rate: 40, seconds: 4, warmupSeconds: 1, documents: 60 }));
  });

  it('2 Redis stopped and restarted during load: 0 failed requests, cache and rate limits recover', { timeout: 60_000 }, async (t) => {
    verdict(t, await redisDrill({ seconds: 6, rate: 30 }));
  });

  it('3 provider 500s and hangs: retries, breaker opens (UPSTREAM_UNAVAILABLE fast), recovers', { timeout: 60_000 }, async (t) => {
    verdict(t, await providerDrill({ timeoutMs: 500, halfOpenAfterMs: 1000 }));
  });

  it('4 kill -9 during ingestion: no partial documents, exact re-ingest', { timeout: 90_000 }, async (t) => {
    verdict(t, await killDrill({ documents: 200, batch: 20, concurrency: 3, killAfterBatches: [3, 6] }));
  });

  it('5 SIGTERM under load: in-flight complete, new ones refused, exit 0', { timeout: 60_000 }, async (t) => {
    verdict(t, await sigtermDrill({ secondsBefore: 1.5, secondsAfter: 1, rate: 40, providerDelayMs: 300 }));
  });

  it('6 disk full and read-only data directory: clear error, no corruption, recovery', { timeout: 60_000 }, async (t) => {
    verdict(t, await diskDrill());
  });
});
