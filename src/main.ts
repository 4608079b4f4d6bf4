import 'reflect-metadata';
import { createApp } from './app';
import { ConfigError, loadConfig } from './config';

/** Entry point: load config → createApp → listen; SIGTERM/SIGINT → graceful stop. */
async function main(): Promise<void> {
  const config = loadConfig();
  const app = await createApp(config);
  const url = await app.listen();
  process.stdout.write(`kbql ready at ${url}/graphql\n`);
  let signalled = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    process.stdout.write(`kbql: ${signal} received, draining\n`);
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else console.error(error);
  process.exit(1);
});
