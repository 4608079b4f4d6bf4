import { HeaderMap, type BaseContext, type GraphQLRequestContextResponseForOperation } from '@apollo/server';
import {
  getArgumentValues,
  getNamedType,
  isObjectType,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { ROLES, type Principal } from '../../ports/principal.port';
import { assertRole, authOf } from '../directives/auth.directive';
import { rateLimitOf } from '../directives/rate-limit.directive';
import type { SyncPlugin } from './composite.plugin';

/** How one cacheable root field decides whether a stored response is still its answer. */
export interface ResponseCacheRoot<TContext> {
  /**
   * A string that changes whenever the field's result may change for this caller, e.g. `<collection id>:<version>`;
   * read on every request, hit or miss. Throwing (NOT_FOUND, …) serves nothing from the cache: the request executes and
   * reports the error itself.
   */
  dependency(args: Record<string, unknown>, context: TContext): Promise<string>;
}

export interface ResponseCachePluginOptions<TContext> {
  /** The executable schema: root fields carry their `@auth` requirement and `@rateLimit` counter in their extensions. */
  schema: GraphQLSchema;
  /** Query fields whose responses may be cached, by name. */
  roots: Readonly<Record<string, ResponseCacheRoot<TContext>>>;
  /**
   * The fields (`Type.field`) an operation may select below those roots and still be cached: fields whose values are
   * a function of the root's dependency (no timings, no per-caller data, no arguments). Anything else selected, and
   * the operation always executes.
   */
  fields: ReadonlySet<string>;
  /** Callers of one scope may share responses; null: this caller's responses are never cached or served. */
  scope(context: TContext): string | null;
  /** How long a response is kept, in seconds; 0 turns the plugin off. */
  ttlSeconds: number;
  /**
   * Responses kept, most recently used first.
   * @default 256
   */
  maxEntries?: number;
  /**
   * Characters of JSON kept in all (a response's size is its JSON length, measured once when stored); a response
   * larger than a quarter of it is not kept.
   * @default 16 MiB (16,777,216)
   */
  maxChars?: number;
  /** Called per cacheable request: served from the cache, or executed (and then stored). Must not throw. */
  onLookup?(result: 'hit' | 'miss'): void;
}

/** A cacheable operation: its root fields, each with what it needs on every request. */
interface Plan {
  roots: { field: GraphQLField<unknown, unknown>; node: FieldNode; policy: ResponseCacheRoot<unknown> }[];
}

interface Entry {
  data: Record<string, unknown>;
  /** Its JSON length, counted against `maxChars`. */
  chars: number;
  /** Each root's coerced arguments: the key holds the variables, so they are the same for every request of the entry. */
  args: Record<string, unknown>[];
  dependencies: string;
  expires: number;
}

/** The header with which a federation router asks for an inline trace: such requests always execute. */
const INLINE_TRACE_HEADER = 'apollo-federation-include-trace';
const LEAST_ROLE = ROLES[0];

/**
 * A response cache in front of execution: a query that selects only cacheable root fields (`roots`) and fields below
 * them that depend on nothing else (`fields`) is answered from a response stored by an earlier identical request —
 * same document, operation, variables and caller scope, and the same dependency strings now (read on every request,
 * so a write makes every stored response of the collection unreachable at once). What execution would have done
 * around the resolvers still happens on a hit: each root field's `@auth` check and `@rateLimit` charge (a refused
 * check or an exhausted budget executes the request instead, which reports it), and the other plugins' hooks.
 *
 * In process only: a response is a tree of objects, kept (read-only) and handed to Apollo's serialiser as it is.
 * Execution is what it skips: graphql-js walking every field of every hit, the resolver wrappers and the services.
 */
export function createResponseCachePlugin<TContext extends BaseContext & { principal: Principal | null }>(
  options: ResponseCachePluginOptions<TContext>,
): SyncPlugin<TContext> {
  const { schema, ttlSeconds } = options;
  const maxEntries = options.maxEntries ?? 256;
  const maxChars = options.maxChars ?? 16 * 1024 * 1024;
  let chars = 0;
  const queryType = schema.getQueryType();
  checkFields(schema, options);
  const entries = new Map<string, Entry>();
  const plans = new WeakMap<DocumentNode, Map<string, Plan | null>>();
  const forget = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    chars -= entry.chars;
  };
  const lookup = (result: 'hit' | 'miss') => {
    try {
      options.onLookup?.(result);
    } catch {
      // A metrics hook must not fail a request.
    }
  };

  /** The operation's plan, from the parsed document (Apollo keeps one object per cached document). */
  const planOf = (ctx: GraphQLRequestContextResponseForOperation<TContext>): Plan | null => {
    const name = ctx.operationName ?? '';
    let byName = plans.get(ctx.document);
    if (!byName) plans.set(ctx.document, (byName = new Map<string, Plan | null>()));
    let plan = byName.get(name);
    if (plan === undefined) {
      plan = queryType ? analyse(ctx.document, ctx.operation, queryType, options) : null;
      byName.set(name, plan);
    }
    return plan;
  };

  /** What each root depends on now, one line per root. */
  const dependenciesOf = async (plan: Plan, args: Record<string, unknown>[], context: TContext): Promise<string> =>
    (await Promise.all(plan.roots.map((root, i) => root.policy.dependency(args[i]!, context)))).join('\n');

  return {
    requestDidStart(requestContext) {
      if (ttlSeconds <= 0 || requestContext.request.http?.headers.get(INLINE_TRACE_HEADER)) return;
      let pending: { key: string; args: Record<string, unknown>[]; dependencies: string } | null = null;
      return {
        async responseForOperation(ctx) {
          const plan = planOf(ctx);
          const scope = plan && options.scope(ctx.contextValue);
          if (!plan || scope === null || !ctx.queryHash) return null;
          const variables = ctx.request.variables ?? {};
          const key = `${ctx.queryHash}\n${ctx.operationName ?? ''}\n${scope}\n${JSON.stringify(variables)}`;
          const entry = entries.get(key);
          let args: Record<string, unknown>[];
          let dependencies: string;
          try {
            // The checks execution makes first, so a refused caller learns nothing and costs nothing here.
            for (const root of plan.roots) {
              const auth = authOf(root.field);
              if (auth) assertRole(ctx.contextValue.principal, auth.requires);
            }
            // An entry's arguments are this request's: the key holds the variables.
            args = entry?.args ?? plan.roots.map((root) => getArgumentValues(root.field, root.node, variables));
            dependencies = await dependenciesOf(plan, args, ctx.contextValue);
            if (entry && entry.dependencies === dependencies && entry.expires > Date.now()) {
              for (const root of plan.roots) await rateLimitOf(root.field)?.charge(ctx.contextValue as never);
              // Most recently used now, unless it was replaced or evicted while this request waited.
              if (entries.get(key) === entry) {
                entries.delete(key);
                entries.set(key, entry);
              }
              lookup('hit');
              return {
                http: { status: undefined, headers: new HeaderMap() },
                body: { kind: 'single', singleResult: { data: entry.data } },
              };
            }
          } catch {
            // Refused, not found, or a budget spent: execution checks again and answers with the error itself.
            return null;
          }
          lookup('miss');
          // Read before execution: a write while it runs bumps the dependency, so this entry is never served after it.
          pending = { key, args, dependencies };
          return null;
        },
        willSendResponse({ response }) {
          if (!pending || response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          if (errors?.length || !data) return;
          const size = JSON.stringify(data).length;
          if (size <= maxChars / 4) {
            forget(pending.key);
            entries.set(pending.key, {
              data,
              chars: size,
              args: pending.args,
              dependencies: pending.dependencies,
              expires: Date.now() + ttlSeconds * 1000,
            });
            chars += size;
            while (entries.size > maxEntries || chars > maxChars) forget(entries.keys().next().value as string);
          }
          pending = null;
        },
      };
    },
  };
}

/** The plan of a query whose every selection the cache may answer, else null. */
function analyse<TContext>(
  document: DocumentNode,
  operation: OperationDefinitionNode | undefined,
  queryType: GraphQLObjectType,
  options: ResponseCachePluginOptions<TContext>,
): Plan | null {
  if (!operation || operation.operation !== OperationTypeNode.QUERY) return null;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const rootNodes: FieldNode[] = [];
  if (!collect(operation.selectionSet, queryType, fragments, rootNodes)) return null;
  const roots: Plan['roots'] = [];
  const responseKeys = new Set<string>();
  for (const node of rootNodes) {
    if (node.name.value === '__typename') continue;
    const policy = options.roots[node.name.value] as ResponseCacheRoot<unknown> | undefined;
    const field = queryType.getFields()[node.name.value];
    const responseKey = node.alias?.value ?? node.name.value;
    // The same response key twice would be merged by execution: rare enough to leave to it.
    if (!policy || !field || responseKeys.has(responseKey)) return null;
    responseKeys.add(responseKey);
    if (node.selectionSet && !selects(node.selectionSet, getNamedType(field.type), fragments, options.fields)) return null;
    roots.push({ field: field as GraphQLField<unknown, unknown>, node, policy });
  }
  return roots.length > 0 ? { roots } : null;
}

/** The fields of a selection set, through fragments; false when any selection carries a directive (@skip, @defer …). */
function collect(
  set: SelectionSetNode,
  type: GraphQLObjectType,
  fragments: Map<string, FragmentDefinitionNode>,
  out: FieldNode[],
): boolean {
  for (const selection of set.selections) {
    if (selection.directives?.length) return false;
    if (selection.kind === Kind.FIELD) out.push(selection);
    else {
      const fragment = selection.kind === Kind.INLINE_FRAGMENT ? selection : fragments.get(selection.name.value);
      if (!fragment || (fragment.typeCondition && fragment.typeCondition.name.value !== type.name)) return false;
      if (!collect(fragment.selectionSet, type, fragments, out)) return false;
    }
  }
  return true;
}

/** Whether everything selected below a root field is on the `fields` list. */
function selects(
  set: SelectionSetNode,
  type: ReturnType<typeof getNamedType>,
  fragments: Map<string, FragmentDefinitionNode>,
  fields: ReadonlySet<string>,
): boolean {
  if (!isObjectType(type)) return false;
  const nodes: FieldNode[] = [];
  if (!collect(set, type, fragments, nodes)) return false;
  for (const node of nodes) {
    if (node.name.value === '__typename') continue;
    const field = type.getFields()[node.name.value];
    if (!field || !fields.has(`${type.name}.${field.name}`)) return false;
    if (node.selectionSet && !selects(node.selectionSet, getNamedType(field.type), fragments, fields)) return false;
  }
  return true;
}

/**
 * At start-up: every listed field exists, takes no arguments, has no rate limit and needs no more than the least
 * role (its root's check covers it); every root is a Query field with an `@auth` check. A field that fails this
 * would let the cache serve what execution refuses.
 */
function checkFields<TContext>(schema: GraphQLSchema, options: ResponseCachePluginOptions<TContext>): void {
  const problems: string[] = [];
  for (const coordinate of options.fields) {
    const [typeName, fieldName] = coordinate.split('.');
    const type = schema.getType(typeName ?? '');
    const field = type && isObjectType(type) ? type.getFields()[fieldName ?? ''] : undefined;
    if (!field) problems.push(`${coordinate}: no such field`);
    else if (field.args.length > 0) problems.push(`${coordinate}: takes arguments`);
    else if (rateLimitOf(field)) problems.push(`${coordinate}: is rate-limited`);
    else if ((authOf(field)?.requires ?? LEAST_ROLE) !== LEAST_ROLE) problems.push(`${coordinate}: needs more than ${LEAST_ROLE}`);
  }
  for (const name of Object.keys(options.roots)) {
    const field = schema.getQueryType()?.getFields()[name];
    if (!field) problems.push(`Query.${name}: no such field`);
    else if (!authOf(field)) problems.push(`Query.${name}: has no @auth check`);
  }
  if (problems.length > 0) throw new Error(`Response cache: ${problems.join('; ')}`);
}
