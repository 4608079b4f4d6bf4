import 'reflect-metadata';
import { createApp } from './app';
import { loadConfig, type Config } from './config';
import { createLogger } from './logger';
import { startTracing } from './observability/tracing-sdk';
import { describeStartupFailure } from './startup-failure';

/** Longest a shutdown may take before the process gives up and exits 1, in ms (drain: 10 s, trace flush: 3 s). */
const SHUTDOWN_DEADLINE_MS = 15_000;
const TRACE_FLUSH_MS = 3_000;

/**
 * Entry point: load config → tracing SDK (only when OTEL_* asks for it) → createApp → listen.
 * SIGTERM/SIGINT → stop accepting, drain in-flight requests, close the stores, flush traces, exit 0.
 */
let loaded: Config | null = null;

async function main(): Promise<void> {
  const config = loadConfig();
  loaded = config;
  const logger = createLogger(config.logLevel);
  // Before the app: everything it builds uses the global API, which this registers.
  const tracing = config.tracing.exporter
    ? startTracing({ serviceName: config.tracing.serviceName, exporter: config.tracing.exporter, logger })
    : null;
  const app = await createApp(config, { logger });
  const url = await app.listen();
  process.stdout.write(`kbql ready at ${url}/graphql\n`);

  let signalled = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    // stop() closes the listener synchronously, so once this line is out no new connection is accepted.
    const stopped = app.stop();
    process.stdout.write(`kbql: ${signal} received, draining\n`);
    const force = setTimeout(() => {
      logger.error('shutdown deadline passed, exiting', { deadlineMs: SHUTDOWN_DEADLINE_MS });
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    force.unref();
    stopped
      .then(async () => {
        if (!tracing) return;
        const flushed = await Promise.race([
          tracing.shutdown().then(() => true),
          new Promise<boolean>((resolve) => setTimeout(resolve, TRACE_FLUSH_MS, false).unref()),
        ]);
        if (!flushed) logger.warn('traces not flushed in time', { timeoutMs: TRACE_FLUSH_MS });
      })
      .then(
        () => {
          logger.info('kbql stopped', { signal });
          process.exit(0);
        },
        (error: unknown) => {
          logger.error('shutdown failed', { error: error instanceof Error ? error.message : String(error) });
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  const failure = describeStartupFailure(error, loaded);
  process.stderr.write(`${failure.line}\n${failure.hint ? `hint: ${failure.hint}\n` : ''}${failure.stack ? `${failure.stack}\n` : ''}`);
  process.exit(1);
});
