import { badInput } from '../../errors';
import type { BuiltinField, Filter, FilterField, FilterOp, FilterScalar } from '../../ports/knowledge-store.port';

/**
 * The client's filter shape (GraphQL `FilterInput`), before validation: either a combinator (`and` / `or`) or
 * one condition: a `field` and exactly one operator.
 */
export interface FilterSpec {
  and?: FilterSpec[] | null;
  or?: FilterSpec[] | null;
  field?: string | null;
  eq?: unknown;
  ne?: unknown;
  gt?: unknown;
  gte?: unknown;
  lt?: unknown;
  lte?: unknown;
  in?: unknown[] | null;
  contains?: unknown;
}

const OPS: readonly FilterOp[] = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'contains'];
const BUILTINS: readonly BuiltinField[] = ['documentId', 'externalId', 'source', 'title'];
export const METADATA_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Bounds that keep a hostile filter cheap. */
export const FILTER_LIMITS = { maxDepth: 6, maxConditions: 64, maxInValues: 256, maxStringLength: 1024 } as const;

/** Validates a client filter and turns it into the store's {@link Filter}; throws BAD_USER_INPUT naming the path. */
export function compileFilter(spec: FilterSpec | null | undefined): Filter | undefined {
  if (spec == null) return undefined;
  const counter = { conditions: 0 };
  return compile(spec, 'filter', 1, counter);
}

function compile(spec: FilterSpec, at: string, depth: number, counter: { conditions: number }): Filter {
  if (depth > FILTER_LIMITS.maxDepth) throw badInput(`${at}: filters nest at most ${FILTER_LIMITS.maxDepth} levels.`, { path: at });
  const ops = OPS.filter((op) => spec[op] !== undefined && spec[op] !== null);
  const combinators = (['and', 'or'] as const).filter((c) => spec[c] != null);
  if (combinators.length + (spec.field != null || ops.length > 0 ? 1 : 0) !== 1) {
    throw badInput(`${at}: give either "and", "or", or one "field" with one operator.`, { path: at });
  }
  const combinator = combinators[0];
  if (combinator) {
    const list = spec[combinator]!;
    if (list.length === 0) throw badInput(`${at}.${combinator}: the list must not be empty.`, { path: at });
    return { kind: combinator, filters: list.map((s, i) => compile(s, `${at}.${combinator}[${i}]`, depth + 1, counter)) };
  }
  if (++counter.conditions > FILTER_LIMITS.maxConditions) {
    throw badInput(`filter: at most ${FILTER_LIMITS.maxConditions} conditions.`, { path: at });
  }
  if (spec.field == null) throw badInput(`${at}: a condition needs a "field".`, { path: at });
  if (ops.length !== 1) throw badInput(`${at}: a condition takes exactly one operator (${OPS.join(', ')}).`, { path: at });
  const op = ops[0]!;
  const field = parseField(spec.field, at);
  const raw = spec[op];
  let value: FilterScalar | FilterScalar[];
  if (op === 'in') {
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > FILTER_LIMITS.maxInValues) {
      throw badInput(`${at}.in: give 1 to ${FILTER_LIMITS.maxInValues} values.`, { path: at });
    }
    value = raw.map((v, i) => scalar(v, `${at}.in[${i}]`));
  } else {
    value = scalar(raw, `${at}.${op}`);
    if ((op === 'gt' || op === 'gte' || op === 'lt' || op === 'lte') && typeof value === 'boolean') {
      throw badInput(`${at}.${op}: compare numbers or strings, not booleans.`, { path: at });
    }
  }
  return { kind: 'condition', field, op, value };
}

function parseField(name: string, at: string): FilterField {
  if ((BUILTINS as readonly string[]).includes(name)) return { type: 'builtin', name: name as BuiltinField };
  const key = name.startsWith('metadata.') ? name.slice('metadata.'.length) : null;
  if (key !== null && METADATA_KEY_PATTERN.test(key)) return { type: 'metadata', key };
  throw badInput(
    `${at}.field: "${name.slice(0, 80)}" is not filterable; use ${BUILTINS.join(', ')} or metadata.<key> with a key matching ${METADATA_KEY_PATTERN.source}.`,
    { path: at },
  );
}

function scalar(value: unknown, at: string): FilterScalar {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    if (value.length > FILTER_LIMITS.maxStringLength)
      throw badInput(`${at}: strings are at most ${FILTER_LIMITS.maxStringLength} characters.`, { path: at });
    return value;
  }
  throw badInput(`${at}: filter values are strings, finite numbers or booleans.`, { path: at });
}
