import {
  CollectionsDocument,
  CreateCollectionDocument,
  type ChunkingStrategy,
  type CollectionSummaryFragment,
  type CollectionsQuery,
} from '../generated/graphql';
import { EXIT, type KbqlClient } from './client';
import { writeJson, writeLine } from './output';

const PAGE_SIZE = 100;

/** `kbql collections`: every collection (all pages) with its counts and embedder. */
export async function runListCollections(client: KbqlClient, options: { json: boolean }): Promise<number> {
  const all: CollectionSummaryFragment[] = [];
  let after: string | null = null;
  for (;;) {
    const page: CollectionsQuery = await client.request(CollectionsDocument, { first: PAGE_SIZE, after });
    const { collections } = page;
    all.push(...collections.edges.map((e) => e.node));
    if (!collections.pageInfo.hasNextPage || !collections.pageInfo.endCursor) break;
    after = collections.pageInfo.endCursor;
  }
  if (options.json) {
    writeJson(all);
    return EXIT.OK;
  }
  if (all.length === 0) {
    writeLine('No collections yet (kbql collections create <name>, or kbql ingest --create).');
    return EXIT.OK;
  }
  const rows = [
    ['NAME', 'DOCUMENTS', 'CHUNKS', 'EMBEDDER', 'ID'],
    ...all.map((c) => [c.name, String(c.stats.documents), String(c.stats.chunks), `${c.embedder.name} (${c.embedder.dimensions})`, c.id]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  for (const row of rows) writeLine(row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  '));
  return EXIT.OK;
}

export interface CreateOptions {
  description?: string;
  strategy?: ChunkingStrategy;
  chunkSize?: number;
  chunkOverlap?: number;
  /** A configured embedder's name; default: the server's default embedder. */
  embedder?: string;
  json: boolean;
}

/** `kbql collections create <name>`. */
export async function runCreateCollection(client: KbqlClient, name: string, options: CreateOptions): Promise<number> {
  const chunking =
    options.strategy || options.chunkSize !== undefined || options.chunkOverlap !== undefined
      ? { strategy: options.strategy ?? null, chunkSize: options.chunkSize ?? null, chunkOverlap: options.chunkOverlap ?? null }
      : null;
  const { createCollection: c } = await client.request(CreateCollectionDocument, {
    input: { name, description: options.description ?? null, chunking, embedder: options.embedder ?? null },
  });
  if (options.json) writeJson(c);
  else
    writeLine(
      `created collection "${c.name}" (${c.id}): ${c.chunking.strategy}, ${c.chunking.chunkSize}/${c.chunking.chunkOverlap} tokens, ${c.embedder.name}`,
    );
  return EXIT.OK;
}
