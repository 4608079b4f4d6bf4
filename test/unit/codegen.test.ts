import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { generate } from '@graphql-codegen/cli';
import config from '../../codegen';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** Runs codegen in memory from the repository root, as `npm run codegen` does. */
async function generateInMemory(overrides: Partial<typeof config> = {}): Promise<Map<string, string>> {
  const outputs = (await generate({ ...config, ...overrides, cwd: ROOT, silent: true }, false)) as { filename: string; content: string }[];
  return new Map(outputs.map((o) => [path.relative(ROOT, path.resolve(ROOT, o.filename)), o.content]));
}

describe('codegen (typed documents from schema/operations against schema/schema.graphql)', () => {
  it('reproduces the committed files exactly (run `npm run codegen` after changing an operation or the schema)', async () => {
    const outputs = await generateInMemory();
    assert.deepEqual([...outputs.keys()], Object.keys(config.generates));
    for (const [file, content] of outputs) {
      assert.equal(readFileSync(path.join(ROOT, file), 'utf8'), content, `${file} is stale: run \`npm run codegen\` and commit it`);
    }
  });

  it('notices a change: one more operation gives a different file', async () => {
    const extra = 'query ExtraForTheTest { collections(first: 1) { totalCount } }';
    const outputs = await generateInMemory({ documents: [config.documents as string, extra] });
    const [file, content] = [...outputs][0]!;
    assert.notEqual(readFileSync(path.join(ROOT, file), 'utf8'), content);
    assert.match(content, /export const ExtraForTheTestDocument/);
  });
});
