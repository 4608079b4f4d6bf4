import 'reflect-metadata';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildSchema,
  getNamedType,
  isAbstractType,
  isObjectType,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLResolveInfo,
} from 'graphql';
import { applyAuthDirective, PUBLIC_FIELDS, type AuthExtension } from '../../src/graphql/directives/auth.directive';
import { buildKbqlSchema } from '../../src/app/schema';
import { isAppError } from '../../src/errors';
import type { Principal } from '../../src/ports/principal.port';

const reader: Principal = { kind: 'user', subject: 'r', tenant: 't', role: 'READER' };

/** Calls a subscription field's `subscribe` as graphql-ws would, returning what it threw (or undefined). */
async function subscribeThrownBy(field: GraphQLField<unknown, unknown>, principal: Principal | null): Promise<unknown> {
  try {
    await field.subscribe!({}, {}, { principal, clientIp: '127.0.0.1' }, { fieldName: field.name } as GraphQLResolveInfo);
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Calls a field's resolver as the executor would, returning what it threw (or undefined). */
async function thrownBy(field: GraphQLField<unknown, unknown>, principal: Principal | null): Promise<unknown> {
  try {
    await field.resolve!({}, {}, { principal, clientIp: '127.0.0.1' }, { fieldName: field.name } as GraphQLResolveInfo);
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('@auth: the whole schema is guarded (schema walk)', () => {
  it('every field of every object type is guarded by @auth or on the explicit public list, and the guard refuses', async () => {
    const schema = await buildKbqlSchema();
    const roots = new Set([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].map((t) => t?.name));
    const unguarded: string[] = [];
    const notEnforced: string[] = [];
    let guarded = 0;
    let coveredByRoot = 0;
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      for (const field of Object.values(type.getFields())) {
        const coordinate = `${type.name}.${field.name}`;
        if (PUBLIC_FIELDS.has(coordinate)) continue;
        const auth = field.extensions['kbqlAuth'] as AuthExtension | undefined;
        if (!auth) {
          unguarded.push(coordinate);
          continue;
        }
        // A nested field that needs only READER (the least role) is reached through a guarded root field, whose check
        // already refused anonymous callers: it carries its requirement but no guard of its own (see the next test).
        if (!roots.has(type.name) && auth.requires === 'READER') {
          coveredByRoot++;
          continue;
        }
        if (!field.resolve) {
          unguarded.push(coordinate);
          continue;
        }
        guarded++;
        const anonymous = await thrownBy(field, null);
        if (!(isAppError(anonymous) && anonymous.code === 'UNAUTHENTICATED')) notEnforced.push(`${coordinate} (anonymous)`);
        if (auth.requires !== 'READER') {
          const weak = await thrownBy(field, reader);
          if (!(isAppError(weak) && weak.code === 'FORBIDDEN')) notEnforced.push(`${coordinate} (READER)`);
        }
      }
    }
    assert.deepEqual(unguarded, [], 'fields neither guarded nor public');
    assert.deepEqual(notEnforced, [], 'guarded fields whose resolver did not refuse');
    assert.ok(guarded > 20 && coveredByRoot > 150, `walked ${guarded} guarded fields, ${coveredByRoot} covered by their root`);
  });

  it('nested READER fields are reachable only through guarded root fields: public roots lead to public fields only', async () => {
    const schema = await buildKbqlSchema();
    const rootTypes = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter(
      (t) => t !== null && t !== undefined,
    );
    // Every object type reachable from a public root field: all its fields must be public too.
    const seen = new Set<string>();
    const leaks: string[] = [];
    const visit = (type: GraphQLNamedType) => {
      if (seen.has(type.name) || type.name.startsWith('__')) return;
      seen.add(type.name);
      const members = isObjectType(type) ? [type] : isAbstractType(type) ? schema.getPossibleTypes(type) : [];
      for (const member of members) {
        seen.add(member.name);
        for (const field of Object.values(member.getFields())) {
          const coordinate = `${member.name}.${field.name}`;
          if (!PUBLIC_FIELDS.has(coordinate)) leaks.push(coordinate);
          visit(getNamedType(field.type));
        }
      }
    };
    for (const root of rootTypes)
      for (const field of Object.values(root.getFields()))
        if (PUBLIC_FIELDS.has(`${root.name}.${field.name}`)) visit(getNamedType(field.type));
    assert.deepEqual(leaks, []);
    // And every other root field refuses an anonymous caller before anything below it runs.
    for (const root of rootTypes)
      for (const field of Object.values(root.getFields())) {
        if (PUBLIC_FIELDS.has(`${root.name}.${field.name}`)) continue;
        const refused =
          root.name === schema.getSubscriptionType()?.name ? await subscribeThrownBy(field, null) : await thrownBy(field, null);
        assert.ok(isAppError(refused) && refused.code === 'UNAUTHENTICATED', `${root.name}.${field.name} refuses anonymous callers`);
      }
  });

  it('root fields carry explicit requirements: mutations need WRITER or more, deleteCollection ADMIN, _entities READER', async () => {
    const schema = await buildKbqlSchema();
    const requirement = (type: 'Query' | 'Mutation', name: string) =>
      (schema.getType(type) as ReturnType<typeof schema.getQueryType> & object).getFields()[name]!.extensions['kbqlAuth'] as AuthExtension;
    for (const field of Object.values(schema.getMutationType()!.getFields())) {
      const auth = field.extensions['kbqlAuth'] as AuthExtension;
      assert.equal(auth.source, 'field', `Mutation.${field.name} has its own @auth`);
      assert.notEqual(auth.requires, 'READER', `Mutation.${field.name}`);
    }
    assert.equal(requirement('Mutation', 'deleteCollection').requires, 'ADMIN');
    assert.deepEqual(requirement('Query', '_entities'), { requires: 'READER', source: 'built-in' });
    for (const field of Object.values(schema.getQueryType()!.getFields())) {
      if (PUBLIC_FIELDS.has(`Query.${field.name}`)) continue;
      assert.ok(
        ['field', 'built-in'].includes((field.extensions['kbqlAuth'] as AuthExtension).source),
        `Query.${field.name} is explicitly guarded`,
      );
    }
    assert.deepEqual([...PUBLIC_FIELDS].sort(), ['Query._service', '_Service.sdl']);
  });

  it('refuses to build a schema with an unguarded root field', () => {
    const schema = buildSchema(`
      directive @auth(requires: String) on FIELD_DEFINITION | OBJECT
      type Query { guarded: Int @auth(requires: "READER") forgotten: Int }
      type Mutation { alsoForgotten: Int }
    `);
    assert.throws(() => applyAuthDirective(schema), /Query\.forgotten, Mutation\.alsoForgotten/);
  });
});
