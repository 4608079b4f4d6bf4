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
import { RateLimiterMemory, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError } from '../../errors';
import type { Principal } from '../../ports/principal.port';

export const RATE_LIMIT_DIRECTIVE = 'rateLimit';

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

/** What a rate-limited field keeps in `extensions.kbqlRateLimit`: a way to spend its budget without running it. */
export interface RateLimitExtension {
  /** Spends one point of this field's counter for the caller of `context`; rejects with RATE_LIMITED when none is left. */
  charge(context: { principal: Principal | null; clientIp: string }): Promise<void>;
}

/** The field's {@link RateLimitExtension}, or null when it has no `@rateLimit` (or rate limits are off). */
export function rateLimitOf(field: { extensions?: Readonly<Record<string, unknown>> | null }): RateLimitExtension | null {
  return (field.extensions?.['kbqlRateLimit'] as RateLimitExtension | undefined) ?? null;
}

/**
 * Enforces `@rateLimit(window, max, budget)` over rate-limiter-flexible: one counter per field (or per named budget)
 * and caller, spent once per resolver call — so each aliased call counts, and 50 aliases of a field limited to 10 run
 * at most 10 times. A subscription spends it once, when its stream starts. Over the limit → RATE_LIMITED with
 * `retryAfter` (seconds), which the HTTP layer turns into 429 and a Retry-After header. Each limited field also gets
 * `extensions.kbqlRateLimit` ({@link rateLimitOf}), so a response served without running the field (the response
 * cache) spends the same counter.
 */
export function createRateLimitTransform<TContext extends { principal: Principal | null; clientIp: string }>(
  options: RateLimitTransformOptions,
): (schema: GraphQLSchema) => GraphQLSchema {
  const LimiterClass = (options.limiterClass ?? RateLimiterMemory) as unknown as new (opts: Record<string, unknown>) => RateLimiterAbstract;
  return (schema) => {
    const subscriptionType = schema.getSubscriptionType()?.name;
    // Fields without a budget share one limiter per max/window (their keys differ by field); named budgets have one each.
    const limiters = new Map<string, RateLimiterAbstract>();
    const budgets = new Map<string, { limit: number; duration: number; first: string }>();
    const limiterFor = (prefix: string, limit: number, duration: number): RateLimiterAbstract => {
      const id = `${prefix}|${limit}/${duration}`;
      let limiter = limiters.get(id);
      if (!limiter) {
        limiter = new LimiterClass({ ...options.limiterOptions, keyPrefix: prefix, points: limit, duration });
        limiters.set(id, limiter);
      }
      return limiter;
    };
    return mapSchema(schema, {
      [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
        const args = getDirective(schema, fieldConfig, RATE_LIMIT_DIRECTIVE)?.[0];
        if (!args) return fieldConfig;
        const coordinate = `${typeName}.${fieldName}`;
        const limit = options.maxOverride ?? Number(args['max'] ?? 60);
        const duration = options.windowSecondsOverride ?? parseWindow(String(args['window'] ?? '1m'));
        const budget = typeof args['budget'] === 'string' ? args['budget'] : null;
        if (budget) {
          const known = budgets.get(budget);
          if (known && (known.limit !== limit || known.duration !== duration))
            throw new Error(`@rateLimit budget "${budget}": ${coordinate} and ${known.first} must have the same window and max`);
          if (!known) budgets.set(budget, { limit, duration, first: coordinate });
        }
        const limiter = budget
          ? limiterFor(`${options.keyPrefix}:budget:${budget}`, limit, duration)
          : limiterFor(options.keyPrefix, limit, duration);
        const counter = budget ?? coordinate;
        const charge = (context: TContext) => consume(limiter, `${counter}:${callerKey(context)}`);
        const extensions = { ...fieldConfig.extensions, kbqlRateLimit: { charge } satisfies RateLimitExtension };
        const subscribe = fieldConfig.subscribe;
        if (typeName === subscriptionType && subscribe) {
          // A subscription's resolver runs once per event: the budget is spent when the stream starts instead.
          return {
            ...fieldConfig,
            extensions,
            subscribe: (source, fieldArgs, context: TContext, info) =>
              charge(context).then(() => subscribe(source, fieldArgs, context, info)),
          };
        }
        const resolve = fieldConfig.resolve ?? defaultFieldResolver;
        return {
          ...fieldConfig,
          extensions,
          resolve: (source, fieldArgs, context: TContext, info) => charge(context).then(() => resolve(source, fieldArgs, context, info)),
        };
      },
    });
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
