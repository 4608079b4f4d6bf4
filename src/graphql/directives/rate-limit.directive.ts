import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import {
  defaultFieldResolver,
  DirectiveLocation,
  GraphQLDirective,
  GraphQLInt,
  GraphQLNonNull,
  GraphQLString,
  type GraphQLSchema,
} from 'graphql';
import { rateLimitDirective as libraryDirective } from 'graphql-rate-limit-directive';
import { RateLimiterMemory, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError } from '../../errors';
import type { Principal } from '../../ports/principal.port';

export const RATE_LIMIT_DIRECTIVE = 'rateLimit';
/** The name under which our `@rateLimit(window, max)` is handed to graphql-rate-limit-directive (never in the SDL). */
const LIBRARY_NAME = 'kbqlRateLimitBudget';

/** `directive @rateLimit(window: String! = "1m", max: Int! = 60, budget: String) on OBJECT | FIELD_DEFINITION` */
export const rateLimitDirective = new GraphQLDirective({
  name: RATE_LIMIT_DIRECTIVE,
  description:
    'At most `max` calls of this field per `window` ("30s", "1m", "1h", "1d") per caller (principal, or client IP when anonymous); each aliased call counts. Fields naming the same `budget` share one counter (e.g. ask and askStream: one answer budget).',
  locations: [DirectiveLocation.FIELD_DEFINITION, DirectiveLocation.OBJECT],
  args: {
    window: { type: new GraphQLNonNull(GraphQLString), defaultValue: '1m' },
    max: { type: new GraphQLNonNull(GraphQLInt), defaultValue: 60 },
    budget: { type: GraphQLString },
  },
});

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "30s" | "1m" | "2h" | "1d" → seconds; throws on anything else. */
export function parseWindow(window: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(window);
  if (!match || Number(match[1]) === 0) throw new Error(`@rateLimit window "${window}" is not like "30s", "1m", "1h" or "1d"`);
  return Number(match[1]) * UNIT_SECONDS[match[2]!]!;
}

export interface RateLimitTransformOptions {
  /**
   * The limiter class (one instance per distinct max/window): RateLimiterMemory (per replica) or the Redis-backed one
   * of `adapters/rate-limit`.
   * @default RateLimiterMemory
   */
  limiterClass?: typeof RateLimiterAbstract;
  /** Extra options of every limiter (e.g. `storeClient`). */
  limiterOptions?: Record<string, unknown>;
  /** Prefix of every counter key (deployments sharing a Redis need different ones). */
  keyPrefix: string;
  /** Replaces the `max` of every `@rateLimit` (deployment tuning and tests); null: the schema's values. @default null */
  maxOverride?: number | null;
  /** Replaces the `window` of every `@rateLimit`, in seconds; null: the schema's values. @default null */
  windowSecondsOverride?: number | null;
}

/**
 * Enforces `@rateLimit(window, max)` with graphql-rate-limit-directive over rate-limiter-flexible. Its own directive
 * has other arguments (`limit`, `duration` in seconds), so each field's `@rateLimit` is translated into the library's
 * form in the field's extensions (under a private name) and the library's transform does the rest: one counter per
 * field and caller, consumed once per resolver call — so each aliased call counts, and 50 aliases of a field limited
 * to 10 run at most 10 times. Over the limit → RATE_LIMITED with `retryAfter` (seconds), which the HTTP layer turns
 * into 429 and a Retry-After header.
 */
export function createRateLimitTransform<TContext extends { principal: Principal | null; clientIp: string }>(
  options: RateLimitTransformOptions,
): (schema: GraphQLSchema) => GraphQLSchema {
  const { rateLimitDirectiveTransformer } = libraryDirective<TContext>({
    name: LIBRARY_NAME,
    keyGenerator: (_directiveArgs, _source, _args, context, info) => `${info.parentType.name}.${info.fieldName}:${callerKey(context)}`,
    onLimit: (response) => {
      const retryAfter = Math.max(1, Math.ceil(response.msBeforeNext / 1000));
      throw new AppError('RATE_LIMITED', `Too many calls; retry in ${retryAfter} s.`, { retryAfter });
    },
    limiterClass: options.limiterClass ?? RateLimiterMemory,
    limiterOptions: { ...options.limiterOptions, keyPrefix: options.keyPrefix } as never,
  });
  const LimiterClass = (options.limiterClass ?? RateLimiterMemory) as unknown as new (opts: Record<string, unknown>) => RateLimiterAbstract;
  return (schema) => {
    const subscriptionType = schema.getSubscriptionType()?.name;
    // One limiter per named budget, shared by every field naming it (whatever its operation type).
    const budgets = new Map<string, { limiter: RateLimiterAbstract; limit: number; duration: number; first: string }>();
    const budgetLimiter = (name: string, limit: number, duration: number, field: string): RateLimiterAbstract => {
      const known = budgets.get(name);
      if (known) {
        if (known.limit !== limit || known.duration !== duration)
          throw new Error(`@rateLimit budget "${name}": ${field} and ${known.first} must have the same window and max`);
        return known.limiter;
      }
      const limiter = new LimiterClass({
        ...options.limiterOptions,
        keyPrefix: `${options.keyPrefix}:budget:${name}`,
        points: limit,
        duration,
      });
      budgets.set(name, { limiter, limit, duration, first: field });
      return limiter;
    };
    const translated = mapSchema(schema, {
      [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
        const args = getDirective(schema, fieldConfig, RATE_LIMIT_DIRECTIVE)?.[0];
        if (!args) return fieldConfig;
        const limit = options.maxOverride ?? Number(args['max'] ?? 60);
        const duration = options.windowSecondsOverride ?? parseWindow(String(args['window'] ?? '1m'));
        const budget = typeof args['budget'] === 'string' ? args['budget'] : null;
        const subscribe = fieldConfig.subscribe;
        if (typeName === subscriptionType && subscribe) {
          // A subscription's resolver runs once per event: the budget is spent when the stream starts instead.
          const limiter = budget
            ? budgetLimiter(budget, limit, duration, `${typeName}.${fieldName}`)
            : new LimiterClass({
                ...options.limiterOptions,
                keyPrefix: `${options.keyPrefix}:${typeName}.${fieldName}`,
                points: limit,
                duration,
              });
          const key = budget ?? `${typeName}.${fieldName}`;
          return {
            ...fieldConfig,
            async subscribe(source, fieldArgs, context: Parameters<typeof callerKey>[0], info) {
              await consume(limiter, `${key}:${callerKey(context)}`);
              return subscribe(source, fieldArgs, context, info);
            },
          };
        }
        if (budget) {
          // Spent once per resolver call, as the library does, but on the budget's shared counter.
          const limiter = budgetLimiter(budget, limit, duration, `${typeName}.${fieldName}`);
          const resolve = fieldConfig.resolve ?? defaultFieldResolver;
          return {
            ...fieldConfig,
            async resolve(source, fieldArgs, context: Parameters<typeof callerKey>[0], info) {
              await consume(limiter, `${budget}:${callerKey(context)}`);
              return resolve(source, fieldArgs, context, info);
            },
          };
        }
        const extensions = fieldConfig.extensions as { directives?: Record<string, unknown> } | undefined;
        return {
          ...fieldConfig,
          extensions: { ...fieldConfig.extensions, directives: { ...extensions?.directives, [LIBRARY_NAME]: [{ limit, duration }] } },
        };
      },
    });
    return rateLimitDirectiveTransformer(translated);
  };
}

/** Spends one point of `key`, or throws RATE_LIMITED with `retryAfter` (seconds) when none is left. */
async function consume(limiter: RateLimiterAbstract, key: string): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (rejection) {
    if (rejection instanceof Error) throw rejection;
    const retryAfter = Math.max(1, Math.ceil(((rejection as { msBeforeNext?: number }).msBeforeNext ?? 1000) / 1000));
    throw new AppError('RATE_LIMITED', `Too many calls; retry in ${retryAfter} s.`, { retryAfter });
  }
}

/**
 * Whose budget a call spends: an identified principal's (tenant and subject), else the client address. The
 * KBQL_AUTH_MODE=none principal is everyone at once, so those callers are told apart by address too.
 */
export function callerKey(context: { principal: Principal | null; clientIp: string }): string {
  const p = context.principal;
  return p && p.kind !== 'development' ? `p:${encodeURIComponent(p.tenant)}:${encodeURIComponent(p.subject)}` : `ip:${context.clientIp}`;
}
