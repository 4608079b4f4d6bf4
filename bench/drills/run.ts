import { diskDrill } from './disk.drill';
import { killDrill } from './kill.drill';
import { loadDrill } from './load.drill';
import { providerDrill } from './provider.drill';
import { redisDrill } from './redis.drill';
import { sigtermDrill } from './sigterm.drill';
import { printReport, type DrillReport } from './lib';

/**
 * `npm run drills`: the six deploy drills, one after another, each printing its table; exits 1 if any failed.
 *   DRILL_LOAD_SECONDS (default 300), DRILL_LOAD_RATE (default: 80 % of the measured capacity, at most 900), DRILLS=1,3,5 to run some only.
 */
async function main(): Promise<void> {
  const only = new Set((process.env.DRILLS ?? '1,2,3,4,5,6').split(',').map((s) => s.trim()));
  const drills: [string, () => Promise<DrillReport>][] = [
    [
      '1',
      () =>
        loadDrill({
          seconds: Number(process.env.DRILL_LOAD_SECONDS ?? 300),
          rate: process.env.DRILL_LOAD_RATE ? Number(process.env.DRILL_LOAD_RATE) : undefined,
        }),
    ],
    ['2', () => redisDrill({ seconds: 30, rate: 60 })],
    ['3', () => providerDrill()],
    ['4', () => killDrill()],
    ['5', () => sigtermDrill({ secondsBefore: 5, secondsAfter: 3, rate: 80 })],
    ['6', () => diskDrill()],
  ];
  const reports: DrillReport[] = [];
  for (const [id, run] of drills) {
    if (!only.has(id)) continue;
    const started = Date.now();
    let report: DrillReport;
    try {
      report = await run();
    } catch (error) {
      report = {
        name: `drill ${id}`,
        title: `Drill ${id}`,
        header: ['error'],
        rows: [[String(error instanceof Error ? error.stack : error)]],
        failures: ['the drill threw'],
      };
    }
    printReport(report);
    process.stdout.write(`  (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    reports.push(report);
  }
  const failed = reports.filter((r) => !r.skipped && r.failures.length > 0);
  const skipped = reports.filter((r) => r.skipped);
  process.stdout.write(
    `\ndrills: ${reports.length - failed.length - skipped.length} passed, ${failed.length} failed${skipped.length ? `, ${skipped.length} skipped` : ''}\n`,
  );
  process.exit(failed.length > 0 ? 1 : 0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
