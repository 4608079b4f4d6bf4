import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CODEGEN, generateOperations } from '../../codegen';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('codegen (typed documents from schema/operations against schema/schema.graphql)', () => {
  it('reproduces the committed file exactly (run `npm run codegen` after changing an operation or the schema)', async () => {
    const content = await generateOperations();
    assert.equal(
      readFileSync(path.join(ROOT, CODEGEN.output), 'utf8'),
      content,
      `${CODEGEN.output} is stale: run \`npm run codegen\` and commit it`,
    );
  });

  it('notices a change: one more operation gives a different file', async () => {
    const content = await generateOperations(['query ExtraForTheTest { collections(first: 1) { totalCount } }']);
    assert.notEqual(readFileSync(path.join(ROOT, CODEGEN.output), 'utf8'), content);
    assert.match(content, /export const ExtraForTheTestDocument/);
  });
});
