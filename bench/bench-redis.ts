import net from 'node:net';
import { createClient } from '@redis/client';

/** Benchmarks use the shared Redis at 127.0.0.1:6379 when it answers PING; their rows are skipped otherwise. */
export const BENCH_REDIS_URL = 'redis://127.0.0.1:6379';

export function redisReachable(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port: 6379, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(300, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => done(d.toString().startsWith('+PONG')));
    socket.on('error', () => done(false));
  });
}

/** Deletes every key under `<prefix>:` (what a benchmark wrote with KBQL_CACHE_PREFIX=prefix: cache and rate limits). */
export async function deleteRedisPrefix(prefix: string): Promise<number> {
  const client = createClient({ url: BENCH_REDIS_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    let deleted = 0;
    for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
      if (keys.length > 0) deleted += await client.del(keys);
    }
    return deleted;
  } finally {
    client.destroy();
  }
}
