import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_VARIABLES } from '../../src/config';

/** Rewrites README.md's configuration table from CONFIG_VARIABLES: `node dist/test/helpers/readme-config-table.js`. */
const file = path.resolve(__dirname, '..', '..', '..', 'README.md');
const rows = ['| variable | default | meaning |', '| --- | --- | --- |'];
for (const [name, spec] of Object.entries(CONFIG_VARIABLES)) {
  rows.push(`| \`${name}\` | ${spec.default === '' ? '—' : `\`${spec.default}\``} | ${spec.doc.replace(/\|/g, '\\|')} |`);
}
const readme = readFileSync(file, 'utf8');
const next = readme.replace(/<!-- config-table:start -->[\s\S]*?<!-- config-table:end -->/, `<!-- config-table:start -->\n${rows.join('\n')}\n<!-- config-table:end -->`);
writeFileSync(file, next);
process.stdout.write(`README configuration table: ${rows.length - 2} variables\n`);
