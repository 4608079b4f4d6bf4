import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gql, sampleDocument, waitFor } from '../helpers/jobs-fixtures';
import { startTestServer, type TestApp } from '../helpers/test-app';
import { freePort, redisServerAvailable } from '../helpers/redis';

/** A password as `openssl rand -base64 48` makes them, with every character a URL would trip on. */
const PASSWORD = 'q8/Zr+e#Kd?x=0/Y1mW+3pLk#Ab?Cd/Ef+Gh==';

/**
 * kbql against a Redis with `requirepass` set to such a password, given as REDIS_PASSWORD next to a password-less
 * REDIS_URL: the cache, the rate limits and the Redis job queue (BullMQ, job state, events) all authenticate.
 */
describe(
  'REDIS_PASSWORD with /, # and ?',
  { skip: redisServerAvailable() ? false : 'redis-server is not installed', timeout: 60_000 },
  () => {
    let redis: ChildProcess;
    let port: number;
    let t: TestApp;
    let url: string;

    before(async () => {
      port = await freePort();
      redis = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', PASSWORD],
        { stdio: 'ignore' },
      );
      await waitFor(
        'redis-server',
        () =>
          new Promise<boolean>((resolve) => {
            const socket = net.connect({ port, host: '127.0.0.1' }, () => {
              socket.destroy();
              resolve(true);
            });
            socket.on('error', () => resolve(false));
          }),
        5000,
        50,
      );
      ({ t, url } = await startTestServer({
        REDIS_URL: `redis://127.0.0.1:${port}`,
        REDIS_PASSWORD: PASSWORD,
        KBQL_JOB_QUEUE: 'redis',
        KBQL_RATE_LIMIT: 'true',
        KBQL_CACHE_PREFIX: 'pw-test',
      }));
    });
    after(async () => {
      await t?.close();
      if (redis?.pid) redis.kill('SIGTERM');
    });

    it('starts, and the cache, rate limits and job queue all reach the password-protected Redis', async () => {
      const ready = (await (await fetch(`${url}/readyz`)).json()) as { checks: Record<string, { status: string }> };
      assert.equal(ready.checks.cache?.status, 'up');
      assert.equal(t.app.cache.available, true);

      assert.equal((await gql(url, `mutation { createCollection(input: { name: "pw" }) { id } }`)).errors, undefined);
      const started = await gql<{ startIngestion: { id: string } }>(
        url,
        `mutation($d: [DocumentInput!]) { startIngestion(collection: "pw", documents: $d) { id } }`,
        {
          d: [sampleDocument(1), sampleDocument(2)],
        },
      );
      assert.equal(started.errors, undefined, JSON.stringify(started.errors));
      const id = started.data!.startIngestion.id;
      const job = await waitFor(
        'the job to complete',
        async () => {
          const r = await gql<{ ingestionJob: { status: string; indexed: number } }>(
            url,
            `query($id: ID!) { ingestionJob(id: $id) { status indexed } }`,
            { id },
          );
          return r.data?.ingestionJob.status === 'COMPLETED' ? r.data.ingestionJob : undefined;
        },
        20_000,
        100,
      );
      assert.equal(job.indexed, 2);
    });
  },
);
