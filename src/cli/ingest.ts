import { readFile } from 'node:fs/promises';
import { SingleBar } from 'cli-progress';
import { CreateCollectionDocument, IngestDocumentsDocument, type DocumentInput, type IngestStatus } from '../generated/graphql';
import { CliError, EXIT, type KbqlClient } from './client';
import { CONTENT_TYPES, collectFiles, type SourceFile } from './files';
import { writeJson, writeLine } from './output';

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
  const { files, skipped, unmatched } = await collectFiles(args, options.base);
  if (unmatched.length > 0) throw new CliError(`nothing found at ${unmatched.map((a) => `"${a}"`).join(', ')}`, EXIT.USAGE);
  if (files.length === 0) {
    throw new CliError(`no ${Object.keys(CONTENT_TYPES).join(', ')} files in ${args.join(', ')}`, EXIT.USAGE);
  }
  if (options.create) await createIfMissing(client, options.collection);

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
        payload = (await client.request(IngestDocumentsDocument, { collection: options.collection, documents: batch.documents })).ingestDocuments;
      } catch (error) {
        // A request too large for the server fails its own documents, not the run.
        if (!(error instanceof CliError && error.code === 'PAYLOAD_TOO_LARGE')) throw error;
        for (const file of batch.files) record(failed(file, 'PAYLOAD_TOO_LARGE', error.message));
        continue;
      }
      collectionId = payload.collectionId;
      for (const r of payload.results) {
        const file = batch.files[r.index]!;
        record({ id: file.id, path: file.path, status: r.status, code: r.code, reason: r.reason, documentId: r.documentId, chunkCount: r.chunkCount });
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
    writeJson({ collection: options.collection, collectionId, files: files.length, indexed: counts.INDEXED, unchanged: counts.UNCHANGED, failed: counts.FAILED, skipped, tookMs: Math.round(tookMs), results });
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
  }
  return counts.FAILED > 0 ? EXIT.PARTIAL : EXIT.OK;
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
    batch.documents.push({
      id: file.id,
      content,
      contentType: file.contentType,
      source: options.sourcePrefix ? `${options.sourcePrefix}${file.id}` : file.id,
      metadata: { path: file.id },
    });
    bytes += size;
  }
  if (batch.files.length > 0 || batch.unreadable.length > 0) yield batch;
}

function failed(file: SourceFile, code: string, reason: string): FileResult {
  return { id: file.id, path: file.path, status: 'FAILED', code, reason, documentId: null, chunkCount: null };
}

function createBar(show: boolean): SingleBar | null {
  if (!show) return null;
  return new SingleBar({
    stream: process.stderr,
    format: 'ingest [{bar}] {value}/{total} docs | {rate} docs/s | {indexed} indexed, {unchanged} unchanged, {failed} failed',
    barsize: 30,
    hideCursor: true,
    noTTYOutput: !process.stderr.isTTY,
    notTTYSchedule: 1000,
  });
}
