/** The port's filter tree as a parameterised SQL predicate over the `documents` row `d`. */
import { badInput } from '../../errors';
import type { Filter, FilterScalar } from '../../ports/knowledge-store.port';

const METADATA_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface CompiledFilter {
  /** A boolean SQL expression over the `documents` row aliased `d`; never NULL. */
  sql: string;
  params: unknown[];
}

const BUILTIN_COLUMNS = {
  documentId: 'd.id',
  externalId: 'd.external_id',
  source: 'd.source',
  title: 'd.title',
} as const;

/** Compiles a filter tree to a parameterised SQL predicate over `documents d` (always 0 or 1, never NULL). */
export function compileFilterSql(filter: Filter | undefined): CompiledFilter {
  if (!filter) return { sql: '1', params: [] };
  const params: unknown[] = [];
  const sql = compileNode(filter, params);
  return { sql, params };
}

function compileNode(filter: Filter, params: unknown[]): string {
  switch (filter.kind) {
    case 'and':
      return filter.filters.length === 0 ? '1' : `(${filter.filters.map((f) => compileNode(f, params)).join(' AND ')})`;
    case 'or':
      return filter.filters.length === 0 ? '0' : `(${filter.filters.map((f) => compileNode(f, params)).join(' OR ')})`;
    case 'condition': {
      const { field, op, value } = filter;
      if (op !== 'in' && Array.isArray(value)) throw badInput(`The "${op}" operator takes a single value.`);
      const values = Array.isArray(value) ? value : [value];
      if (field.type === 'metadata' && !METADATA_KEY.test(field.key)) {
        throw badInput(`"${field.key}" is not a filterable metadata key.`);
      }
      const column = field.type === 'builtin' ? BUILTIN_COLUMNS[field.name] : null;
      if (field.type === 'builtin' && !column) throw badInput(`"${String(field.name)}" is not a filterable field.`);
      const path = field.type === 'metadata' ? `$."${field.key}"` : '';
      switch (op) {
        case 'ne':
          return `(NOT ${compare(column, path, 'eq', value as FilterScalar, params)})`;
        case 'in':
          return values.length === 0 ? '0' : compileIn(column, path, values, params);
        default:
          return compare(column, path, op, value as FilterScalar, params);
      }
    }
  }
}

type ScalarOp = 'eq' | 'gt' | 'gte' | 'lt' | 'lte' | 'contains';
const SQL_OPERATORS = { eq: '=', gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

/**
 * One typed comparison. Builtin columns hold text or NULL; metadata values are checked with json_type first, so a
 * number never equals a numeric string and a boolean only equals a boolean (SQLite would otherwise coerce).
 */
function compare(column: string | null, path: string, op: ScalarOp, value: FilterScalar, params: unknown[]): string {
  if (column !== null) {
    if (typeof value !== 'string') return '0';
    params.push(value);
    return op === 'contains' ? `coalesce(instr(${column}, ?) > 0, 0)` : `coalesce(${column} ${SQL_OPERATORS[op]} ?, 0)`;
  }
  if (op === 'contains') {
    // An array's elements or a string's substrings; json_each only runs when the value is an array.
    params.push(path, path, ...elementParams(value));
    const inArray = `EXISTS (SELECT 1 FROM json_each(d.metadata, ?) je WHERE ${elementEquals(value)})`;
    if (typeof value !== 'string') return `coalesce(CASE json_type(d.metadata, ?) WHEN 'array' THEN ${inArray} ELSE 0 END, 0)`;
    params.push(path, value);
    return `coalesce(CASE json_type(d.metadata, ?) WHEN 'array' THEN ${inArray} WHEN 'text' THEN instr(json_extract(d.metadata, ?), ?) > 0 ELSE 0 END, 0)`;
  }
  if (typeof value === 'boolean') {
    if (op !== 'eq') return '0';
    params.push(path, value ? 'true' : 'false');
    return `coalesce(json_type(d.metadata, ?) = ?, 0)`;
  }
  const types = typeof value === 'number' ? `IN ('integer', 'real')` : `= 'text'`;
  params.push(path, path, value);
  return `coalesce(json_type(d.metadata, ?) ${types} AND json_extract(d.metadata, ?) ${SQL_OPERATORS[op]} ?, 0)`;
}

/** Type-and-value equality of a `json_each` row `je` with `value` (its params come from {@link elementParams}). */
function elementEquals(value: FilterScalar): string {
  if (typeof value === 'boolean') return 'je.type = ?';
  return typeof value === 'number' ? `je.type IN ('integer', 'real') AND je.value = ?` : `je.type = 'text' AND je.value = ?`;
}

function elementParams(value: FilterScalar): unknown[] {
  return [typeof value === 'boolean' ? (value ? 'true' : 'false') : value];
}

function compileIn(column: string | null, path: string, values: FilterScalar[], params: unknown[]): string {
  const strings = values.filter((v): v is string => typeof v === 'string');
  const numbers = values.filter((v): v is number => typeof v === 'number');
  const booleans = [...new Set(values.filter((v): v is boolean => typeof v === 'boolean'))];
  if (column !== null) {
    if (strings.length === 0) return '0';
    params.push(JSON.stringify(strings));
    return `coalesce(${column} IN (SELECT value FROM json_each(?)), 0)`;
  }
  const parts: string[] = [];
  if (strings.length > 0) {
    params.push(path, path, JSON.stringify(strings));
    parts.push(`(json_type(d.metadata, ?) = 'text' AND json_extract(d.metadata, ?) IN (SELECT value FROM json_each(?)))`);
  }
  if (numbers.length > 0) {
    params.push(path, path, JSON.stringify(numbers));
    parts.push(`(json_type(d.metadata, ?) IN ('integer', 'real') AND json_extract(d.metadata, ?) IN (SELECT value FROM json_each(?)))`);
  }
  if (booleans.length > 0) {
    params.push(path, JSON.stringify(booleans.map((b) => (b ? 'true' : 'false'))));
    parts.push(`(json_type(d.metadata, ?) IN (SELECT value FROM json_each(?)))`);
  }
  return `coalesce(${parts.join(' OR ')}, 0)`;
}
