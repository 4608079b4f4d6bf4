import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_INPUT_NESTING, textNestingExceeds, valueNestingExceeds } from '../../src/graphql/input-depth';
import { gql } from '../helpers/security';
import { startTestServer, type TestApp } from '../helpers/test-app';

const SEARCH = 'query($f: FilterInput) { search(collection: "handbook", query: "vacation", filter: $f) { hits { score } } }';
const LEAF = '{"field":"title","eq":"x"}';
/** `{"and":[{"and":[… leaf …]}]}` as JSON text, `levels` filters deep (built as text: JSON.stringify recurses). */
const deepFilterJson = (levels: number) => `${'{"and":['.repeat(levels)}${LEAF}${']}'.repeat(levels)}`;

describe('deeply nested input is refused with BAD_USER_INPUT before parsing and coercion', () => {
  let t: TestApp, url: string;
  before(async () => {
    ({ t, url } = await startTestServer({ NODE_ENV: 'development' }));
    await gql(url, { query: 'mutation { createCollection(input: { name: "handbook" }) { id } }' });
  });
  after(() => t.close());

  it('100,000 levels of filter in variables → 400 BAD_USER_INPUT (was a RangeError → INTERNAL_SERVER_ERROR)', async () => {
    const body = `{"query":${JSON.stringify(SEARCH)},"variables":{"f":${deepFilterJson(100_000)}}}`;
    const res = await gql(url, body);
    assert.equal(res.status, 400);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'BAD_USER_INPUT');
    assert.match(res.json.errors[0].message, /variables nest more than 64/);
  });

  it('1,000 levels of filter as a literal → 400 BAD_USER_INPUT (was "Maximum call stack size exceeded")', async () => {
    const literal = `${'{ and: ['.repeat(1000)}{ field: "title", eq: "x" }${'] }'.repeat(1000)}`;
    const res = await gql(url, { query: `{ search(collection: "handbook", query: "vacation", filter: ${literal}) { hits { score } } }` });
    assert.equal(res.status, 400);
    assert.equal(res.json.errors?.[0]?.extensions?.['code'], 'BAD_USER_INPUT');
    assert.doesNotMatch(JSON.stringify(res.json), /call stack/);
  });

  it('over GET too, and a filter of ordinary depth still runs', async () => {
    const params = new URLSearchParams({ query: SEARCH, variables: `{"f":${deepFilterJson(200)}}` });
    const get = await fetch(`${url}/graphql?${params}`, { headers: { 'apollo-require-preflight': 'true' } });
    assert.equal(get.status, 400);
    assert.equal(((await get.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code, 'BAD_USER_INPUT');
    const ok = await gql(url, `{"query":${JSON.stringify(SEARCH)},"variables":{"f":${deepFilterJson(5)}}}`);
    assert.equal(ok.status, 200, JSON.stringify(ok.json.errors));
    assert.deepEqual(ok.json.data, { search: { hits: [] } });
  });

  it('counts brackets outside strings, block strings and comments only', () => {
    const deep = '['.repeat(MAX_INPUT_NESTING + 1);
    assert.equal(textNestingExceeds(`{ a(s: "${deep}") }`, MAX_INPUT_NESTING), false);
    assert.equal(textNestingExceeds(`{ a(s: """${deep} \\""" ${deep}""") }`, MAX_INPUT_NESTING), false);
    assert.equal(textNestingExceeds(`# ${deep}\n{ a }`, MAX_INPUT_NESTING), false);
    assert.equal(textNestingExceeds(`{ a(s: "\\"") ${deep} }`, MAX_INPUT_NESTING), true);
    assert.equal(valueNestingExceeds({ a: [[['x']]] }, 4), false);
    assert.equal(valueNestingExceeds({ a: [[[['x']]]] }, 4), true);
    assert.equal(valueNestingExceeds('scalar', 0), false);
  });
});
