import type { BaseContext } from '@apollo/server';
import type { SyncPlugin } from './composite.plugin';
import {
  GraphQLError,
  Kind,
  valueFromASTUntyped,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import { AppError } from '../../errors';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../pagination';

export interface QueryLimits {
  /** Deepest selection nesting (a root field is depth 1). */
  maxDepth: number;
  /** Highest estimated cost (see {@link estimateOperation}). */
  maxCost: number;
  /** Most aliased fields. */
  maxAliases: number;
  /**
   * The largest topK the services accept: a bigger one is refused by them (BAD_USER_INPUT) before anything runs, so
   * it counts as this much. `first` counts as at most MAX_PAGE_SIZE for the same reason.
   */
  maxTopK: number;
  /**
   * Whether introspection is served. Then root `__schema`/`__type` selections are measured on their own, against
   * {@link INTROSPECTION_MAX_DEPTH} and {@link INTROSPECTION_MAX_COST} instead of `maxDepth` and `maxCost` (aliases
   * count as everywhere): the standard introspection query of
   * graphql-js nests 15 levels (its `ofType` chain), and GraphiQL, Sandbox, codegen and schema tools send it as is.
   * @default false
   */
  introspection?: boolean;
}

/**
 * Deepest nesting of a root `__schema`/`__type` selection where introspection is on: room for graphql-js's
 * `getIntrospectionQuery()` with every option (15 levels) and older tools' variants, and no more, since an
 * introspection field's cost is its nesting (`ofType { ofType { … } }`, `fields { type { fields … } }`).
 */
export const INTROSPECTION_MAX_DEPTH = 20;
/** Highest estimated cost of the introspection selections (the standard query with every option costs 229). */
export const INTROSPECTION_MAX_COST = 2_000;
const INTROSPECTION_ROOTS: ReadonlySet<string> = new Set(['__schema', '__type']);

/**
 * What a field costs before its children, by field name: the expensive ones call the embedder, the store and (ask)
 * the synthesizer. Every other field costs 1.
 */
export const FIELD_COSTS: Readonly<Record<string, number>> = {
  search: 10,
  ask: 50,
  askStream: 50,
  ingestDocuments: 50,
  startIngestion: 50,
  previewChunks: 10,
};

/**
 * How many times a field's children are resolved when its `topK`/`first` argument is absent: the default topK of
 * search and ask, the default page of connections. Any other field: once.
 */
const DEFAULT_MULTIPLIERS: Readonly<Record<string, number>> = {
  search: 10,
  ask: 5,
  askStream: 5,
  collections: DEFAULT_PAGE_SIZE,
  documents: DEFAULT_PAGE_SIZE,
  chunks: DEFAULT_PAGE_SIZE,
};

export interface OperationFigures {
  depth: number;
  aliases: number;
  cost: number;
}

/**
 * Depth, alias count and estimated cost of one operation, fragments expanded (each fragment computed once, so a
 * fragment "bomb" costs linear time; a fragment cycle, which validation rejects anyway, counts as too deep).
 *
 * cost(field) = own cost ({@link FIELD_COSTS}, else 1) + multiplier × cost(children), where the multiplier is the
 * field's `topK` or `first` argument (variables resolved; when absent, search 10, ask 5, connections 20), else 1 — so `topK`
 * multiplies what a search returns, and nested connections multiply each other.
 */
export function estimateOperation(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown> = {},
  caps: { topK: number; first: number } = { topK: 200, first: MAX_PAGE_SIZE },
): OperationFigures {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const memo = new Map<string, OperationFigures>();
  const visiting = new Set<string>();

  const walk = (set: SelectionSetNode): OperationFigures => {
    let depth = 0;
    let aliases = 0;
    let cost = 0;
    for (const selection of set.selections) {
      let inner: OperationFigures;
      if (selection.kind === Kind.FIELD) {
        const child = selection.selectionSet ? walk(selection.selectionSet) : { depth: 0, aliases: 0, cost: 0 };
        const own = selection.name.value.startsWith('__') ? 0 : (FIELD_COSTS[selection.name.value] ?? 1);
        inner = {
          depth: child.depth + 1,
          aliases: child.aliases + (selection.alias ? 1 : 0),
          cost: own + multiplier(selection.name.value, selection.arguments ?? [], variables, caps) * child.cost,
        };
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        inner = walk(selection.selectionSet);
      } else {
        const name = selection.name.value;
        const known = memo.get(name);
        if (known) inner = known;
        else {
          const fragment = fragments.get(name);
          if (!fragment || visiting.has(name)) inner = { depth: Infinity, aliases: 0, cost: 0 };
          else {
            visiting.add(name);
            inner = walk(fragment.selectionSet);
            visiting.delete(name);
            memo.set(name, inner);
          }
        }
      }
      depth = Math.max(depth, inner.depth);
      aliases += inner.aliases;
      cost += inner.cost;
    }
    return { depth, aliases, cost };
  };
  return walk(operation.selectionSet);
}

function multiplier(
  field: string,
  args: readonly { name: { value: string }; value: Parameters<typeof valueFromASTUntyped>[0] }[],
  variables: Record<string, unknown>,
  caps: { topK: number; first: number },
): number {
  const fallback = DEFAULT_MULTIPLIERS[field] ?? 1;
  const arg = args.find((a) => a.name.value === 'topK' || a.name.value === 'first');
  if (!arg) return fallback;
  const value = valueFromASTUntyped(arg.value, variables);
  const cap = arg.name.value === 'topK' ? caps.topK : caps.first;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.min(value, cap) : fallback;
}

/**
 * The limit an operation breaks, as the AppError to answer with (QUERY_TOO_DEEP or QUERY_TOO_COMPLEX, with the figure
 * and the limit in its details), or null when it is within all of them. Shared by HTTP (the plugin below) and the
 * WebSocket transport, so both refuse the same operations.
 */
export function checkOperationLimits(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  limits: QueryLimits,
): AppError | null {
  const caps = { topK: limits.maxTopK, first: MAX_PAGE_SIZE };
  let measured = operation;
  let aliasesElsewhere = 0;
  if (limits.introspection) {
    const isIntrospection = (s: SelectionNode) => s.kind === Kind.FIELD && INTROSPECTION_ROOTS.has(s.name.value);
    const introspection = operation.selectionSet.selections.filter(isIntrospection);
    if (introspection.length > 0) {
      const own = estimateOperation(
        document,
        { ...operation, selectionSet: { ...operation.selectionSet, selections: introspection } },
        variables,
        caps,
      );
      if (own.depth > INTROSPECTION_MAX_DEPTH) {
        return new AppError(
          'QUERY_TOO_DEEP',
          `The introspection selection nests ${Number.isFinite(own.depth) ? own.depth : 'endlessly'} levels deep; the limit is ${INTROSPECTION_MAX_DEPTH}.`,
          { maxDepth: INTROSPECTION_MAX_DEPTH },
        );
      }
      if (own.cost > INTROSPECTION_MAX_COST) {
        return new AppError(
          'QUERY_TOO_COMPLEX',
          `The introspection selection's estimated cost is ${own.cost}; the limit is ${INTROSPECTION_MAX_COST}.`,
          { cost: own.cost, maxCost: INTROSPECTION_MAX_COST },
        );
      }
      aliasesElsewhere = own.aliases;
      measured = {
        ...operation,
        selectionSet: { ...operation.selectionSet, selections: operation.selectionSet.selections.filter((s) => !isIntrospection(s)) },
      };
    }
  }
  const figures = estimateOperation(document, measured, variables, caps);
  if (figures.depth > limits.maxDepth) {
    return new AppError(
      'QUERY_TOO_DEEP',
      `The operation nests ${Number.isFinite(figures.depth) ? figures.depth : 'endlessly'} levels deep; the limit is ${limits.maxDepth}.`,
      { maxDepth: limits.maxDepth },
    );
  }
  const aliases = figures.aliases + aliasesElsewhere;
  if (aliases > limits.maxAliases) {
    return new AppError('QUERY_TOO_COMPLEX', `The operation has ${aliases} aliases; the limit is ${limits.maxAliases}.`, {
      aliases,
      maxAliases: limits.maxAliases,
    });
  }
  if (figures.cost > limits.maxCost) {
    return new AppError('QUERY_TOO_COMPLEX', `The operation's estimated cost is ${figures.cost}; the limit is ${limits.maxCost}.`, {
      cost: figures.cost,
      maxCost: limits.maxCost,
    });
  }
  return null;
}

/**
 * Rejects an operation over the depth, alias or cost limits after it is parsed and validated and before anything
 * executes (no resolver, store or embedder call): QUERY_TOO_DEEP or QUERY_TOO_COMPLEX, HTTP 400, with the figure and
 * the limit in `extensions`.
 */
export function createQueryLimitsPlugin<TContext extends BaseContext>(limits: QueryLimits): SyncPlugin<TContext> {
  return {
    requestDidStart() {
      return {
        didResolveOperation({ document, operation, request }) {
          if (!operation) return;
          const broken = checkOperationLimits(document, operation, request.variables ?? {}, limits);
          if (broken) throw reject(broken);
        },
      };
    },
  };
}

/** A GraphQLError Apollo answers with HTTP 400, carrying the AppError that `formatError` shows. */
function reject(error: AppError): GraphQLError {
  return new GraphQLError(error.message, { originalError: error, extensions: { http: { status: error.status } } });
}
