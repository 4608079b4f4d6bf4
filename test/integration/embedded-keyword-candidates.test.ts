import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import { sha256Hex } from '../../src/ids';
import type { DocumentWrite, Filter } from '../../src/ports/knowledge-store.port';

const DIM = 8;
/** More tied rows than the candidate pool (500) and its first fetch (600) hold. */
const TIED_DOCUMENTS = 1500;

describe('embedded keyword candidates', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('keeps every tie at the cut: equal scores rank by chunk id over the whole collection, as the join did', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'kbql-kw-candidates-'));
    dirs.push(dataDir);
    const store = new EmbeddedKnowledgeStore({ dataDir });
    await store.init();
    try {
      const collection = await store.createCollection({
        name: 'ties',
        description: null,
        chunking: { strategy: 'AUTO', chunkSize: 100, chunkOverlap: 10 },
        embedder: { name: 'test', dimensions: DIM },
      });
      // Identical documents: FTS5 and the rescoring give every chunk the same score.
      const docs = Array.from({ length: TIED_DOCUMENTS }, (_, i) => sameDocument(`doc-${i}`, { shelf: i % 3 === 0 ? 'a' : 'b' }));
      for (let at = 0; at < docs.length; at += 250) await store.upsertDocuments(collection.id, docs.slice(at, at + 250));
      // A few that mention the term more often rank first, whatever their ids.
      await store.upsertDocuments(collection.id, [strongerDocument('strong-a'), strongerDocument('strong-b')]);

      const hits = await store.search({ collectionId: collection.id, mode: 'KEYWORD', text: 'lighthouse', alpha: 0, limit: 12, offset: 0 });
      const shelfA: Filter = { kind: 'condition', field: { type: 'metadata', key: 'shelf' }, op: 'eq', value: 'a' };
      const filtered = await store.search({
        collectionId: collection.id,
        mode: 'KEYWORD',
        text: 'lighthouse',
        alpha: 0,
        limit: 10,
        offset: 0,
        filter: shelfA,
      });
      const db = new Database(join(dataDir, 'kbql.sqlite'), { readonly: true });
      const smallest = (shelf?: string) =>
        db
          .prepare(
            `SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id
             WHERE c.collection_id = ? AND d.external_id LIKE 'doc-%' AND (? IS NULL OR d.external_id IN (${shelfAIds()}))
             ORDER BY c.id LIMIT 10`,
          )
          .pluck()
          .all(collection.id, shelf ?? null) as string[];
      const expected = smallest();
      const expectedA = smallest('a');
      db.close();
      assert.deepEqual(
        hits
          .slice(0, 2)
          .map((h) => h.document.externalId)
          .sort(),
        ['strong-a', 'strong-b'],
      );
      assert.deepEqual(
        hits.slice(2).map((h) => h.chunk.id),
        expected,
        'the ten smallest chunk ids of all the tied chunks, not of the rows fetched first',
      );
      assert.deepEqual(
        filtered.map((h) => h.chunk.id),
        expectedA,
        'with a filter: the ten smallest chunk ids of the allowed tied chunks',
      );
    } finally {
      await store.close();
    }
  });
});

function sameDocument(externalId: string, metadata: DocumentWrite['metadata']): DocumentWrite {
  return { ...documentWith(externalId, 'The old lighthouse keeper logged every passing ship.'), metadata };
}

/** The external ids of the documents on shelf `a`, as an SQL list. */
function shelfAIds(): string {
  return Array.from({ length: TIED_DOCUMENTS }, (_, i) => i)
    .filter((i) => i % 3 === 0)
    .map((i) => `'doc-${i}'`)
    .join(',');
}

function strongerDocument(externalId: string): DocumentWrite {
  return documentWith(externalId, 'Lighthouse, lighthouse: the lighthouse keeper logged every passing ship.');
}

function documentWith(externalId: string, text: string): DocumentWrite {
  return {
    externalId,
    title: 'Harbour notes',
    source: null,
    contentType: 'TEXT',
    metadata: {},
    contentHash: sha256Hex(`${externalId}\n${text}`),
    charCount: text.length,
    chunks: [{ index: 0, text, startOffset: 0, endOffset: text.length, vector: new Float32Array(DIM).fill(0.5) }],
  };
}
