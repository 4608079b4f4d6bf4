import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../src/errors';
import { compileFilter, FILTER_LIMITS } from '../../src/modules/query/filter';

const rejects = (spec: unknown, pattern: RegExp) =>
  assert.throws(
    () => compileFilter(spec as never),
    (error: unknown) => error instanceof AppError && error.code === 'BAD_USER_INPUT' && pattern.test(error.message),
  );

describe('compileFilter', () => {
  it('compiles combinators, builtins and metadata keys', () => {
    const filter = compileFilter({
      and: [
        { field: 'source', eq: 'wiki' },
        {
          or: [
            { field: 'metadata.year', gte: 2020 },
            { field: 'metadata.tags', contains: 'x' },
          ],
        },
      ],
    });
    assert.deepEqual(filter, {
      kind: 'and',
      filters: [
        { kind: 'condition', field: { type: 'builtin', name: 'source' }, op: 'eq', value: 'wiki' },
        {
          kind: 'or',
          filters: [
            { kind: 'condition', field: { type: 'metadata', key: 'year' }, op: 'gte', value: 2020 },
            { kind: 'condition', field: { type: 'metadata', key: 'tags' }, op: 'contains', value: 'x' },
          ],
        },
      ],
    });
    assert.equal(compileFilter(null), undefined);
  });

  it('rejects ambiguous or malformed conditions with the path', () => {
    rejects({ field: 'source', eq: 'a', ne: 'b' }, /exactly one operator/);
    rejects({ field: 'source' }, /exactly one operator/);
    rejects({ eq: 'a' }, /needs a "field"/);
    rejects({ and: [{ field: 'source', eq: 'a' }], field: 'title', eq: 'b' }, /either/);
    rejects({ and: [] }, /must not be empty/);
    rejects({ field: 'metadata.bad key', eq: 1 }, /not filterable/);
    rejects({ field: 'author', eq: 1 }, /not filterable/);
    rejects({ field: 'metadata.x', eq: { nested: true } }, /strings, finite numbers or booleans/);
    rejects({ field: 'metadata.x', gt: true }, /not booleans/);
    rejects({ field: 'metadata.x', in: [] }, /1 to/);
    rejects(
      {
        or: [
          {
            and: [
              { field: 'metadata.x', eq: 1 },
              { field: 'metadata.y', eq: { a: 1 } },
            ],
          },
        ],
      },
      /filter\.or\[0\]\.and\[1\]\.eq/,
    );
  });

  it('bounds depth and size', () => {
    let deep: unknown = { field: 'title', eq: 'x' };
    for (let i = 0; i < FILTER_LIMITS.maxDepth; i++) deep = { and: [deep] };
    rejects(deep, /nest at most/);
    const wide = { or: Array.from({ length: FILTER_LIMITS.maxConditions + 1 }, (_, i) => ({ field: 'metadata.n', eq: i })) };
    rejects(wide, /at most \d+ conditions/);
  });
});
