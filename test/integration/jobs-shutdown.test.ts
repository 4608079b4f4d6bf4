import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { DEVELOPMENT_PRINCIPAL as caller } from '../../src/modules/auth/principal';
import { waitFor } from '../helpers/jobs-fixtures';

/** 2 MiB of distinct words without punctuation: seconds of chunking and embedding on the worker threads. */
function bigDocument(): string {
  const words: string[] = [];
  for (let i = 0, bytes = 0; bytes < 2 * 1024 * 1024 - 16; i++) {
    const word = `w${((i * 7919) % 100_000).toString(36)}`;
    words.push(word);
    bytes += word.length + 1;
  }
  return words.join(' ');
}

async function stageOf(app: App, jobId: string): Promise<string> {
  const page = await app.services.jobs.documents(jobId, null, { first: 10, after: null });
  return page.edges[0]!.node.stage;
}

describe('stopping the server during heavy ingestion', () => {
  it(
    'stops the worker threads within the drain deadline; the document resumes on the next start and is indexed',
    { timeout: 120_000 },
    async () => {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-shutdown-'));
      const config = loadConfig({ NODE_ENV: 'test', KBQL_LOG_LEVEL: 'silent', KBQL_DATA_DIR: dataDir, KBQL_JOB_QUEUE: 'memory' });
      try {
        const first = await createApp(config);
        await first.services.collections.create({ name: 'big' }, caller);
        const job = await first.services.jobs.startIngestion(
          'big',
          [{ id: 'big', content: bigDocument(), contentType: 'TEXT' }],
          [],
          caller,
        );
        await waitFor(
          'the document in CHUNKING or EMBEDDING',
          async () => ['CHUNKING', 'EMBEDDING'].includes(await stageOf(first, job.id)),
          60_000,
        );
        const stopping = performance.now();
        await first.stop();
        const stopMs = performance.now() - stopping;
        // The job's default wait is 5 s; the threads are stopped first, so nothing holds the drain that long.
        assert.ok(stopMs < 4_000, `stop took ${stopMs.toFixed(0)} ms`);

        const second = await createApp(config);
        try {
          const stage = await stageOf(second, job.id);
          assert.ok(!['FAILED', 'CANCELLED'].includes(stage), `after the stop the document is ${stage}, not resumable`);
          await waitFor('the document INDEXED', async () => (await stageOf(second, job.id)) === 'INDEXED', 90_000);
          const done = await second.services.jobs.getJob(job.id, caller);
          assert.equal(done.status, 'COMPLETED');
        } finally {
          await second.stop();
        }
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  );
});
