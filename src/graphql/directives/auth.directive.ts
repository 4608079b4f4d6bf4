import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import {
  defaultFieldResolver,
  DirectiveLocation,
  GraphQLDirective,
  GraphQLEnumType,
  GraphQLNonNull,
  isObjectType,
  type GraphQLFieldConfig,
  type GraphQLSchema,
} from 'graphql';
import { AppError } from '../../errors';
import { hasRole, isRole, ROLES, type Principal, type Role } from '../../ports/principal.port';

export const AUTH_DIRECTIVE = 'auth';

export const RoleEnum = new GraphQLEnumType({
  name: 'Role',
  description: 'What a caller may do: READER reads and searches, WRITER also ingests and edits, ADMIN also deletes collections.',
  values: Object.fromEntries(ROLES.map((role) => [role, { value: role }])),
});

/** `directive @auth(requires: Role! = READER) on OBJECT | FIELD_DEFINITION` (type-graphql registers it). */
export const authDirective = new GraphQLDirective({
  name: AUTH_DIRECTIVE,
  description: 'The least role a caller needs for this field (or every field of this type). Enforced by kbql, not the router.',
  locations: [DirectiveLocation.FIELD_DEFINITION, DirectiveLocation.OBJECT],
  args: { requires: { type: new GraphQLNonNull(RoleEnum), defaultValue: 'READER' } },
});

/**
 * Fields anyone may call, even without credentials: federation's `_service` (the router reads the SDL). Everything
 * else is guarded. Introspection (`__schema`, `__type`) and `__typename` are not schema fields; introspection is
 * switched off in production instead.
 */
export const PUBLIC_FIELDS: ReadonlySet<string> = new Set(['Query._service', '_Service.sdl']);

/**
 * Root fields the schema gets from elsewhere (federation), with their requirement. `_entities` needs READER, and each
 * entity is checked again by its reference resolver through the request's loaders (another tenant's → null).
 */
/** The least role: what every guarded root field requires at minimum. */
const LEAST_ROLE: Role = ROLES[0];

const BUILT_IN_ROOT_FIELDS: Readonly<Record<string, Role>> = { 'Query._entities': 'READER' };

/** Where the requirement of a guarded field is kept (`field.extensions.kbqlAuth`): the schema-walk test reads it. */
export interface AuthExtension {
  requires: Role;
  /** Where the requirement comes from. */
  source: 'field' | 'type' | 'built-in' | 'default';
}

/**
 * Enforces `@auth` on the built schema (a `mapSchema` transform; apply it after every other resolver wrapper that
 * should run behind the check, e.g. rate limiting, so a refused caller consumes nothing):
 * - a root field (Query, Mutation) needs its own `@auth`, or a built-in requirement, or a place on
 *   {@link PUBLIC_FIELDS} — otherwise building the schema fails: a root field nobody guarded is a bug;
 * - any other field takes its own `@auth`, else its type's, else READER (it is reachable only through root fields
 *   and `_entities`, and guarding it too means no path skips the check).
 * No principal → UNAUTHENTICATED; too weak a role → FORBIDDEN with `requires`; neither runs the resolver.
 */
export function applyAuthDirective<TContext extends { principal: Principal | null }>(schema: GraphQLSchema): GraphQLSchema {
  const roots = new Set([schema.getQueryType()?.name, schema.getMutationType()?.name, schema.getSubscriptionType()?.name].filter(Boolean));
  const unguarded: string[] = [];
  const mapped = mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig: GraphQLFieldConfig<unknown, TContext>, fieldName, typeName) => {
      const coordinate = `${typeName}.${fieldName}`;
      if (PUBLIC_FIELDS.has(coordinate)) return fieldConfig;
      const own = requirementOf(getDirective(schema, fieldConfig, AUTH_DIRECTIVE)?.[0]);
      const type = schema.getType(typeName);
      const ofType = type && isObjectType(type) ? requirementOf(getDirective(schema, type, AUTH_DIRECTIVE)?.[0]) : null;
      const builtIn = BUILT_IN_ROOT_FIELDS[coordinate] ?? null;
      let auth: AuthExtension;
      if (own) auth = { requires: own, source: 'field' };
      else if (builtIn) auth = { requires: builtIn, source: 'built-in' };
      else if (ofType) auth = { requires: ofType, source: 'type' };
      else if (!roots.has(typeName)) auth = { requires: 'READER', source: 'default' };
      else {
        unguarded.push(coordinate);
        return fieldConfig;
      }
      // Every root field needs a principal and at least READER, the least role, and the principal is one per request:
      // a nested field that needs only READER can add nothing to its root's check, so it is not wrapped (it keeps its
      // requirement in `extensions.kbqlAuth`). Wrapping every field of every hit was a call per field on the hot path.
      if (auth.requires === LEAST_ROLE && !roots.has(typeName))
        return { ...fieldConfig, extensions: { ...fieldConfig.extensions, kbqlAuth: auth } };
      return guard<TContext>(fieldConfig, auth);
    },
  });
  if (unguarded.length > 0) {
    throw new Error(`Root fields without @auth and not on the public list: ${unguarded.join(', ')}`);
  }
  return mapped;
}

/** The requirement `applyAuthDirective` recorded on a field (`extensions.kbqlAuth`), or null for a public field. */
export function authOf(field: { extensions?: Readonly<Record<string, unknown>> | null }): AuthExtension | null {
  return (field.extensions?.['kbqlAuth'] as AuthExtension | undefined) ?? null;
}

/** The check of a guarded field: no principal → UNAUTHENTICATED; too weak a role → FORBIDDEN with `requires`. */
export function assertRole(principal: Principal | null, requires: Role): void {
  if (!principal) throw new AppError('UNAUTHENTICATED');
  if (!hasRole(principal, requires)) {
    throw new AppError('FORBIDDEN', `This needs the ${requires} role; you have ${principal.role}.`, { requires });
  }
}

function requirementOf(args: Record<string, unknown> | undefined): Role | null {
  if (!args) return null;
  const requires = args['requires'] ?? 'READER';
  if (!isRole(requires))
    throw new Error(`@auth(requires: ${typeof requires === 'string' ? requires : JSON.stringify(requires)}) names no role`);
  return requires;
}

function guard<TContext extends { principal: Principal | null }>(
  fieldConfig: GraphQLFieldConfig<unknown, TContext>,
  auth: AuthExtension,
): GraphQLFieldConfig<unknown, TContext> {
  const resolve = fieldConfig.resolve ?? defaultFieldResolver;
  const subscribe = fieldConfig.subscribe;
  const { requires } = auth;
  const check = (principal: Principal | null) => assertRole(principal, requires);
  return {
    ...fieldConfig,
    extensions: { ...fieldConfig.extensions, kbqlAuth: auth },
    resolve(source, args, context, info) {
      check(context.principal);
      return resolve(source, args, context, info);
    },
    // A subscription field starts its stream in `subscribe`: checked there, before any work starts.
    ...(subscribe
      ? {
          subscribe(source: unknown, args: Record<string, unknown>, context: TContext, info: Parameters<typeof resolve>[3]) {
            check(context.principal);
            return subscribe(source, args, context, info);
          },
        }
      : {}),
  };
}
