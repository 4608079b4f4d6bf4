import { MapperKind, mapSchema } from '@graphql-tools/utils';
import type { GraphQLFieldConfig, GraphQLSchema } from 'graphql';
import { AppError } from '../../errors';

export interface ResolverTimeoutOptions {
  /** Longest a field's resolver may take, in ms (KBQL_RESOLVER_TIMEOUT_MS). @default 30000 */
  timeoutMs?: number;
}

/** Where the bound of a wrapped field is kept (`field.extensions.kbqlTimeoutMs`), for tests and tooling. */
export const TIMEOUT_EXTENSION = 'kbqlTimeoutMs';

/**
 * Bounds every resolver that calls out — to the store, the embedder, the synthesizer — so no request hangs on a
 * dependency that neither answers nor fails: each field with a resolver of its own is wrapped (a `mapSchema`
 * transform; properties read by the default resolver have nothing to wait for and are left alone, and so are
 * subscription streams, which are long-lived by design). A resolver that returns a value at once costs one
 * `instanceof` check; one that returns a promise gets a deadline (checked by one shared timer, see
 * {@link deadlinesFor}), and past `timeoutMs` the field fails with UPSTREAM_TIMEOUT (`extensions.field`,
 * `extensions.timeoutMs`).
 *
 * JavaScript cannot cancel the promise it gave up on: the late work runs to its end (every adapter bounds its own
 * calls, KBQL_STORE_TIMEOUT_MS and KBQL_PROVIDER_TIMEOUT_MS, so it does end) and its result is dropped. Apply it
 * inside the `@auth` check and the rate limiter, so a refused call starts no timer.
 */
export function applyResolverTimeout<TContext>(schema: GraphQLSchema, options: ResolverTimeoutOptions = {}): GraphQLSchema {
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0)) throw new RangeError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
  const subscriptionType = schema.getSubscriptionType()?.name;
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig: GraphQLFieldConfig<unknown, TContext>, fieldName, typeName) => {
      if (!fieldConfig.resolve || typeName === subscriptionType) return fieldConfig;
      return bound(fieldConfig, `${typeName}.${fieldName}`, timeoutMs);
    },
  });
}

function bound<TContext>(
  fieldConfig: GraphQLFieldConfig<unknown, TContext>,
  coordinate: string,
  timeoutMs: number,
): GraphQLFieldConfig<unknown, TContext> {
  const resolve = fieldConfig.resolve!;
  const deadlines = deadlinesFor(timeoutMs);
  return {
    ...fieldConfig,
    extensions: { ...fieldConfig.extensions, [TIMEOUT_EXTENSION]: timeoutMs },
    resolve(source, args, context, info) {
      const result: unknown = resolve(source, args, context, info);
      if (!(result instanceof Promise)) return result;
      return new Promise((settle, reject) => {
        const entry: Pending = {
          deadline: Date.now() + timeoutMs,
          expire: () =>
            reject(
              new AppError('UPSTREAM_TIMEOUT', `${coordinate} did not finish within ${timeoutMs} ms.`, { field: coordinate, timeoutMs }),
            ),
        };
        deadlines.add(entry);
        // A late settlement of the abandoned promise is ignored (and its rejection handled, never left unhandled).
        result.then(
          (value) => {
            deadlines.delete(entry);
            settle(value);
          },
          (error: unknown) => {
            deadlines.delete(entry);
            reject(error);
          },
        );
      });
    },
  };
}

interface Pending {
  deadline: number;
  expire: () => void;
}

/**
 * The calls in flight with one bound, swept by one timer instead of a timer per call (a timer and a race per call
 * cost ~2 µs, several hundred of them in a search with many hits). The sweep runs every 1/20 of the bound (at least
 * 10 ms, at most 1 s), so a call fails at most 5% (or 1 s) after its bound; the timer runs only while calls are in
 * flight, so it never keeps an idle process alive.
 */
const sweepers = new Map<number, { add(entry: Pending): void; delete(entry: Pending): void }>();

function deadlinesFor(timeoutMs: number): { add(entry: Pending): void; delete(entry: Pending): void } {
  let sweeper = sweepers.get(timeoutMs);
  if (sweeper) return sweeper;
  const pending = new Set<Pending>();
  const everyMs = Math.min(1_000, Math.max(10, Math.floor(timeoutMs / 20)));
  let timer: NodeJS.Timeout | null = null;
  const sweep = () => {
    const now = Date.now();
    for (const entry of pending) {
      if (entry.deadline > now) continue;
      pending.delete(entry);
      entry.expire();
    }
    if (pending.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
  sweeper = {
    add(entry) {
      pending.add(entry);
      if (!timer) {
        // Not unref'd: a call in flight must be able to time out even when nothing else keeps the process alive.
        timer = setInterval(sweep, everyMs);
      }
    },
    delete(entry) {
      pending.delete(entry);
    },
  };
  sweepers.set(timeoutMs, sweeper);
  return sweeper;
}
