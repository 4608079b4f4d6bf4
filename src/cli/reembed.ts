import {
  CollectionEmbeddingDocument,
  IngestionJobDocument,
  ReembedCollectionDocument,
  RollbackEmbeddingDocument,
} from '../generated/graphql';
import { CliError, EXIT, type KbqlClient } from './client';
import { writeJson, writeLine } from './output';

/** How often `--wait` reads the collection's progress, in ms. */
const POLL_MS = 500;

/**
 * `kbql collections reembed <collection> --embedder <name>`: starts the re-embedding job and prints its id; with
 * `wait`, follows the collection's progress until the switch (exit 0) or the job's failure or cancel (exit 1).
 */
export async function runReembedCollection(
  client: KbqlClient,
  collection: string,
  options: { embedder: string; wait: boolean; json: boolean },
): Promise<number> {
  const { reembedCollection: job } = await client.request(ReembedCollectionDocument, { collection, embedder: options.embedder });
  if (!options.wait) {
    if (options.json) writeJson(job);
    else writeLine(`re-embedding "${collection}" with ${options.embedder}: job ${job.id} (kbql jobs show ${job.id})`);
    return EXIT.OK;
  }
  for (;;) {
    const { ingestionJob } = await client.request(IngestionJobDocument, { id: job.id, stage: null, first: 1, after: null });
    const { collection: c } = await client.request(CollectionEmbeddingDocument, { name: collection });
    const progress = c?.embedding.progress;
    if (ingestionJob.finishedAt) {
      if (options.json) writeJson({ job: ingestionJob, embedding: c?.embedding ?? null });
      else if (ingestionJob.status === 'COMPLETED')
        writeLine(`switched "${collection}" to ${c?.embedding.active.fingerprint}; rollback until ${String(c?.embedding.rollbackUntil)}`);
      if (ingestionJob.status === 'COMPLETED') return EXIT.OK;
      throw new CliError(`re-embedding job ${job.id} ended ${ingestionJob.status}`);
    }
    if (progress && !options.json) writeLine(`${progress.embedded}/${progress.total} chunks embedded`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** `kbql collections rollback <collection>`: the previous embedder again, within the grace period. */
export async function runRollbackEmbedding(client: KbqlClient, collection: string, options: { json: boolean }): Promise<number> {
  const { rollbackEmbedding: c } = await client.request(RollbackEmbeddingDocument, { collection });
  if (options.json) writeJson(c);
  else writeLine(`rolled "${c.name}" back to ${c.embedding.active.fingerprint}`);
  return EXIT.OK;
}
