import 'reflect-metadata';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { printKbqlSchema } from './schema';

/**
 * `npm run schema:emit`: writes schema/schema.graphql, the subgraph SDL of the code-first schema (federation `@link`
 * and `@key` included). Run `npm run codegen` afterwards: the typed operations are generated from this file.
 */
export const SCHEMA_FILE = path.resolve(__dirname, '..', '..', '..', 'schema', 'schema.graphql');

async function main(): Promise<void> {
  await mkdir(path.dirname(SCHEMA_FILE), { recursive: true });
  await writeFile(SCHEMA_FILE, await printKbqlSchema());
  process.stdout.write(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
