import {
  CancelIngestionDocument,
  DeleteIngestionJobDocument,
  IngestionJobDocument,
  IngestionJobsDocument,
  IngestionProgressDocument,
  RetryIngestionDocument,
  type IngestionJobDocumentStateFragment,
  type IngestionJobStatus,
  type IngestionJobSummaryFragment,
  type IngestionStage,
} from '../generated/graphql';
import { CliError, EXIT, type KbqlClient } from './client';
import { writeJson, writeLine } from './output';
import { createBar } from './progress';

/** Stages after which a document of a job does not move any more. */
const FINAL_STAGES: ReadonlySet<IngestionStage> = new Set(['INDEXED', 'UNCHANGED', 'FAILED', 'CANCELLED']);
/** Job statuses after which `ingestionProgress` only replays and ends. */
const FINAL_STATUSES: ReadonlySet<IngestionJobStatus> = new Set(['COMPLETED', 'COMPLETED_WITH_ERRORS', 'CANCELLED']);
/** Documents per page when listing a job's failed documents. */
const PAGE = 100;

export interface FollowOptions {
  /** Progress bar on stderr: true = always, false = never, undefined = when stderr is a terminal. */
  progress?: boolean;
  /** A Ctrl-C caught by the caller before following began (e.g. right after it printed the job id). */
  interrupted?: AbortSignal;
}

/** The end of a followed job: its final counts and every FAILED document with its reason. */
export interface JobOutcome {
  job: IngestionJobSummaryFragment;
  failures: IngestionJobDocumentStateFragment[];
}

/**
 * Follows a job over the `ingestionProgress` subscription until its SUMMARY, drawing the ingest progress bar from the
 * stage events, then loads the FAILED documents (the events may have been missed while disconnected; the job's stored
 * state is the truth). Resolves with null when the user pressed Ctrl-C: following stops, the job goes on on the
 * server, and how to pick it up again has been printed on stderr.
 */
export async function followJob(client: KbqlClient, jobId: string, options: FollowOptions): Promise<JobOutcome | null> {
  // Installed before the first await, so that a Ctrl-C right after "job … started" is ours, not Node's default exit.
  const controller = new AbortController();
  const onInterrupt = () => controller.abort();
  process.once('SIGINT', onInterrupt);
  if (options.interrupted?.aborted) controller.abort();
  let job: IngestionJobSummaryFragment;
  try {
    job = await followUntilSummary(client, jobId, options, controller.signal);
  } catch (error) {
    if (controller.signal.aborted) {
      // stopped by Ctrl-C: reported below
    } else if (error instanceof CliError && error.code === 'UNREACHABLE') {
      throw new CliError(`${error.message} (job ${jobId} goes on on the server: kbql jobs follow ${jobId})`, error.exitCode, error.code);
    } else throw error;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
  }
  if (controller.signal.aborted) {
    process.stderr.write(
      `kbql: stopped following job ${jobId}; it goes on on the server.\n` +
        `  follow it again: kbql jobs follow ${jobId}\n` +
        `  cancel it:       kbql jobs cancel ${jobId}\n`,
    );
    return null;
  }
  return { job: job!, failures: await failedDocuments(client, jobId) };
}

/** The job's final counts: at once when it is already over, else after the SUMMARY event (or the end of the stream). */
async function followUntilSummary(
  client: KbqlClient,
  jobId: string,
  options: FollowOptions,
  signal: AbortSignal,
): Promise<IngestionJobSummaryFragment> {
  const first = (await client.request(IngestionJobDocument, { id: jobId, stage: null, first: 1, after: null })).ingestionJob;
  if (FINAL_STATUSES.has(first.status) || signal.aborted) return first;
  const bar = createBar(options.progress ?? Boolean(process.stderr.isTTY));
  const stages = new Map<number, IngestionStage>();
  const counts = { INDEXED: 0, UNCHANGED: 0, FAILED: 0, CANCELLED: 0 };
  const started = performance.now();
  let done = 0;
  bar?.start(first.total, 0, { rate: '0.0', indexed: 0, unchanged: 0, failed: 0 });
  try {
    for await (const { ingestionProgress: event } of client.subscribe(IngestionProgressDocument, { jobId }, signal)) {
      if (event.kind === 'SUMMARY' && event.job) return event.job;
      for (const doc of event.documents) {
        const before = stages.get(doc.index);
        stages.set(doc.index, doc.stage);
        // A retried document leaves FAILED again: count it out before counting its new stage in.
        if (before && FINAL_STAGES.has(before)) {
          done--;
          counts[before as keyof typeof counts]--;
        }
        if (FINAL_STAGES.has(doc.stage)) {
          done++;
          counts[doc.stage as keyof typeof counts]++;
        }
      }
      const rate = (done / Math.max((performance.now() - started) / 1000, 0.001)).toFixed(1);
      bar?.update(done, { rate, indexed: counts.INDEXED, unchanged: counts.UNCHANGED, failed: counts.FAILED });
    }
  } finally {
    bar?.stop();
  }
  // The stream ends after the SUMMARY; ended without one (server shutting down, or stopped), the stored job says where it is.
  return (await client.request(IngestionJobDocument, { id: jobId, stage: null, first: 1, after: null })).ingestionJob;
}

/** Every FAILED document of a job, page by page. */
export async function failedDocuments(client: KbqlClient, jobId: string): Promise<IngestionJobDocumentStateFragment[]> {
  const out: IngestionJobDocumentStateFragment[] = [];
  let after: string | null = null;
  for (;;) {
    const {
      ingestionJob,
    }: {
      ingestionJob: {
        documents: { pageInfo: { hasNextPage: boolean; endCursor?: string | null }; edges: { node: IngestionJobDocumentStateFragment }[] };
      };
    } = await client.request(IngestionJobDocument, { id: jobId, stage: 'FAILED', first: PAGE, after });
    out.push(...ingestionJob.documents.edges.map((e) => e.node));
    if (!ingestionJob.documents.pageInfo.hasNextPage || !ingestionJob.documents.pageInfo.endCursor) return out;
    after = ingestionJob.documents.pageInfo.endCursor;
  }
}

/** 0 when every document is INDEXED or UNCHANGED, the partial-failure code when some FAILED or were CANCELLED. */
export function exitCodeOf(job: IngestionJobSummaryFragment): number {
  return job.failed > 0 || job.cancelled > 0 || job.status === 'CANCELLED' ? EXIT.PARTIAL : EXIT.OK;
}

/** The document's name in output: its id in the collection, or the uploaded file's name. */
export function nameOf(doc: IngestionJobDocumentStateFragment): string {
  return doc.externalId ?? doc.filename ?? `#${doc.index}`;
}

/** `reasonCode (code) reason`, with whichever codes are set. */
export function reasonOf(doc: IngestionJobDocumentStateFragment): string {
  const code =
    doc.reasonCode && doc.code && doc.reasonCode !== doc.code
      ? `${doc.reasonCode} (${doc.code})`
      : (doc.reasonCode ?? doc.code ?? 'FAILED');
  return `${code}${doc.reason ? ` ${doc.reason}` : ''}${doc.transient ? ' [transient: kbql jobs retry may succeed]' : ''}`;
}

/** The INDEXED / UNCHANGED / FAILED summary `kbql ingest` prints, for a job. */
export function printJobSummary(outcome: JobOutcome): void {
  const { job, failures } = outcome;
  writeLine(`INDEXED    ${job.indexed}`);
  writeLine(`UNCHANGED  ${job.unchanged}`);
  writeLine(`FAILED     ${job.failed}`);
  for (const doc of failures) writeLine(`  ${nameOf(doc)}: ${reasonOf(doc)}`);
  if (job.cancelled > 0) writeLine(`CANCELLED  ${job.cancelled}`);
  const seconds = job.tookMs / 1000;
  writeLine(
    `job ${job.id} ${job.status}: ${job.total} document${job.total === 1 ? '' : 's'} in ${seconds.toFixed(1)} s ` +
      `(${(job.total / Math.max(seconds, 0.001)).toFixed(1)} docs/s)`,
  );
}

/** The JSON document of a finished job: its counts and failures, flat. */
export function jobJson(outcome: JobOutcome): Record<string, unknown> {
  return { ...outcome.job, failures: outcome.failures.map((d) => ({ ...d, name: nameOf(d) })) };
}

/** `kbql jobs follow <id>`: follows a job to its end and prints its summary. */
export async function runFollowJob(client: KbqlClient, jobId: string, options: FollowOptions & { json: boolean }): Promise<number> {
  const outcome = await followJob(client, jobId, options);
  if (outcome === null) return EXIT.INTERRUPTED;
  if (options.json) writeJson(jobJson(outcome));
  else printJobSummary(outcome);
  return exitCodeOf(outcome.job);
}

/** `kbql jobs list`: newest first, as a table. */
export async function runListJobs(
  client: KbqlClient,
  options: { collection?: string; status?: IngestionJobStatus; first: number; json: boolean },
): Promise<number> {
  const { ingestionJobs } = await client.request(IngestionJobsDocument, {
    collection: options.collection ?? null,
    status: options.status ?? null,
    first: options.first,
    after: null,
  });
  const jobs = ingestionJobs.edges.map((e) => e.node);
  if (options.json) {
    writeJson(jobs);
    return EXIT.OK;
  }
  if (jobs.length === 0) {
    writeLine('No jobs.');
    return EXIT.OK;
  }
  const rows = [
    ['ID', 'STATUS', 'TOTAL', 'INDEXED', 'UNCHANGED', 'FAILED', 'CANCELLED', 'CREATED'],
    ...jobs.map((j) => [j.id, j.status, j.total, j.indexed, j.unchanged, j.failed, j.cancelled, j.createdAt].map(String)),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows) writeLine(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
  if (ingestionJobs.totalCount > jobs.length) writeLine(`(${jobs.length} of ${ingestionJobs.totalCount}; --first shows more)`);
  return EXIT.OK;
}

/** `kbql jobs show <id>`: the job's state and counts, and each FAILED document with its reason. */
export async function runShowJob(client: KbqlClient, jobId: string, options: { json: boolean }): Promise<number> {
  const { ingestionJob: job } = await client.request(IngestionJobDocument, { id: jobId, stage: null, first: 1, after: null });
  const outcome: JobOutcome = { job, failures: await failedDocuments(client, jobId) };
  if (options.json) {
    writeJson(jobJson(outcome));
    return EXIT.OK;
  }
  writeLine(`job         ${job.id}`);
  writeLine(`collection  ${job.collectionId}`);
  writeLine(`status      ${job.status}${job.cancelRequested && job.status !== 'CANCELLED' ? ' (cancel requested)' : ''}`);
  writeLine(`created     ${job.createdAt}${job.finishedAt ? `, finished ${job.finishedAt}` : ''} (${(job.tookMs / 1000).toFixed(1)} s)`);
  writeLine(
    `documents   ${job.total}: ${job.queued} queued, ${job.inProgress} in progress, ${job.indexed} indexed, ` +
      `${job.unchanged} unchanged, ${job.failed} failed, ${job.cancelled} cancelled`,
  );
  for (const doc of outcome.failures) writeLine(`  ${nameOf(doc)}: ${reasonOf(doc)}`);
  return EXIT.OK;
}

/** `kbql jobs cancel <id>`: documents not yet stored become CANCELLED; those stored stay. */
export async function runCancelJob(client: KbqlClient, jobId: string, options: { json: boolean }): Promise<number> {
  const { cancelIngestion: job } = await client.request(CancelIngestionDocument, { jobId });
  if (options.json) writeJson(job);
  else
    writeLine(
      `job ${job.id} ${job.status}${job.cancelRequested && job.status !== 'CANCELLED' ? ' (cancel requested: running documents stop before their next stage)' : ''}`,
    );
  return EXIT.OK;
}

/** `kbql jobs delete <id>`: forgets a finished job (its documents stay); CONFLICT while it runs. */
export async function runDeleteJob(client: KbqlClient, jobId: string, options: { json: boolean }): Promise<number> {
  const { deleteIngestionJob: deleted } = await client.request(DeleteIngestionJobDocument, { jobId });
  if (options.json) writeJson(deleted);
  else
    writeLine(
      `job ${deleted.id} (${deleted.status}) deleted with ${deleted.deletedDocuments} document records; the indexed documents stay`,
    );
  return EXIT.OK;
}

/** `kbql jobs retry <id>`: runs the FAILED documents again and, unless --no-wait, follows the job. */
export async function runRetryJob(
  client: KbqlClient,
  jobId: string,
  options: FollowOptions & { wait: boolean; json: boolean },
): Promise<number> {
  const { retryIngestion: job } = await client.request(RetryIngestionDocument, { jobId });
  if (!options.wait) {
    if (options.json) writeJson(job);
    else
      writeLine(`job ${job.id} ${job.status}: retrying ${job.queued} document${job.queued === 1 ? '' : 's'} (kbql jobs follow ${job.id})`);
    return EXIT.OK;
  }
  return runFollowJob(client, job.id, options);
}
