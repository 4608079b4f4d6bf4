import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EmbeddedKnowledgeStore } from '../../src/adapters/embedded/sqlite.knowledge-store';
import type { DocumentRecord, DocumentWrite, KnowledgeStore } from '../../src/ports/knowledge-store.port';
import { CRASH_INPUT, draftDocument, finalDocument, hasDraft } from '../helpers/crash-ingest.child';

const CHILD = join(__dirname, '..', 'helpers', 'crash-ingest.child.js');
/** Per run: documents the child must have committed before it is killed (five runs on one directory). */
const KILL_AFTER_DOCUMENTS = [250, 500, 750, 1000, 1250];

describe('EmbeddedKnowledgeStore survives SIGKILL mid-ingest', () => {
  const dirs: string[] = [];
  const stores: KnowledgeStore[] = [];
  after(async () => {
    for (const store of stores) await store.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const tempDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'kbql-crash-'));
    dirs.push(dir);
    return dir;
  };
  const openStore = async (dataDir: string): Promise<EmbeddedKnowledgeStore> => {
    const store = new EmbeddedKnowledgeStore({ dataDir });
    await store.init();
    stores.push(store);
    return store;
  };

  it('leaves no partial document, and a hash-skipping re-ingest converges to a fresh ingest', { timeout: 60_000 }, async (t) => {
    assert.ok(existsSync(CHILD), `compiled child at ${CHILD}`);
    const finals = Array.from({ length: CRASH_INPUT.documents }, (_, i) => finalDocument(i));
    const versions = new Map<string, DocumentWrite>();
    for (let i = 0; i < CRASH_INPUT.documents; i++) {
      versions.set(finals[i]!.contentHash, finals[i]!);
      if (hasDraft(i)) {
        const draft = draftDocument(i);
        versions.set(draft.contentHash, draft);
      }
    }

    // Several kills of the same directory: each rerun rewrites from the start, so later kills land mid-replace too.
    const crashDir = await tempDir();
    let maxCommitted = 0;
    for (const killAfter of KILL_AFTER_DOCUMENTS) {
      const { signal, committed, lastLine } = await runChildAndKill(crashDir, killAfter);
      assert.equal(signal, 'SIGKILL', `the child was killed mid-ingest (last line: ${lastLine})`);
      assert.ok(committed >= killAfter && committed < CRASH_INPUT.documents, `killed after ${committed} documents`);
      maxCommitted = Math.max(maxCommitted, committed);
      const store = new EmbeddedKnowledgeStore({ dataDir: crashDir });
      await store.init();
      try {
        const visible = await checkNoPartialDocument(store, versions);
        assert.ok(visible >= maxCommitted && visible < CRASH_INPUT.documents, `${visible} visible, ≥ ${maxCommitted} committed`);
        t.diagnostic(`kill after ≥${killAfter}: child reported ${committed}, ${visible} documents visible and whole`);
      } finally {
        await store.close();
      }
    }

    const crashed = await openStore(crashDir);
    const collection = (await crashed.getCollectionByName(CRASH_INPUT.collectionName))!;
    // The vector index built from the recovered file finds a surviving chunk by its own vector.
    const visible = await allDocuments(crashed, collection.id);
    const probe = visible[Math.floor(visible.length / 2)]!;
    const probeVersion = versions.get(probe.contentHash)!;
    const [top] = await crashed.search({
      collectionId: collection.id,
      mode: 'VECTOR',
      text: '',
      vector: probeVersion.chunks[1]!.vector,
      alpha: 1,
      limit: 1,
      offset: 0,
    });
    assert.equal(top?.chunk.documentId, probe.id);
    assert.equal(top?.chunk.index, 1);

    // (b) re-ingest the full input the way the ingestion service does: skip unchanged content hashes.
    let skipped = 0;
    let written = 0;
    for (let start = 0; start < finals.length; start += 250) {
      const batch = finals.slice(start, start + 250);
      const hashes = await crashed.getContentHashes(
        collection.id,
        batch.map((d) => d.externalId),
      );
      const todo = batch.filter((d) => hashes.get(d.externalId) !== d.contentHash);
      skipped += batch.length - todo.length;
      written += todo.length;
      const results = await crashed.upsertDocuments(collection.id, todo);
      assert.ok(results.every((r) => r.ok));
    }
    assert.ok(skipped > 0 && written > 0, `skipped ${skipped}, rewrote ${written}`);
    t.diagnostic(`re-ingest skipped ${skipped} unchanged documents and wrote ${written}`);

    const fresh = await openStore(await tempDir());
    const freshCollection = await fresh.createCollection({
      name: collection.name,
      description: collection.description,
      chunking: collection.chunking,
      embedder: collection.embedder,
    });
    for (let start = 0; start < finals.length; start += 250) {
      const results = await fresh.upsertDocuments(freshCollection.id, finals.slice(start, start + 250));
      assert.ok(results.every((r) => r.ok));
    }
    const expectedChunks = finals.reduce((n, d) => n + d.chunks.length, 0);
    const expectedStats = { documents: CRASH_INPUT.documents, chunks: expectedChunks };
    assert.deepEqual(await fresh.collectionStats(freshCollection.id), expectedStats);
    assert.deepEqual(await crashed.collectionStats(collection.id), expectedStats, 'same totals as a fresh ingest');
    const summary = (docs: DocumentRecord[]): string[] => docs.map((d) => `${d.externalId} ${d.contentHash} ${d.chunkCount}`).sort();
    assert.deepEqual(summary(await allDocuments(crashed, collection.id)), summary(await allDocuments(fresh, freshCollection.id)));
  });
});

/**
 * Every document visible in the crash collection is exactly one complete version of the input (known content hash,
 * chunkCount, listChunks total and chunk texts all agree), and the stats add up. Returns how many are visible.
 */
async function checkNoPartialDocument(store: KnowledgeStore, versions: Map<string, DocumentWrite>): Promise<number> {
  const collection = await store.getCollectionByName(CRASH_INPUT.collectionName);
  assert.ok(collection, 'the collection committed before the first document');
  const visible = await allDocuments(store, collection.id);
  let chunkTotal = 0;
  for (const doc of visible) {
    const version = versions.get(doc.contentHash);
    assert.ok(version, `${doc.externalId} has a known content hash`);
    assert.equal(doc.externalId, version.externalId);
    assert.equal(doc.chunkCount, version.chunks.length, `${doc.externalId} chunkCount`);
    const chunks = await store.listChunks(doc.id, { offset: 0, limit: 100 });
    assert.equal(chunks.total, doc.chunkCount, `${doc.externalId}: listChunks total matches chunkCount`);
    assert.deepEqual(
      chunks.items.map((ch) => ch.text),
      version.chunks.map((ch) => ch.text),
      `${doc.externalId}: the chunks are exactly that version's`,
    );
    chunkTotal += doc.chunkCount;
  }
  assert.deepEqual(await store.collectionStats(collection.id), { documents: visible.length, chunks: chunkTotal });
  return visible.length;
}

/** Spawns the ingest child and SIGKILLs it once it reports `killAfter` committed documents. */
function runChildAndKill(
  dataDir: string,
  killAfter: number,
): Promise<{ signal: NodeJS.Signals | null; committed: number; lastLine: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let committed = 0;
    let lastLine = '';
    let buffered = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (data: string) => {
      buffered += data;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        lastLine = line;
        const match = /^progress (\d+) (\d+)$/.exec(line);
        if (match && committed < killAfter) {
          committed = Number(match[1]);
          if (committed >= killAfter) child.kill('SIGKILL');
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (data: string) => {
      stderr += data;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === null && code !== 0) reject(new Error(`child exited with ${code}: ${stderr}`));
      else resolve({ signal, committed, lastLine });
    });
  });
}

async function allDocuments(store: KnowledgeStore, collectionId: string): Promise<DocumentRecord[]> {
  const out: DocumentRecord[] = [];
  for (let offset = 0; ; offset += 500) {
    const page = await store.listDocuments(collectionId, { offset, limit: 500 });
    out.push(...page.items);
    if (page.items.length < 500) return out;
  }
}
