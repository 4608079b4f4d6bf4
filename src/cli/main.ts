#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { ChunkingStrategy, IngestionJobStatus, SearchMode } from '../generated/graphql';
import { CliError, EXIT, KbqlClient } from './client';
import { runCreateCollection, runListCollections } from './collections';
import { runReembedCollection, runRollbackEmbedding } from './reembed';
import { runIngest } from './ingest';
import { runCancelJob, runDeleteJob, runFollowJob, runListJobs, runRetryJob, runShowJob } from './jobs';
import { runAsk, runAskStream, runSearch } from './query';
import { runServe } from './serve';
import { runToken, type TokenOptions } from './token';

export const DEFAULT_URL = 'http://127.0.0.1:4000/graphql';

interface ConnectionOptions {
  url: string;
  token?: string;
  timeoutMs: number;
  json?: boolean;
}

/**
 * `kbql`: serve the API, or talk to a running server over HTTP with the generated typed operations. Human output by
 * default, `--json` for scripts. Exit codes: 0 ok, 1 error (unreachable server, GraphQL error, unknown collection…),
 * 2 bad command line, 3 `ingest` (or a followed job) finished with FAILED or CANCELLED documents, 130 Ctrl-C while
 * following a job (the job goes on on the server).
 */
export function createProgram(onExit: (code: number) => void = () => {}): Command {
  const program = new Command('kbql')
    .description('kbql: a GraphQL knowledge base. Serve it, ingest folders, search and ask from the terminal.')
    .version(readVersion())
    .showHelpAfterError('(kbql --help for usage)')
    .exitOverride();

  program
    .command('serve')
    .description('run the kbql server (configured by environment variables, as `npm start`)')
    .option('--port <port>', 'HTTP port (PORT; 0 picks a free one)', integer(0, 65535))
    .option('--host <host>', 'interface to listen on (HOST)')
    .option('--data-dir <dir>', 'directory of the embedded store (KBQL_DATA_DIR)')
    .action((options: { port?: number; host?: string; dataDir?: string }) => runServe(options));

  connection(program.command('ingest'))
    .description(
      'ingest .md, .txt and .html files (and, with --async, .pdf and .docx): files, folders (walked recursively) or quoted globs',
    )
    .argument('<paths...>', 'files, directories or globs such as "docs/**/*.md"')
    .requiredOption('-c, --collection <name>', 'collection name or id')
    .option('--create', 'create the collection when it does not exist', false)
    .option('--batch-size <n>', 'documents per request', integer(1, 10_000), 32)
    .option('--batch-bytes <n>', 'content bytes per request', integer(1024, 1024 ** 3), 4 * 1024 * 1024)
    .option('--base <dir>', 'document ids are file paths relative to this directory (default: the current one)')
    .option('--source-prefix <uri>', 'prefix of each document source, e.g. https://github.com/org/repo/blob/main/ (default: the path)')
    .option('--progress', 'always show the progress bar (default: only on a terminal)')
    .option('--no-progress', 'never show the progress bar')
    .option('--async', 'run as a background job; .pdf/.docx files are uploaded and extracted by the server', false)
    .option('--no-wait', 'with --async: print the job id and return at once instead of following the job')
    .action(
      async (
        paths: string[],
        options: ConnectionOptions & {
          collection: string;
          create: boolean;
          batchSize: number;
          batchBytes: number;
          base?: string;
          sourcePrefix?: string;
          progress?: boolean;
          async: boolean;
          wait: boolean;
        },
      ) =>
        onExit(
          await runIngest(client(options), paths, {
            collection: options.collection,
            create: options.create,
            batchSize: options.batchSize,
            batchBytes: options.batchBytes,
            base: path.resolve(options.base ?? '.'),
            sourcePrefix: options.sourcePrefix,
            progress: options.progress,
            async: options.async,
            wait: options.wait,
            json: options.json ?? false,
          }),
        ),
    );

  retrieval(connection(program.command('ask')))
    .description('ask a question; prints the answer and its numbered sources')
    .argument('<question...>', 'the question (quotes optional)')
    .option('--stream', 'print the answer as it is written (askStream over WebSocket); with --json, one JSON object per event per line')
    .action(
      async (words: string[], options: ConnectionOptions & { collection: string; mode: SearchMode; topK?: number; stream?: boolean }) => {
        const retrievalOptions = { collection: options.collection, mode: options.mode, topK: options.topK, json: options.json ?? false };
        onExit(
          options.stream
            ? await runAskStream(client(options), words.join(' '), { ...retrievalOptions, timeoutMs: options.timeoutMs })
            : await runAsk(client(options), words.join(' '), retrievalOptions),
        );
      },
    );

  retrieval(connection(program.command('search')))
    .description('ranked chunks for a query')
    .argument('<query...>', 'the query (quotes optional)')
    .option('--alpha <alpha>', 'HYBRID weight of the vector side, 0 to 1', number(0, 1))
    .option('--offset <n>', 'hits to skip', integer(0, 200))
    .action(
      async (
        words: string[],
        options: ConnectionOptions & { collection: string; mode: SearchMode; topK?: number; alpha?: number; offset?: number },
      ) =>
        onExit(
          await runSearch(client(options), words.join(' '), {
            collection: options.collection,
            mode: options.mode,
            topK: options.topK,
            alpha: options.alpha,
            offset: options.offset,
            json: options.json ?? false,
          }),
        ),
    );

  const collections = program.command('collections').description('list, create or re-embed collections');
  connection(collections.command('list', { isDefault: true }))
    .description('list collections with their document and chunk counts (the default)')
    .action(async (options: ConnectionOptions) => onExit(await runListCollections(client(options), { json: options.json ?? false })));
  connection(collections.command('create'))
    .description('create a collection')
    .argument('<name>', 'a letter, then up to 62 letters, digits, "_" or "-"')
    .option('--description <text>', 'what the collection holds')
    .addOption(new Option('--strategy <strategy>', 'chunking strategy').choices(['AUTO', 'MARKDOWN', 'SENTENCE']))
    .option('--chunk-size <tokens>', 'target chunk size in tokens', integer(32, 8192))
    .option('--chunk-overlap <tokens>', 'overlap between chunks in tokens', integer(0, 4096))
    .option('--embedder <name>', 'a configured embedder (default: the server default)')
    .action(
      async (
        name: string,
        options: ConnectionOptions & {
          description?: string;
          strategy?: ChunkingStrategy;
          chunkSize?: number;
          chunkOverlap?: number;
          embedder?: string;
        },
      ) => onExit(await runCreateCollection(client(options), name, { ...options, json: options.json ?? false })),
    );
  connection(collections.command('reembed'))
    .description('re-embed a collection with another configured embedder while it keeps serving (one atomic switch)')
    .argument('<collection>', 'collection name or id')
    .requiredOption('--embedder <name>', 'a configured embedder (KBQL_EMBEDDERS)')
    .option('--wait', 'follow the progress until the switch')
    .action(async (collection: string, options: ConnectionOptions & { embedder: string; wait?: boolean }) =>
      onExit(
        await runReembedCollection(client(options), collection, {
          embedder: options.embedder,
          wait: options.wait ?? false,
          json: options.json ?? false,
        }),
      ),
    );
  connection(collections.command('rollback'))
    .description('within the grace period after a re-embedding, switch back to the previous embedder')
    .argument('<collection>', 'collection name or id')
    .action(async (collection: string, options: ConnectionOptions) =>
      onExit(await runRollbackEmbedding(client(options), collection, { json: options.json ?? false })),
    );

  const jobs = program
    .command('jobs')
    .description('background ingestion jobs (kbql ingest --async): list, show, follow, cancel, retry, delete');
  connection(jobs.command('list', { isDefault: true }))
    .description('jobs, newest first (the default)')
    .option('-c, --collection <name>', 'only the jobs of this collection (name or id)')
    .option(
      '--status <status>',
      'QUEUED, RUNNING, COMPLETED, COMPLETED_WITH_ERRORS or CANCELLED (any case)',
      oneOf(['QUEUED', 'RUNNING', 'COMPLETED', 'COMPLETED_WITH_ERRORS', 'CANCELLED']),
    )
    .option('--first <n>', 'how many', integer(1, 100), 20)
    .action(async (options: ConnectionOptions & { collection?: string; status?: IngestionJobStatus; first: number }) =>
      onExit(
        await runListJobs(client(options), {
          collection: options.collection,
          status: options.status,
          first: options.first,
          json: options.json ?? false,
        }),
      ),
    );
  connection(jobs.command('show'))
    .description("a job's status and counts, and each FAILED document with its reason")
    .argument('<id>', 'the job id')
    .action(async (id: string, options: ConnectionOptions) =>
      onExit(await runShowJob(client(options), id, { json: options.json ?? false })),
    );
  progressOptions(connection(jobs.command('follow')))
    .description('follow a job to its end (progress bar, then the summary); Ctrl-C stops following, not the job')
    .argument('<id>', 'the job id')
    .action(async (id: string, options: ConnectionOptions & { progress?: boolean }) =>
      onExit(await runFollowJob(client(options), id, { progress: options.progress, json: options.json ?? false })),
    );
  connection(jobs.command('cancel'))
    .description('cancel a job: documents not stored yet become CANCELLED, stored ones stay')
    .argument('<id>', 'the job id')
    .action(async (id: string, options: ConnectionOptions) =>
      onExit(await runCancelJob(client(options), id, { json: options.json ?? false })),
    );
  connection(jobs.command('delete'))
    .description('delete a finished job and its per-document records now (its indexed documents stay); refused while it runs')
    .argument('<id>', 'the job id')
    .action(async (id: string, options: ConnectionOptions) =>
      onExit(await runDeleteJob(client(options), id, { json: options.json ?? false })),
    );
  progressOptions(connection(jobs.command('retry')))
    .description("run a job's FAILED documents again, then follow it")
    .argument('<id>', 'the job id')
    .option('--no-wait', 'print the job and return at once instead of following it')
    .action(async (id: string, options: ConnectionOptions & { progress?: boolean; wait: boolean }) =>
      onExit(await runRetryJob(client(options), id, { progress: options.progress, wait: options.wait, json: options.json ?? false })),
    );

  program
    .command('token')
    .description('print a development JWT signed with KBQL_JWT_SECRET (for KBQL_AUTH_MODE=jwt)')
    .addOption(new Option('--role <role>', 'READER, WRITER or ADMIN').choices(['READER', 'WRITER', 'ADMIN']).makeOptionMandatory())
    .option('--tenant <tenant>', 'the tenant claim', 'default')
    .option('--subject <sub>', 'the sub claim', 'dev')
    .option('--expires <duration>', 'lifetime, e.g. 15m, 8h, 7d', '8h')
    .action(async (options: TokenOptions) => onExit(await runToken(options)));

  return program;
}

/** Runs the CLI and resolves with the exit code; errors are reported on stderr as one `kbql: …` line. */
export async function run(argv: readonly string[]): Promise<number> {
  let code: number = EXIT.OK;
  try {
    await createProgram((c) => (code = c)).parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    // Commander has printed its message (or the help) already.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    process.stderr.write(`kbql: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof CliError ? error.exitCode : EXIT.ERROR;
  }
}

/** --url, --token, --timeout-ms and --json, on every command that talks to a server. */
function connection(command: Command): Command {
  return command
    .option('--url <url>', 'GraphQL endpoint of the kbql server', DEFAULT_URL)
    .option('--token <token>', 'bearer token, sent as the authorization header')
    .option('--timeout-ms <ms>', 'time allowed per request, in ms', integer(1, 3_600_000), 120_000)
    .option('--json', 'print JSON on stdout (for scripts)');
}

/** --progress / --no-progress of the commands that follow a job. */
function progressOptions(command: Command): Command {
  return command
    .option('--progress', 'always show the progress bar (default: only on a terminal)')
    .option('--no-progress', 'never show the progress bar');
}

/** --collection, --mode and --top-k of ask and search. */
function retrieval(command: Command): Command {
  return command
    .requiredOption('-c, --collection <name>', 'collection name or id')
    .option('--mode <mode>', 'ranking: HYBRID, VECTOR or KEYWORD (any case)', oneOf(['HYBRID', 'VECTOR', 'KEYWORD']), 'HYBRID')
    .option('-k, --top-k <n>', 'how many chunks to retrieve', integer(1, 200));
}

function client(options: ConnectionOptions): KbqlClient {
  return new KbqlClient({ url: options.url, token: options.token, timeoutMs: options.timeoutMs });
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`an integer from ${min} to ${max}`);
    return n;
  };
}

function oneOf<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    const upper = value.toUpperCase() as T;
    if (!choices.includes(upper)) throw new InvalidArgumentError(`one of ${choices.join(', ')}`);
    return upper;
  };
}

function number(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`a number from ${min} to ${max}`);
    return n;
  };
}

function readVersion(): string {
  try {
    // dist/src/cli/main.js → package.json at the package root.
    const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`kbql: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = EXIT.ERROR;
    },
  );
}
