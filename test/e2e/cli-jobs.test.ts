import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config';
import { corruptPdf, minimalDocx, minimalPdf, sampleDocument } from '../helpers/jobs-fixtures';
import { JWT_ENV, tokenFor } from '../helpers/security';
import { CLI, kbql, show } from '../helpers/cli';

/**
 * `kbql ingest --async`, `kbql jobs …` and `kbql ask --stream` as child processes against a real server with JWT auth:
 * uploads over POST /v1/uploads, progress and answers over graphql-ws, the bearer token on both.
 */
describe('kbql CLI: background jobs, uploads and streamed answers', () => {
  let app: App;
  let url: string;
  let dir: string;
  let dataDir: string;
  let writer: string;
  let firstJob: string;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'kbql-cli-jobs-data-'));
    app = await createApp(
      loadConfig({ NODE_ENV: 'test', KBQL_LOG_LEVEL: 'silent', KBQL_DATA_DIR: dataDir, KBQL_INGEST_CONCURRENCY: '2', ...JWT_ENV }),
    );
    url = `${await app.listen(0, '127.0.0.1')}/graphql`;
    writer = await tokenFor('WRITER', 'acme');
    dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-cli-jobs-'));
    const files: Record<string, string | Buffer> = {
      'docs/vacation.md':
        '# Vacation policy\n\nEmployees receive 25 days of paid vacation per year. Unused days can be carried over until March 31.\n',
      'docs/laptops.txt': 'Every engineer gets a new laptop every three years. Order it through the IT service desk.\n',
      'docs/files/harbor.pdf': minimalPdf(['Quartz harbors glow at dusk.', 'Copper lanterns line the pier.'], { title: 'Harbor' }),
      'docs/files/willow.docx': minimalDocx(['Willow branches bend over the canyon.', 'Falcons nest in the mosaic cliffs.']),
      'docs/files/broken.pdf': corruptPdf(),
      'docs/notes.bin': Buffer.from([0, 1, 2, 3]),
    };
    for (let i = 0; i < 400; i++) {
      const doc = sampleDocument(i);
      files[`many/${doc.id}.txt`] = doc.content;
    }
    for (const [file, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), content);
    }
  });

  after(async () => {
    await app.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  });

  it('ingest --async uploads PDF/DOCX, follows the job with a progress bar, and exits 3 with the broken file’s reason', async () => {
    const r = await kbql(['ingest', 'docs', '-c', 'handbook', '--create', '--async', '--progress', '--token', writer, '--url', url], dir);
    assert.equal(r.code, 3, `a FAILED document exits with 3\n${show(r)}`);
    assert.match(r.stdout, /^INDEXED\s+4$/m, show(r));
    assert.match(r.stdout, /^UNCHANGED\s+0$/m);
    assert.match(r.stdout, /^FAILED\s+1$/m);
    assert.match(r.stdout, /^ {2}broken\.pdf: CORRUPT_FILE \(BAD_USER_INPUT\) \S.*$/m, show(r));
    assert.match(r.stdout, /5 documents → collection "handbook" .*; job \S+ COMPLETED_WITH_ERRORS; 1 other file skipped$/m);
    assert.match(r.stderr, /5\/5 docs \| [\d.]+ docs\/s \| 4 indexed, 0 unchanged, 1 failed/, show(r));
    firstJob = /^kbql: job (\S+) started: 5 documents \(3 uploaded\)$/m.exec(r.stderr)?.[1] ?? '';
    assert.notEqual(firstJob, '', show(r));

    const again = await kbql(
      [
        'ingest',
        'docs/vacation.md',
        'docs/files/harbor.pdf',
        'docs/files/willow.docx',
        '-c',
        'handbook',
        '--async',
        '--json',
        '--no-progress',
        '--token',
        writer,
        '--url',
        url,
      ],
      dir,
    );
    assert.equal(again.code, 0, show(again));
    const summary = JSON.parse(again.stdout) as {
      status: string;
      files: number;
      indexed: number;
      unchanged: number;
      failed: number;
      job: { failures: unknown[] };
    };
    assert.deepEqual(
      {
        status: summary.status,
        files: summary.files,
        indexed: summary.indexed,
        unchanged: summary.unchanged,
        failed: summary.failed,
        failures: summary.job.failures.length,
      },
      { status: 'COMPLETED', files: 3, indexed: 0, unchanged: 3, failed: 0, failures: 0 },
    );

    const sync = await kbql(['ingest', 'docs', '-c', 'handbook', '--token', writer, '--url', url], dir);
    assert.equal(sync.code, 0, show(sync));
    assert.match(sync.stdout, /^UNCHANGED\s+2$/m, 'without --async, text files go through ingestDocuments as before');
    assert.match(sync.stdout, /4 other files skipped\n\(3 of them \.pdf\/\.docx: kbql ingest --async uploads them/, show(sync));
  });

  it('jobs show, list, retry and delete report the job and its failed document', async () => {
    assert.ok(firstJob, 'needs the job of the first test');
    const shown = await kbql(['jobs', 'show', firstJob, '--token', writer, '--url', url], dir);
    assert.equal(shown.code, 0, show(shown));
    assert.match(shown.stdout, new RegExp(`^job\\s+${firstJob}$`, 'm'));
    assert.match(shown.stdout, /^status\s+COMPLETED_WITH_ERRORS$/m);
    assert.match(shown.stdout, /^documents\s+5: 0 queued, 0 in progress, 4 indexed, 0 unchanged, 1 failed, 0 cancelled$/m);
    assert.match(shown.stdout, /^ {2}broken\.pdf: CORRUPT_FILE/m);

    const listed = await kbql(
      ['jobs', 'list', '-c', 'handbook', '--status', 'completed_with_errors', '--json', '--token', writer, '--url', url],
      dir,
    );
    assert.equal(listed.code, 0, show(listed));
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { id: string }[]).map((j) => j.id),
      [firstJob],
    );

    const retried = await kbql(['jobs', 'retry', firstJob, '--no-progress', '--token', writer, '--url', url], dir);
    assert.equal(retried.code, 3, `the same corrupt file fails again\n${show(retried)}`);
    assert.match(retried.stdout, /^INDEXED\s+4$/m, show(retried));
    assert.match(retried.stdout, /^ {2}broken\.pdf: CORRUPT_FILE/m);

    const noWait = await kbql(
      ['ingest', 'docs/laptops.txt', 'docs/notes.bin', '-c', 'handbook', '--async', '--no-wait', '--json', '--token', writer, '--url', url],
      dir,
    );
    assert.equal(noWait.code, 0, show(noWait));
    const started = JSON.parse(noWait.stdout) as { jobId: string; job: { total: number } };
    assert.equal(started.job.total, 2, 'a file named on the command line is uploaded whatever its extension');
    const followed = await kbql(['jobs', 'follow', started.jobId, '--json', '--no-progress', '--token', writer, '--url', url], dir);
    assert.equal(followed.code, 3, show(followed));
    const outcome = JSON.parse(followed.stdout) as {
      status: string;
      unchanged: number;
      failed: number;
      failures: { name: string; reasonCode: string }[];
    };
    assert.deepEqual(
      {
        status: outcome.status,
        unchanged: outcome.unchanged,
        failed: outcome.failed,
        failures: outcome.failures.map((f) => `${f.name}:${f.reasonCode}`),
      },
      { status: 'COMPLETED_WITH_ERRORS', unchanged: 1, failed: 1, failures: ['notes.bin:UNSUPPORTED_TYPE'] },
    );

    const deleted = await kbql(['jobs', 'delete', started.jobId, '--json', '--token', writer, '--url', url], dir);
    assert.equal(deleted.code, 0, show(deleted));
    assert.deepEqual(JSON.parse(deleted.stdout), { id: started.jobId, status: 'COMPLETED_WITH_ERRORS', deletedDocuments: 2 });
    const gone = await kbql(['jobs', 'show', started.jobId, '--token', writer, '--url', url], dir);
    assert.equal(gone.code, 1, show(gone));
    assert.match(gone.stderr, /^kbql: NOT_FOUND: /m);

    const unknown = await kbql(['jobs', 'show', 'job_nope', '--token', writer, '--url', url], dir);
    assert.equal(unknown.code, 1, show(unknown));
    assert.match(unknown.stderr, /^kbql: NOT_FOUND: /m);
  });

  it('Ctrl-C stops following, not the job; jobs cancel and jobs follow pick it up', { timeout: 60_000 }, async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'ingest', 'many', '-c', 'bulk', '--create', '--async', '--no-progress', '--token', writer, '--url', url],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const jobId = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no job id within 30 s: ${stderr}`)), 30_000);
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        const m = /^kbql: job (\S+) started: 400 documents/m.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    child.kill('SIGINT');
    const code = await exited;
    const r = { code, stdout, stderr };
    assert.equal(code, 130, show(r));
    assert.match(stderr, new RegExp(`stopped following job ${jobId}; it goes on on the server`), show(r));
    assert.match(stderr, new RegExp(`kbql jobs follow ${jobId}\\n.*kbql jobs cancel ${jobId}`), show(r));

    const cancelled = await kbql(['jobs', 'cancel', jobId, '--json', '--token', writer, '--url', url], dir);
    assert.equal(cancelled.code, 0, show(cancelled));
    assert.equal((JSON.parse(cancelled.stdout) as { cancelRequested: boolean }).cancelRequested, true);

    const followed = await kbql(['jobs', 'follow', jobId, '--no-progress', '--token', writer, '--url', url], dir);
    assert.equal(followed.code, 3, `cancelled documents exit with 3\n${show(followed)}`);
    const count = (label: string) => Number(new RegExp(`^${label}\\s+(\\d+)$`, 'm').exec(followed.stdout)?.[1] ?? 0);
    assert.ok(count('CANCELLED') > 0, show(followed));
    assert.equal(count('INDEXED') + count('CANCELLED'), 400, show(followed));
    assert.match(followed.stdout, new RegExp(`^job ${jobId} CANCELLED: 400 documents`, 'm'));
  });

  it('ask --stream prints the answer as it comes, then the numbered sources; --json writes one event per line', async () => {
    const reader = await tokenFor('READER', 'acme');
    const r = await kbql(
      ['ask', '--stream', 'How many vacation days do employees get?', '-c', 'handbook', '--token', reader, '--url', url],
      dir,
    );
    assert.equal(r.code, 0, show(r));
    const [answer, ...rest] = r.stdout.split('\n');
    assert.match(answer!, /25 days.*\[1\]/, show(r));
    assert.match(rest.join('\n'), /^Sources:\n {2}\[1\] Vacation policy \(docs\/vacation\.md\)\n {6}.*25 days/m, show(r));

    const plain = await kbql(['ask', 'How many vacation days do employees get?', '-c', 'handbook', '--token', reader, '--url', url], dir);
    assert.equal(r.stdout, plain.stdout, 'the streamed output ends as `kbql ask` prints it');

    const json = await kbql(['ask', '--stream', '--json', 'vacation days', '-c', 'handbook', '--token', reader, '--url', url], dir);
    assert.equal(json.code, 0, show(json));
    const events = json.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; text?: string; answer?: { answer: string } });
    assert.equal(events[0]!.type, 'RetrievalDone', show(json));
    assert.equal(events.at(-1)!.type, 'Completed');
    assert.ok(events.some((e) => e.type === 'AnswerDelta'));
    assert.match(events.at(-1)!.answer!.answer, /25 days/);

    const unknown = await kbql(['ask', '--stream', 'anything', '-c', 'nope', '--token', reader, '--url', url], dir);
    assert.equal(unknown.code, 1, show(unknown));
    assert.match(unknown.stderr, /^kbql: NOT_FOUND: /m, show(unknown));
  });
});
