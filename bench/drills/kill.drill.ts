import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  Checks,
  CREATE_COLLECTION,
  failureOf,
  gql,
  INGEST,
  listDocuments,
  PRODUCTION_ENV,
  startKbqlChild,
  syntheticDocument,
  token,
  type DocumentSummary,
  type DrillReport,
  type GqlResult,
} from './lib';

export interface KillDrillOptions {
  /** Documents to ingest. @default 1200 */
  documents?: number;
  /** Documents per ingestDocuments call. @default 25 */
  batch?: number;
  /** Calls in flight at once. @default 3 */
  concurrency?: number;
  /** Kills, each after this many more acknowledged batches (the rerun starts from the first document). @default [6, 14, 22] */
  killAfterBatches?: number[];
}

/**
 * Drill 4 — kill -9 during ingestion: kbql (compiled main.js, own process, embedded store) ingests documents over
 * HTTP, several calls in flight, and is SIGKILLed mid-way, several times on the same data directory. After each
 * restart no document is partial (chunk rows = chunkCount, content hash = the input's), every acknowledged document
 * is there, and a re-ingest of the whole input (unchanged ones skipped by content hash) leaves exactly what a
 * fresh ingest leaves.
 */
export async function killDrill(options: KillDrillOptions = {}): Promise<DrillReport> {
  const total = options.documents ?? 1200;
  const batchSize = options.batch ?? 25;
  const concurrency = options.concurrency ?? 3;
  const kills = options.killAfterBatches ?? [6, 14, 22];
  const checks = new Checks();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-drill-kill-'));
  const auth = token('WRITER');
  const input = Array.from({ length: total }, (_, i) => syntheticDocument(i, 0, 2 + (i % 4)));
  const batches = Array.from({ length: Math.ceil(total / batchSize) }, (_, b) => input.slice(b * batchSize, (b + 1) * batchSize));
  const rows: (string | number)[][] = [];
  let kbql = await startKbqlChild({ ...PRODUCTION_ENV, KBQL_DATA_DIR: dataDir });
  try {
    checks.that(failureOf(await gql(kbql.url, CREATE_COLLECTION, { name: 'crash' }, { token: auth })) === null, 'create collection');
    let reference: Map<string, DocumentSummary> | null = null;

    for (const [round, killAfter] of kills.entries()) {
      // Ingest from the first batch, `concurrency` calls at a time; SIGKILL once `killAfter` calls were acknowledged.
      const acknowledged = new Set<string>();
      let acked = 0;
      let next = 0;
      let killed = false;
      const inFlightAtKill: number[] = [];
      let inFlight = 0;
      const worker = async () => {
        while (!killed && next < batches.length) {
          const batch = batches[next++]!;
          inFlight++;
          const result: GqlResult = await gql(kbql.url, INGEST, { c: 'crash', docs: batch }, { token: auth, timeoutMs: 60_000 });
          inFlight--;
          if (failureOf(result) === null && result.body!.data.ingestDocuments.failed === 0) {
            for (const d of batch) acknowledged.add(d.id);
            acked++;
            if (acked >= killAfter && !killed) {
              killed = true;
              inFlightAtKill.push(inFlight);
              kbql.child.kill('SIGKILL');
            }
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const exit = await kbql.exited;
      checks.that(exit.signal === 'SIGKILL', `round ${round + 1}: killed by SIGKILL (exit ${exit.code} ${exit.signal})`);

      kbql = await startKbqlChild({ ...PRODUCTION_ENV, KBQL_DATA_DIR: dataDir });
      if (!reference) {
        // A fresh ingest of the same input in another collection of the same server: what a complete ingest leaves.
        checks.that(failureOf(await gql(kbql.url, CREATE_COLLECTION, { name: 'fresh' }, { token: auth })) === null, 'create fresh');
        for (const batch of batches) {
          const r = await gql(kbql.url, INGEST, { c: 'fresh', docs: batch }, { token: auth, timeoutMs: 60_000 });
          checks.that(failureOf(r) === null && r.body!.data.ingestDocuments.indexed === batch.length, `fresh ingest: ${failureOf(r)}`);
        }
        reference = new Map((await listDocuments(kbql.url, auth, 'fresh')).map((d) => [d.externalId, d]));
        checks.that(reference.size === total, `fresh ingest has ${reference.size} of ${total} documents`);
      }
      const visible = await listDocuments(kbql.url, auth, 'crash');
      const partial = visible.filter(
        (d) =>
          d.storedChunks !== d.chunkCount ||
          reference!.get(d.externalId)?.contentHash !== d.contentHash ||
          reference!.get(d.externalId)?.chunkCount !== d.chunkCount,
      );
      const missingAcked = [...acknowledged].filter((id) => !visible.some((d) => d.externalId === id));
      checks.that(
        partial.length === 0,
        `round ${round + 1}: ${partial.length} partial or foreign documents (${partial
          .slice(0, 3)
          .map((d) => d.externalId)
          .join(', ')})`,
      );
      checks.that(missingAcked.length === 0, `round ${round + 1}: ${missingAcked.length} acknowledged documents missing`);
      checks.that(visible.length < total, `round ${round + 1}: the kill came before the end (${visible.length} of ${total})`);
      rows.push([
        `kill ${round + 1}`,
        `after ${acked} acknowledged calls, ${inFlightAtKill[0] ?? 0} in flight`,
        acknowledged.size,
        visible.length,
        partial.length,
        missingAcked.length,
      ]);
    }

    // Re-ingest everything: unchanged documents are skipped by content hash, the rest written; then compare.
    let indexed = 0;
    let unchanged = 0;
    let failed = 0;
    for (const batch of batches) {
      const r = await gql(kbql.url, INGEST, { c: 'crash', docs: batch }, { token: auth, timeoutMs: 60_000 });
      checks.that(failureOf(r) === null, `re-ingest: ${failureOf(r)}`);
      const payload = r.body?.data?.ingestDocuments ?? { indexed: 0, unchanged: 0, failed: batch.length };
      indexed += payload.indexed;
      unchanged += payload.unchanged;
      failed += payload.failed;
    }
    const final = await listDocuments(kbql.url, auth, 'crash');
    const key = (d: DocumentSummary) => `${d.externalId} ${d.contentHash} ${d.chunkCount} ${d.storedChunks}`;
    const same = JSON.stringify(final.map(key).sort()) === JSON.stringify([...reference!.values()].map(key).sort());
    checks.that(failed === 0 && indexed + unchanged === total, `re-ingest: ${indexed} indexed, ${unchanged} unchanged, ${failed} failed`);
    checks.that(unchanged > 0, 're-ingest skipped the documents that survived');
    checks.that(same, 'after the re-ingest the collection equals a fresh ingest (ids, hashes, chunk counts, stored chunks)');
    rows.push(['re-ingest all', `${indexed} indexed, ${unchanged} unchanged, ${failed} failed`, total, final.length, 0, 0]);
    rows.push(['equals a fresh ingest', same ? 'yes' : 'NO', '', '', '', '']);
    return {
      name: 'kill',
      title: `Drill 4 — kill -9 during ingestion: ${total} documents in calls of ${batchSize}, ${concurrency} in flight, kbql SIGKILLed ${kills.length} times on one data directory (embedded store), restarted each time`,
      header: ['step', 'when', 'acknowledged docs', 'visible docs', 'partial docs', 'acknowledged but missing'],
      rows,
      failures: checks.failures,
    };
  } finally {
    await kbql.kill();
    await rm(dataDir, { recursive: true, force: true });
  }
}
