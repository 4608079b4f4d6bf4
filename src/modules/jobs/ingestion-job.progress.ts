import { isTerminal, JOB_STAGES, type JobDocumentState, type JobEvent } from '../../ports/job-store.port';
import { describeJob, type JobStatePorts, type JobView } from './ingestion-job.state';

/** How long a progress stream waits for an event before it re-reads the job from the store. */
const PROGRESS_RECHECK_MS = 5_000;
/** Least time between two STAGE items of one progress stream (what moved meanwhile is folded into the next). */
export const PROGRESS_WINDOW_MS = 250;
/** Most documents in one STAGE item (a bigger backlog goes out over the next windows). */
export const PROGRESS_MAX_DOCUMENTS = 1_000;

/** One item of `ingestionProgress`: a document's stage transition, or the job's final summary (last item). */
export interface ProgressItem {
  kind: 'STAGE' | 'SUMMARY';
  jobId: string;
  /** The first of `documents` (kept for clients of the one-document events). */
  document: JobDocumentState | null;
  /** STAGE: every document that moved since the previous item, in index order, each in its latest state. */
  documents: JobDocumentState[];
  job: JobView | null;
}

/** Orders a document's states: a later attempt, then a later stage (a terminal one last). */
const rankOf = (doc: Pick<JobDocumentState, 'stage' | 'attempt'>): number =>
  doc.attempt * 100 + (isTerminal(doc.stage) ? 99 : JOB_STAGES.indexOf(doc.stage));

/** The progress stream of a job, subscribed to its events (see `IngestionJobService.progress`). */
export async function openProgressStream(ports: JobStatePorts, jobId: string): Promise<AsyncIterableIterator<ProgressItem>> {
  const stream = new ProgressStream(ports, jobId);
  await stream.subscribe();
  return stream;
}

/**
 * Events and store reads are folded into `pending` (the latest unsent state per document); `next()` hands out what is
 * ready, reads the store when it must, cuts a batch when its window opens, and otherwise waits.
 */
class ProgressStream implements AsyncIterableIterator<ProgressItem> {
  /** Rank of the state last sent, per document index. */
  private readonly sent = new Map<number, number>();
  /** The latest state not sent yet, per document index. */
  private readonly pending = new Map<number, JobDocumentState>();
  /** Items built and not taken yet. */
  private readonly ready: ProgressItem[] = [];
  private unsubscribe: () => void = () => {};
  /** Cuts a wait short (set while waiting with nothing pending). */
  private wake: (() => void) | null = null;
  private ended = false;
  private snapshotTaken = false;
  /** A quiet wait timed out: re-read the store. */
  private recheck = false;
  /** A SUMMARY event came; the store is read until it shows the end. */
  private summaryRequested = false;
  private summaryItem: ProgressItem | null = null;
  /** The summary is queued (or the job is gone): end once `ready` is empty. */
  private finished = false;
  private nextBatchAt = 0;

  constructor(
    private readonly ports: JobStatePorts,
    private readonly jobId: string,
  ) {}

  async subscribe(): Promise<void> {
    this.unsubscribe = await this.ports.events.subscribe(this.jobId, (event) => this.onEvent(event));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ProgressItem> {
    return this;
  }

  async next(): Promise<IteratorResult<ProgressItem>> {
    for (;;) {
      // Ended by the consumer, or after the summary.
      if (this.ended) return { value: undefined, done: true };
      // What is built goes first.
      if (this.ready.length > 0) return { value: this.ready.shift()!, done: false };
      if (this.finished) {
        this.end();
        return { value: undefined, done: true };
      }
      // The snapshot first; again after a quiet wait, or when a SUMMARY event came before the store shows the end.
      if (!this.snapshotTaken || this.recheck || (this.summaryRequested && !this.summaryItem)) {
        await this.readStore();
        continue;
      }
      // The documents that moved, once the window opens.
      if (this.pending.size > 0 && Date.now() >= this.nextBatchAt) {
        this.takeBatch();
        continue;
      }
      // The summary last, once every document's latest state went out.
      if (this.pending.size === 0 && this.summaryItem) {
        this.ready.push(this.summaryItem);
        this.finished = true;
        continue;
      }
      await this.waitForWork();
    }
  }

  async return(): Promise<IteratorResult<ProgressItem>> {
    this.end();
    return { value: undefined, done: true };
  }

  private onEvent(event: JobEvent): void {
    if (event.kind === 'STAGE') this.fold(event.document);
    else this.summaryRequested = true;
    this.wake?.();
  }

  /** Keeps a document's state when it is newer than what was sent and what waits. */
  private fold(doc: JobDocumentState): void {
    const rank = rankOf(doc);
    if ((this.sent.get(doc.index) ?? -1) >= rank) return;
    const waiting = this.pending.get(doc.index);
    if (waiting && rankOf(waiting) >= rank) return;
    this.pending.set(doc.index, doc);
  }

  /** Re-reads the job from the store (the truth: events are best effort); prepares the summary once it finished. */
  private async readStore(): Promise<void> {
    this.snapshotTaken = true;
    this.recheck = false;
    this.summaryRequested = false; // a SUMMARY event published before the store shows the end asks again
    const job = await this.ports.store.getJob(this.jobId);
    for (const doc of await this.ports.store.getDocuments(this.jobId)) this.fold(doc);
    if (!job) this.finished = true;
    else if (job.finishedAt) {
      this.summaryItem = {
        kind: 'SUMMARY',
        jobId: this.jobId,
        document: null,
        documents: [],
        job: await describeJob(this.ports.store, job),
      };
    }
  }

  /** Moves up to PROGRESS_MAX_DOCUMENTS pending states into one STAGE item, in index order; opens the next window. */
  private takeBatch(): void {
    const documents: JobDocumentState[] = [];
    for (const [index, doc] of this.pending) {
      if (documents.length >= PROGRESS_MAX_DOCUMENTS) break;
      this.pending.delete(index);
      this.sent.set(index, rankOf(doc));
      documents.push(doc);
    }
    documents.sort((a, b) => a.index - b.index);
    this.ready.push({ kind: 'STAGE', jobId: this.jobId, document: documents[0] ?? null, documents, job: null });
    this.nextBatchAt = Date.now() + PROGRESS_WINDOW_MS;
  }

  /** Waits for the next batch's turn, or (nothing waiting) for an event, asking for a store re-read when quiet. */
  private async waitForWork(): Promise<void> {
    const waitMs = this.pending.size > 0 ? this.nextBatchAt - Date.now() : PROGRESS_RECHECK_MS;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.pending.size === 0) this.recheck = true;
        resolve();
      }, waitMs);
      if (this.pending.size === 0) this.wake = resolve;
      if (this.ended || (this.pending.size === 0 && this.summaryRequested)) resolve();
    });
    clearTimeout(timer);
    this.wake = null;
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.unsubscribe();
    this.wake?.();
  }
}
