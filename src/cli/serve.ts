/** What `kbql serve` may set; the rest of the configuration comes from the environment, as for `npm start`. */
export interface ServeOptions {
  port?: number;
  host?: string;
  dataDir?: string;
}

/**
 * `kbql serve`: runs the server entry point (`src/main.ts`: config, tracing, app, signals) in this process. The
 * options are written to the variables the config reads, before it is loaded.
 */
export async function runServe(options: ServeOptions): Promise<void> {
  if (options.port !== undefined) process.env['PORT'] = String(options.port);
  if (options.host !== undefined) process.env['HOST'] = options.host;
  if (options.dataDir !== undefined) process.env['KBQL_DATA_DIR'] = options.dataDir;
  await import('../main.js');
}
