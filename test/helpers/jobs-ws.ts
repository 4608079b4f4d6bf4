import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export const PROGRESS = `subscription($id: ID!) { ingestionProgress(jobId: $id) {
  kind jobId
  documents { index externalId filename stage code reasonCode reason transient chunkCount attempt runs }
  job { id status total indexed unchanged failed cancelled queued inProgress }
} }`;

export interface ProgressEvent {
  kind: 'STAGE' | 'SUMMARY';
  jobId: string;
  document: {
    index: number;
    externalId: string | null;
    filename: string | null;
    stage: string;
    code: string | null;
    reasonCode: string | null;
    reason: string | null;
    transient: boolean | null;
    chunkCount: number | null;
    attempt: number;
    runs: number;
  } | null;
  job: {
    id: string;
    status: string;
    total: number;
    indexed: number;
    unchanged: number;
    failed: number;
    cancelled: number;
    queued: number;
    inProgress: number;
  } | null;
}

/**
 * Subscribes to `ingestionProgress` over graphql-ws at `<baseUrl>/graphql` and resolves with every event once the
 * server completes the stream (after the SUMMARY); rejects on an error or after `timeoutMs`.
 */
export function collectProgress(
  baseUrl: string,
  jobId: string,
  token?: string,
  timeoutMs = 20_000,
  /** Called once per message received (a STAGE message may carry many documents). */
  onMessage?: (documents: number) => void,
): Promise<ProgressEvent[]> {
  const client = createClient({
    url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
  const events: ProgressEvent[] = [];
  return new Promise<ProgressEvent[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`ingestionProgress did not complete within ${timeoutMs} ms (${events.length} events)`));
    }, timeoutMs);
    const unsubscribe = client.subscribe<{
      ingestionProgress: Omit<ProgressEvent, 'document'> & { documents: NonNullable<ProgressEvent['document']>[] };
    }>(
      { query: PROGRESS, variables: { id: jobId } },
      {
        next: (result) => {
          if (result.errors?.length) {
            clearTimeout(timer);
            reject(new Error(`subscription errors: ${JSON.stringify(result.errors)}`));
            return;
          }
          if (!result.data) return;
          // One event per document, as the stream sent them before coalescing (tests reason per document).
          const { documents, ...item } = result.data.ingestionProgress;
          onMessage?.(documents.length);
          if (item.kind === 'SUMMARY') events.push({ ...item, document: null });
          else for (const document of documents) events.push({ ...item, document });
        },
        error: (error) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete: () => {
          clearTimeout(timer);
          resolve(events);
        },
      },
    );
  }).finally(() => client.dispose());
}

const RANK = ['QUEUED', 'PARSING', 'CHUNKING', 'EMBEDDING', 'STORING'];
const TERMINAL = new Set(['INDEXED', 'UNCHANGED', 'FAILED', 'CANCELLED']);

/** Per document, its stages in the order received; throws unless each is in pipeline order and ends in a final stage. */
export function stagesByDocument(events: readonly ProgressEvent[]): Map<number, string[]> {
  const byDoc = new Map<number, string[]>();
  for (const event of events) {
    if (event.kind !== 'STAGE' || !event.document) continue;
    const list = byDoc.get(event.document.index) ?? [];
    list.push(event.document.stage);
    byDoc.set(event.document.index, list);
  }
  for (const [index, stages] of byDoc) {
    const ranks = stages.map((s) => (TERMINAL.has(s) ? 99 : RANK.indexOf(s)));
    for (let i = 1; i < ranks.length; i++) {
      if (ranks[i]! <= ranks[i - 1]!) throw new Error(`document ${index}: stages out of order: ${stages.join(' → ')}`);
    }
    if (!TERMINAL.has(stages.at(-1)!)) throw new Error(`document ${index}: no final stage: ${stages.join(' → ')}`);
  }
  return byDoc;
}
