import type { SearchMode } from './knowledge-store.port';

/**
 * What a service may say about its own work to tracing and metrics: counts, enums and the collection name — never
 * document text, query text, variables or tokens (the type leaves no room for them).
 */
export interface TelemetryFacts {
  /** Collection name (or the id the caller used). */
  collection?: string;
  mode?: SearchMode;
  topK?: number;
  hitCount?: number;
  /** Documents in an ingestion request. */
  documentCount?: number;
  indexed?: number;
  unchanged?: number;
  failed?: number;
  /** Chunks written by an ingestion request (or embedded by a re-embedding batch). */
  chunkCount?: number;
  /** Fingerprint of the embedder a re-embedding builds (or switched to). */
  embedder?: string;
  /** Chunks a re-embedding still has to embed. */
  remaining?: number;
}

/** The domain operations services report; the adapters' own spans (`kbql.store.*`, `kbql.embed`, …) come from wrappers. */
export type TracedOperation = 'kbql.retrieve' | 'kbql.ingest' | 'kbql.reembed' | 'kbql.reembed.batch' | 'kbql.reembed.switch';

/**
 * The observability port of the domain. Implemented in `src/observability/telemetry.ts` (a span per operation plus
 * the domain metrics); services that get none use {@link noTelemetry}.
 */
export interface Telemetry {
  /**
   * Runs `work` as `operation` — a span that is the active parent of everything `work` starts — with `facts` as
   * attributes; `note` adds facts as they become known (e.g. the hit count).
   */
  run<T>(operation: TracedOperation, facts: TelemetryFacts, work: (note: (facts: TelemetryFacts) => void) => Promise<T>): Promise<T>;
}

export const noTelemetry: Telemetry = { run: (_operation, _facts, work) => work(() => undefined) };
