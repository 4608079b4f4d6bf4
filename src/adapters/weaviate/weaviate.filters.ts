import type { FilterValue } from 'weaviate-client';
import { badInput } from '../../errors';
import type {
  BuiltinField,
  DocumentRecord,
  Filter,
  FilterOp,
  FilterScalar,
  Metadata,
  MetadataValue,
} from '../../ports/knowledge-store.port';

/**
 * The pure part of the Weaviate adapter: how kbql metadata becomes typed, filterable Weaviate properties, and how
 * the port's {@link Filter} becomes a weaviate-client `FilterValue` over them. No I/O here.
 *
 * ## Why typed, suffixed properties
 * A Weaviate property has one data type per collection, while a kbql metadata key may hold a string in one document,
 * a number in the next and an array in a third (the port's filter rules depend on it: `eq 2021` never matches
 * `"2021"`). So every top-level scalar or scalar-array value is flattened into `meta_<key>_<t>`, `<t>` naming the
 * type: `s` string, `n` number, `b` boolean, `sa` / `na` / `ba` the elements of an array of that type (a mixed array
 * fills several). `null`, objects and nested arrays are not flattened (no scalar can equal them), and the full
 * metadata is kept as JSON next to them for the round trip. Weaviate compares property names case-insensitively
 * (and lower-cases their first letter), so the key is escaped: `_` → `__`, an upper-case letter → `_` + its lower
 * case (`Lang` → `meta__lang_s`). The name is injective: the type is what follows the last `_`.
 *
 * ## Why strings are stored encoded
 * Strings (metadata and the builtins title, source, externalId, documentId) are stored in a filter-only copy,
 * `Z` + two letters per UTF-8 byte (`A`–`P` high nibble, `a`–`p` low nibble), as `text` with `field` tokenization.
 * That is what makes every operator exact on Weaviate:
 * - equality is exact: `field` tokenization trims whitespace, and the encoding contains none;
 * - `gt`/`lt` compare UTF-8 bytes, the same order the embedded store (SQLite) uses, because the encoding preserves
 *   byte order;
 * - `contains` on a string is `Like *<encoded>*`: Weaviate's `Like` has no escape for `*` and `?` (they always are
 *   wildcards) and its `*` does not cross a line break; encoded values contain neither. The letter alphabets keep
 *   matches aligned on byte boundaries, so it is a true substring test, case-sensitive like the port demands.
 */

/** Weaviate data types the adapter uses for flattened values. */
export type FlatType = 's' | 'n' | 'b' | 'sa' | 'na' | 'ba';
export type FlatValue = string | number | boolean | string[] | number[] | boolean[];

export const FLAT_DATA_TYPES: Readonly<Record<FlatType, 'text' | 'number' | 'boolean' | 'text[]' | 'number[]' | 'boolean[]'>> = {
  s: 'text',
  n: 'number',
  b: 'boolean',
  sa: 'text[]',
  na: 'number[]',
  ba: 'boolean[]',
};

/** Properties holding the builtin filter fields, in both chunk and document collections. */
export const BUILTIN_PROPERTIES: Readonly<Record<BuiltinField, string>> = {
  documentId: 'fx_documentId',
  externalId: 'fx_externalId',
  source: 'fx_source',
  title: 'fx_title',
};

export const metaProperty = (key: string, type: FlatType): string =>
  `meta_${key.replace(/[_A-Z]/g, (c) => (c === '_' ? '__' : `_${c.toLowerCase()}`))}_${type}`;

const ENCODED_PREFIX = 'Z';
const HIGH = 65; // 'A'
const LOW = 97; // 'a'

/** Order- and substring-preserving encoding of a string for filterable storage (see the module comment). */
export function encodeFilterText(text: string): string {
  return ENCODED_PREFIX + encodeBody(text);
}

function encodeBody(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  let out = '';
  for (const byte of bytes) out += String.fromCharCode(HIGH + (byte >> 4), LOW + (byte & 15));
  return out;
}

/** Inverse of {@link encodeFilterText}; throws on anything it did not produce. */
export function decodeFilterText(encoded: string): string {
  if (!encoded.startsWith(ENCODED_PREFIX) || (encoded.length - 1) % 2 !== 0) {
    throw new Error('not an encoded filter string');
  }
  const bytes = Buffer.alloc((encoded.length - 1) / 2);
  for (let i = 0; i < bytes.length; i++) {
    const high = encoded.charCodeAt(1 + 2 * i) - HIGH;
    const low = encoded.charCodeAt(2 + 2 * i) - LOW;
    if (high < 0 || high > 15 || low < 0 || low > 15) throw new Error('not an encoded filter string');
    bytes[i] = (high << 4) | low;
  }
  return bytes.toString('utf8');
}

/** The typed `meta_*` properties of one metadata object (see the module comment). */
export function flattenMetadata(metadata: Metadata): Record<string, FlatValue> {
  const out: Record<string, FlatValue> = {};
  for (const [key, value] of Object.entries(metadata)) {
    const scalar = flattenScalar(value);
    if (scalar) {
      out[metaProperty(key, scalar.type)] = scalar.value;
      continue;
    }
    if (!Array.isArray(value)) continue;
    const strings: string[] = [];
    const numbers: number[] = [];
    const booleans: boolean[] = [];
    for (const element of value) {
      if (typeof element === 'string') strings.push(encodeFilterText(element));
      else if (typeof element === 'number' && Number.isFinite(element)) numbers.push(element);
      else if (typeof element === 'boolean') booleans.push(element);
    }
    if (strings.length > 0) out[metaProperty(key, 'sa')] = strings;
    if (numbers.length > 0) out[metaProperty(key, 'na')] = numbers;
    if (booleans.length > 0) out[metaProperty(key, 'ba')] = booleans;
  }
  return out;
}

function flattenScalar(value: MetadataValue): { type: FlatType; value: FlatValue } | null {
  if (typeof value === 'string') return { type: 's', value: encodeFilterText(value) };
  if (typeof value === 'number' && Number.isFinite(value)) return { type: 'n', value };
  if (typeof value === 'boolean') return { type: 'b', value };
  return null;
}

/** The flattened type a `meta_*` property name carries, or null for any other name. */
export function flatTypeOf(property: string): FlatType | null {
  if (!property.startsWith('meta_')) return null;
  const type = property.slice(property.lastIndexOf('_') + 1);
  return type in FLAT_DATA_TYPES ? (type as FlatType) : null;
}

/** The builtin `fx_*` properties of a document (absent when the value is null). */
export function builtinProperties(doc: {
  id: string;
  externalId: string;
  title: string | null;
  source: string | null;
}): Record<string, string> {
  const out: Record<string, string> = {
    [BUILTIN_PROPERTIES.documentId]: encodeFilterText(doc.id),
    [BUILTIN_PROPERTIES.externalId]: encodeFilterText(doc.externalId),
  };
  if (doc.title !== null) out[BUILTIN_PROPERTIES.title] = encodeFilterText(doc.title);
  if (doc.source !== null) out[BUILTIN_PROPERTIES.source] = encodeFilterText(doc.source);
  return out;
}

// ------------------------------------------------------------------ translation

/**
 * A translated filter: `all` (the condition holds for every object, e.g. `ne` on a property no object has), `none`
 * (it holds for none: the caller answers without asking Weaviate) or a weaviate-client filter.
 */
export type TranslatedFilter = { kind: 'all' } | { kind: 'none' } | { kind: 'filter'; filter: FilterValue };

const ALL: TranslatedFilter = { kind: 'all' };
const NONE: TranslatedFilter = { kind: 'none' };

/** Property names a filter may touch, so the caller can refresh its schema cache before translating. */
export function referencedProperties(filter: Filter): string[] {
  const out = new Set<string>();
  const visit = (f: Filter): void => {
    if (f.kind !== 'condition') {
      f.filters.forEach(visit);
      return;
    }
    if (f.field.type === 'builtin') {
      out.add(BUILTIN_PROPERTIES[f.field.name]);
      return;
    }
    for (const type of Object.keys(FLAT_DATA_TYPES) as FlatType[]) out.add(metaProperty(f.field.key, type));
  };
  visit(filter);
  return [...out];
}

/**
 * Translates a validated port filter into a weaviate-client filter over the properties of
 * {@link flattenMetadata} / {@link builtinProperties}. `exists(name)` says whether the target collection's schema
 * has that property: a condition on a property no object ever had is decided here (Weaviate rejects filters on
 * unknown properties), never dropped. Throws BAD_USER_INPUT for what Weaviate cannot evaluate exactly (an integer
 * beyond ±2^53-1, which its gRPC API would receive as a lossy int64).
 */
export function translateFilter(filter: Filter, exists: (property: string) => boolean): TranslatedFilter {
  switch (filter.kind) {
    case 'and':
      return combine(
        'And',
        filter.filters.map((f) => translateFilter(f, exists)),
      );
    case 'or':
      return combine(
        'Or',
        filter.filters.map((f) => translateFilter(f, exists)),
      );
    case 'condition':
      return translateCondition(filter, exists);
  }
}

/** `a AND b` over translated parts, folding the constants. */
export function andFilters(parts: TranslatedFilter[]): TranslatedFilter {
  return combine('And', parts);
}

function combine(operator: 'And' | 'Or', parts: TranslatedFilter[]): TranslatedFilter {
  const absorbing = operator === 'And' ? 'none' : 'all';
  if (parts.some((p) => p.kind === absorbing)) return operator === 'And' ? NONE : ALL;
  const filters = parts.flatMap((p) => (p.kind === 'filter' ? [p.filter] : []));
  if (filters.length === 0) return operator === 'And' ? ALL : NONE;
  if (filters.length === 1) return { kind: 'filter', filter: filters[0]! };
  return { kind: 'filter', filter: { operator, filters, value: null } };
}

type Condition = Extract<Filter, { kind: 'condition' }>;

function translateCondition(condition: Condition, exists: (property: string) => boolean): TranslatedFilter {
  const { field, op, value } = condition;
  // Builtins are strings (title and source may be null): only string values can match them.
  const property = (type: FlatType): string | null => {
    const name = field.type === 'builtin' ? (type === 's' ? BUILTIN_PROPERTIES[field.name] : null) : metaProperty(field.key, type);
    return name !== null && exists(name) ? name : null;
  };
  const leaf = (operator: FilterValue['operator'], name: string | null, v: unknown): TranslatedFilter =>
    name === null ? NONE : { kind: 'filter', filter: { operator, target: { property: name }, value: v } };

  if (op === 'in') {
    const values = Array.isArray(value) ? value : [value];
    const strings = values.filter((v): v is string => typeof v === 'string').map(encodeFilterText);
    const numbers = values.filter((v): v is number => typeof v === 'number').map(checkNumber);
    const booleans = values.filter((v): v is boolean => typeof v === 'boolean');
    // The client picks valueIntArray / valueNumberArray only for homogeneous arrays, so ints and floats go apart.
    const ints = numbers.filter((n) => Number.isInteger(n));
    const floats = numbers.filter((n) => !Number.isInteger(n));
    const parts: TranslatedFilter[] = [];
    if (strings.length > 0) parts.push(leaf('ContainsAny', property('s'), unique(strings)));
    if (ints.length > 0) parts.push(leaf('ContainsAny', property('n'), unique(ints)));
    if (floats.length > 0) parts.push(leaf('ContainsAny', property('n'), unique(floats)));
    if (booleans.length > 0) parts.push(leaf('ContainsAny', property('b'), unique(booleans)));
    return combine('Or', parts);
  }
  if (Array.isArray(value)) throw badInput(`The "${op}" filter operator takes one value.`, { operator: op });

  if (op === 'contains') {
    if (typeof value === 'string') {
      return combine('Or', [
        leaf('ContainsAny', property('sa'), [encodeFilterText(value)]),
        leaf('Like', property('s'), `*${encodeBody(value)}*`),
      ]);
    }
    if (typeof value === 'number') return leaf('ContainsAny', property('na'), [checkNumber(value)]);
    return leaf('ContainsAny', property('ba'), [value]);
  }

  const [type, v] = typedScalar(value);
  const name = property(type);
  switch (op) {
    case 'eq':
      return leaf('Equal', name, v);
    case 'ne':
      // NotEqual is a deny list in Weaviate: objects without the property (missing, null, or another type, which
      // lives in another property) match, exactly the port's "missing or differs".
      return name === null ? ALL : leaf('NotEqual', name, v);
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      if (type === 'b') throw badInput(`The "${op}" filter operator compares numbers or strings, not booleans.`, { operator: op });
      return leaf(RANGE_OPERATORS[op], name, v);
  }
}

const RANGE_OPERATORS = {
  gt: 'GreaterThan',
  gte: 'GreaterThanEqual',
  lt: 'LessThan',
  lte: 'LessThanEqual',
} as const satisfies Partial<Record<FilterOp, FilterValue['operator']>>;

function typedScalar(value: FilterScalar): ['s' | 'n' | 'b', string | number | boolean] {
  if (typeof value === 'string') return ['s', encodeFilterText(value)];
  if (typeof value === 'number') return ['n', checkNumber(value)];
  return ['b', value];
}

function checkNumber(value: number): number {
  if (!Number.isFinite(value)) throw badInput('Filter numbers must be finite.');
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw badInput('Weaviate cannot filter exactly on integers beyond ±(2^53 - 1).', { value: String(value) });
  }
  return value;
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

// ------------------------------------------------------------------ the same semantics, in process

/**
 * Evaluates a port filter against a document record, with the port's semantics (and the byte order Weaviate and
 * SQLite use for strings). The store applies it to search hits: chunk properties are copies of their document's
 * metadata and can lag behind it after an interrupted metadata update; the document record is authoritative.
 */
export function matchesDocument(filter: Filter, doc: DocumentRecord): boolean {
  switch (filter.kind) {
    case 'and':
      return filter.filters.every((f) => matchesDocument(f, doc));
    case 'or':
      return filter.filters.some((f) => matchesDocument(f, doc));
    case 'condition': {
      const field = filter.field;
      let actual: MetadataValue | undefined;
      if (field.type === 'builtin') {
        actual = field.name === 'documentId' ? doc.id : doc[field.name];
      } else {
        actual = Object.prototype.hasOwnProperty.call(doc.metadata, field.key) ? doc.metadata[field.key] : undefined;
      }
      return matchesCondition(actual ?? null, filter.op, filter.value);
    }
  }
}

function matchesCondition(actual: MetadataValue, op: FilterOp, value: FilterScalar | FilterScalar[]): boolean {
  const isScalar = (v: MetadataValue): v is FilterScalar =>
    typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
  const equal = (a: MetadataValue, b: FilterScalar): boolean => isScalar(a) && typeof a === typeof b && a === b;
  switch (op) {
    case 'eq':
      return !Array.isArray(value) && equal(actual, value);
    case 'ne':
      return !Array.isArray(value) && !equal(actual, value);
    case 'in':
      return (Array.isArray(value) ? value : [value]).some((v) => equal(actual, v));
    case 'contains':
      if (Array.isArray(value)) return false;
      if (Array.isArray(actual)) return actual.some((element) => equal(element, value));
      return typeof actual === 'string' && typeof value === 'string' && actual.includes(value);
    default: {
      if (Array.isArray(value) || !isScalar(actual) || typeof actual !== typeof value || typeof value === 'boolean') return false;
      const order = typeof value === 'number' ? Math.sign((actual as number) - value) : compareUtf8(actual as string, value);
      if (op === 'gt') return order > 0;
      if (op === 'gte') return order >= 0;
      if (op === 'lt') return order < 0;
      return order <= 0;
    }
  }
}

/** Byte-wise comparison of the UTF-8 encodings (Weaviate's and SQLite's string order). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// ------------------------------------------------------------------ the store's own queries

export function eq(property: string, value: string): FilterValue {
  return { operator: 'Equal', target: { property }, value };
}

export function cmp(operator: 'GreaterThanEqual' | 'LessThan', property: string, value: number): FilterValue {
  return { operator, target: { property }, value };
}

export function byIds(ids: string[]): FilterValue {
  return { operator: 'ContainsAny', target: { property: '_id' }, value: ids };
}

export function andOf(...filters: FilterValue[]): FilterValue {
  return { operator: 'And', filters, value: null };
}

export function orOf(...filters: FilterValue[]): FilterValue {
  return { operator: 'Or', filters, value: null };
}
