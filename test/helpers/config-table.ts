import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_VARIABLES } from '../../src/config';

/**
 * Rewrites the configuration table of docs/configuration.md (between its `config-table` markers) from
 * CONFIG_VARIABLES: `node dist/test/helpers/config-table.js` after a build. test/unit/config.test.ts checks it.
 */
const file = path.resolve(__dirname, '..', '..', '..', 'docs', 'configuration.md');
const rows = ['| variable | default | meaning |', '| --- | --- | --- |'];
for (const [name, spec] of Object.entries(CONFIG_VARIABLES)) {
  rows.push(`| \`${name}\` | ${spec.default === '' ? '—' : `\`${spec.default}\``} | ${spec.doc.replace(/\|/g, '\\|')} |`);
}
const doc = readFileSync(file, 'utf8');
const next = doc.replace(
  /<!-- config-table:start -->[\s\S]*?<!-- config-table:end -->/,
  `<!-- config-table:start -->\n${rows.join('\n')}\n<!-- config-table:end -->`,
);
if (next === doc && !doc.includes('<!-- config-table:start -->')) throw new Error(`${file} has no config-table markers`);
writeFileSync(file, next);
process.stdout.write(`docs/configuration.md configuration table: ${rows.length - 2} variables\n`);
