import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CreateCollectionDocument,
  IngestDocumentsDocument,
  StartIngestionDocument,
  type DocumentInput,
  type IngestStatus,
} from '../generated/graphql';
import { CliError, EXIT, type KbqlClient } from './client';
import { CONTENT_TYPES, UPLOAD_EXTENSIONS, collectFiles, type SourceFile } from './files';
import { exitCodeOf, followJob, jobJson, nameOf, reasonOf } from './jobs';
import { writeJson, writeLine } from './output';
import { createBar } from './progress';

export interface IngestOptions {
  /** Collection name or id. */
  collection: string;
  /** Create the collection first when it does not exist. */
  create: boolean;
  /** Most documents per ingestDocuments request. */
  batchSize: number;
  /** Most content bytes per request (a larger single file still goes, alone). */
  batchBytes: number;
  /** Ids are paths relative to this directory. */
  base: string;
  /** Prepended to the id to form each document's `source` (e.g. a repository URL); default: the id itself. */
  sourcePrefix?: string;
  /** Progress bar on stderr: true = always, false = never, undefined = when stderr is a terminal. */
  progress?: boolean;
  /**
   * Ingest as a background job (startIngestion): text files as documents, .pdf/.docx (and any file named on the
   * command line with another extension) uploaded through POST /v1/uploads for the server to extract.
   */
  async?: boolean;
  /** With `async`: follow the job to its end over WebSocket (true) or print its id and return at once (false). */
  wait?: boolean;
  json: boolean;
}

interface FileResult {
  id: string;
  path: string;
  status: IngestStatus;
  code: string | null;
  reason: string | null;
  documentId: string | null;
  chunkCount: number | null;
}

/** `kbql ingest`: reads the files, sends them in batches, shows progress, prints the summary. Returns the exit code. */
export async function runIngest(client: KbqlClient, args: readonly string[], options: IngestOptions): Promise<number> {
  const { files, skipped, unmatched } = await collectFiles(args, options.base, { uploads: options.async ?? false });
  if (unmatched.length > 0) throw new CliError(`nothing found at ${unmatched.map((a) => `"${a}"`).join(', ')}`, EXIT.USAGE);
  if (files.length === 0) {
    const extensions = [...Object.keys(CONTENT_TYPES), ...(options.async ? UPLOAD_EXTENSIONS : [])];
    throw new CliError(`no ${extensions.join(', ')} files in ${args.join(', ')}`, EXIT.USAGE);
  }
  if (options.create) await createIfMissing(client, options.collection);
  if (options.async) return runIngestJob(client, files, skipped, options);

  const started = performance.now();
  const results: FileResult[] = [];
  const counts: Record<IngestStatus, number> = { INDEXED: 0, UNCHANGED: 0, FAILED: 0 };
  let collectionId: string | null = null;
  const bar = createBar(options.progress ?? Boolean(process.stderr.isTTY));
  const rate = () => (results.length / Math.max((performance.now() - started) / 1000, 0.001)).toFixed(1);
  const record = (result: FileResult) => {
    results.push(result);
    counts[result.status]++;
    bar?.update(results.length, { rate: rate(), indexed: counts.INDEXED, unchanged: counts.UNCHANGED, failed: counts.FAILED });
  };

  bar?.start(files.length, 0, { rate: '0.0', indexed: 0, unchanged: 0, failed: 0 });
  try {
    for await (const batch of batches(files, options)) {
      for (const failure of batch.unreadable) record(failure);
      if (batch.files.length === 0) continue;
      let payload;
      try {
        payload = (await client.request(IngestDocumentsDocument, { collection: options.collection, documents: batch.documents }))
          .ingestDocuments;
      } catch (error) {
        // A request too large for the server fails its own documents, not the run.
        if (!(error instanceof CliError && error.code === 'PAYLOAD_TOO_LARGE')) throw error;
        for (const file of batch.files) record(failed(file, 'PAYLOAD_TOO_LARGE', error.message));
        continue;
      }
      collectionId = payload.collectionId;
      for (const r of payload.results) {
        const file = batch.files[r.index]!;
        record({
          id: file.id,
          path: file.path,
          status: r.status,
          code: r.code,
          reason: r.reason,
          documentId: r.documentId,
          chunkCount: r.chunkCount,
        });
      }
    }
  } catch (error) {
    bar?.stop();
    if (error instanceof CliError && error.code === 'NOT_FOUND' && !options.create) {
      throw new CliError(`${error.message} (kbql ingest --create creates it)`, error.exitCode, error.code);
    }
    throw error;
  }
  bar?.stop();

  const tookMs = performance.now() - started;
  if (options.json) {
    writeJson({
      collection: options.collection,
      collectionId,
      files: files.length,
      indexed: counts.INDEXED,
      unchanged: counts.UNCHANGED,
      failed: counts.FAILED,
      skipped,
      tookMs: Math.round(tookMs),
      results,
    });
  } else {
    writeLine(`INDEXED    ${counts.INDEXED}`);
    writeLine(`UNCHANGED  ${counts.UNCHANGED}`);
    writeLine(`FAILED     ${counts.FAILED}`);
    for (const r of results) if (r.status === 'FAILED') writeLine(`  ${r.id}: ${r.code ?? 'FAILED'} ${r.reason ?? ''}`.trimEnd());
    const seconds = tookMs / 1000;
    writeLine(
      `${files.length} document${files.length === 1 ? '' : 's'} → collection "${options.collection}" in ${seconds.toFixed(1)} s ` +
        `(${(files.length / Math.max(seconds, 0.001)).toFixed(1)} docs/s)` +
        (skipped.length > 0 ? `; ${skipped.length} other file${skipped.length === 1 ? '' : 's'} skipped` : ''),
    );
    const uploadable = skipped.filter((file) => UPLOAD_EXTENSIONS.has(path.extname(file).toLowerCase())).length;
    if (uploadable > 0) writeLine(`(${uploadable} of them .pdf/.docx: kbql ingest --async uploads them for the server to extract)`);
  }
  return counts.FAILED > 0 ? EXIT.PARTIAL : EXIT.OK;
}

/** Files the CLI could not hand over (unreadable, refused upload), reported next to the job's own FAILED documents. */
interface LocalFailure {
  id: string;
  code: string;
  reason: string;
}

/**
 * `kbql ingest --async`: one startIngestion job with the text files as documents and the other files as uploads, then
 * (with `wait`) its progress over WebSocket and the summary. An upload's document id is its file name (the server
 * keeps no directory part), a text file's is its relative path as in the synchronous path.
 */
async function runIngestJob(
  client: KbqlClient,
  files: readonly SourceFile[],
  skipped: readonly string[],
  options: IngestOptions,
): Promise<number> {
  const started = performance.now();
  const local: LocalFailure[] = [];
  const documents: DocumentInput[] = [];
  const uploads: string[] = [];
  for (const file of files) {
    let data: Buffer;
    try {
      data = await readFile(file.path);
    } catch (error) {
      local.push({ id: file.id, code: 'READ_FAILED', reason: error instanceof Error ? error.message : String(error) });
      continue;
    }
    if (file.contentType !== null) {
      documents.push(documentOf(file, data.toString('utf8'), options));
      continue;
    }
    try {
      uploads.push((await client.upload(path.basename(file.path), data)).id);
    } catch (error) {
      // A file the server refuses (too large, bad name) fails alone; a refused caller or a dead server stops the run.
      if (!(error instanceof CliError && (error.code === 'PAYLOAD_TOO_LARGE' || error.code === 'BAD_USER_INPUT'))) throw error;
      local.push({ id: file.id, code: error.code, reason: error.message });
    }
  }
  if (documents.length === 0 && uploads.length === 0) {
    return finishJob(null, { collection: options.collection, files: files.length, skipped, local, started, json: options.json });
  }

  let job;
  try {
    job = (await client.request(StartIngestionDocument, { collection: options.collection, documents, uploads })).startIngestion;
  } catch (error) {
    if (error instanceof CliError && error.code === 'NOT_FOUND' && !options.create) {
      throw new CliError(`${error.message} (kbql ingest --create creates it)`, error.exitCode, error.code);
    }
    throw error;
  }
  // A Ctrl-C that arrives right after the id is printed (before following starts) stops following too, instead of
  // Node's default exit by signal.
  const early = new AbortController();
  const onEarlyInterrupt = () => early.abort();
  if (options.wait !== false) process.once('SIGINT', onEarlyInterrupt);
  // On stderr, so that stdout keeps only the summary (or the JSON) and the id is on screen before any Ctrl-C.
  process.stderr.write(`kbql: job ${job.id} started: ${job.total} document${job.total === 1 ? '' : 's'} (${uploads.length} uploaded)\n`);
  if (options.wait === false) {
    if (options.json) writeJson({ collection: options.collection, jobId: job.id, job, files: files.length, skipped, localFailures: local });
    else {
      writeLine(`job ${job.id} ${job.status}: ${job.total} document${job.total === 1 ? '' : 's'} → collection "${options.collection}"`);
      for (const f of local) writeLine(`  ${f.id}: ${f.code} ${f.reason}`);
      writeLine(`follow it: kbql jobs follow ${job.id}`);
    }
    return local.length > 0 ? EXIT.PARTIAL : EXIT.OK;
  }
  let outcome: Awaited<ReturnType<typeof followJob>>;
  try {
    outcome = await followJob(client, job.id, { progress: options.progress, interrupted: early.signal });
  } finally {
    process.removeListener('SIGINT', onEarlyInterrupt);
  }
  if (outcome === null) return EXIT.INTERRUPTED;
  return finishJob(outcome, { collection: options.collection, files: files.length, skipped, local, started, json: options.json });
}

/** Prints the summary of an --async ingest (job counts plus the CLI's own failures) and returns the exit code. */
function finishJob(
  outcome: Awaited<ReturnType<typeof followJob>>,
  run: { collection: string; files: number; skipped: readonly string[]; local: readonly LocalFailure[]; started: number; json: boolean },
): number {
  const job = outcome?.job ?? null;
  const tookMs = performance.now() - run.started;
  const failed = (job?.failed ?? 0) + run.local.length;
  if (run.json) {
    writeJson({
      collection: run.collection,
      collectionId: job?.collectionId ?? null,
      jobId: job?.id ?? null,
      status: job?.status ?? null,
      files: run.files,
      indexed: job?.indexed ?? 0,
      unchanged: job?.unchanged ?? 0,
      failed,
      cancelled: job?.cancelled ?? 0,
      skipped: run.skipped,
      tookMs: Math.round(tookMs),
      localFailures: run.local,
      job: outcome ? jobJson(outcome) : null,
    });
  } else {
    writeLine(`INDEXED    ${job?.indexed ?? 0}`);
    writeLine(`UNCHANGED  ${job?.unchanged ?? 0}`);
    writeLine(`FAILED     ${failed}`);
    for (const f of run.local) writeLine(`  ${f.id}: ${f.code} ${f.reason}`);
    for (const doc of outcome?.failures ?? []) writeLine(`  ${nameOf(doc)}: ${reasonOf(doc)}`);
    if (job && job.cancelled > 0) writeLine(`CANCELLED  ${job.cancelled}`);
    const seconds = tookMs / 1000;
    writeLine(
      `${run.files} document${run.files === 1 ? '' : 's'} → collection "${run.collection}" in ${seconds.toFixed(1)} s ` +
        `(${(run.files / Math.max(seconds, 0.001)).toFixed(1)} docs/s)` +
        (job ? `; job ${job.id} ${job.status}` : '; no job started') +
        (run.skipped.length > 0 ? `; ${run.skipped.length} other file${run.skipped.length === 1 ? '' : 's'} skipped` : ''),
    );
  }
  if (run.local.length > 0) return EXIT.PARTIAL;
  return job ? exitCodeOf(job) : EXIT.PARTIAL;
}

function documentOf(file: SourceFile, content: string, options: IngestOptions): DocumentInput {
  return {
    id: file.id,
    content,
    contentType: file.contentType ?? 'TEXT',
    source: options.sourcePrefix ? `${options.sourcePrefix}${file.id}` : file.id,
    metadata: { path: file.id },
  };
}

async function createIfMissing(client: KbqlClient, name: string): Promise<void> {
  try {
    await client.request(CreateCollectionDocument, { input: { name } });
  } catch (error) {
    if (!(error instanceof CliError && error.code === 'CONFLICT')) throw error;
  }
}

interface Batch {
  files: SourceFile[];
  documents: DocumentInput[];
  /** Files that could not be read: FAILED without a request. */
  unreadable: FileResult[];
}

/** Reads files lazily, grouping them by count and by content bytes. */
async function* batches(files: readonly SourceFile[], options: IngestOptions): AsyncGenerator<Batch> {
  let batch: Batch = { files: [], documents: [], unreadable: [] };
  let bytes = 0;
  for (const file of files) {
    let content: string;
    try {
      content = await readFile(file.path, 'utf8');
    } catch (error) {
      batch.unreadable.push(failed(file, 'READ_FAILED', error instanceof Error ? error.message : String(error)));
      continue;
    }
    const size = Buffer.byteLength(content, 'utf8');
    if (batch.files.length > 0 && (batch.files.length >= options.batchSize || bytes + size > options.batchBytes)) {
      yield batch;
      batch = { files: [], documents: [], unreadable: [] };
      bytes = 0;
    }
    batch.files.push(file);
    batch.documents.push(documentOf(file, content, options));
    bytes += size;
  }
  if (batch.files.length > 0 || batch.unreadable.length > 0) yield batch;
}

function failed(file: SourceFile, code: string, reason: string): FileResult {
  return { id: file.id, path: file.path, status: 'FAILED', code, reason, documentId: null, chunkCount: null };
}
