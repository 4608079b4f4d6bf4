import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

/**
 * The layers of src/, kept by its imports (every specifier counts, type-only ones too):
 *
 *   entry points (main.ts, cli/)  →  composition root (app/)
 *   modules/  →  graphql/ kit, ports/, retrieval/          adapters/  →  ports/, retrieval/
 *
 * adapters and modules never import each other; ports and retrieval sit at the bottom and, like the services, use no
 * SDK or framework; nothing but an entry point imports the composition root; and there are no cycles.
 */

const ROOT = path.resolve(__dirname, '..', '..', '..');

interface Edge {
  from: string;
  to: string;
  line: number;
}

const under = (dir: string) => (file: string) => file.startsWith(`${dir}/`);
const isAdapter = under('src/adapters');
const isModule = under('src/modules');
const isLow = (file: string) => under('src/retrieval')(file) || under('src/ports')(file);
/** The schema assembly that moves into the composition root: part of it already. */
const isRoot = under('src/app');
/** Programs that start kbql: the server, the CLI, and the schema emitter script. */
const isEntry = (file: string) => file === 'src/main.ts' || under('src/cli')(file);
const isKit = under('src/graphql');
/** Cross-cutting primitives at the top of src/ (errors.ts, ids.ts, logger.ts, …), not the root or an entry. */
const isPrimitive = (file: string) => /^src\/[^/]+\.ts$/.test(file) && !isRoot(file) && !isEntry(file);

interface Rule {
  name: string;
  broken: (edge: Edge) => boolean;
}

const RULES: readonly Rule[] = [
  { name: 'adapters/ must not import modules/', broken: (e) => isAdapter(e.from) && isModule(e.to) },
  { name: 'modules/ must not import adapters/', broken: (e) => isModule(e.from) && isAdapter(e.to) },
  {
    name: 'retrieval/ and ports/ import only retrieval/, ports/ and the primitives at src/ (errors.ts, ids.ts, …)',
    broken: (e) => isLow(e.from) && !isLow(e.to) && !isPrimitive(e.to),
  },
  { name: 'the graphql/ kit must not import modules/ or adapters/', broken: (e) => isKit(e.from) && (isModule(e.to) || isAdapter(e.to)) },
  {
    name: 'only entry points (src/main.ts, src/cli/) import the composition root (src/app/)',
    broken: (e) => isRoot(e.to) && !isRoot(e.from) && !isEntry(e.from),
  },
];

/**
 * Packages the pure layers may use: node built-ins, and js-tiktoken, the tokenizer behind `retrieval/cl100k.ts`.
 * Services (`*.service.ts`) take node built-ins only: SDKs and frameworks stay in adapters and resolvers.
 */
const PURE_PACKAGES: readonly Rule[] = [
  {
    name: 'retrieval/ and ports/ use no package but node: built-ins and js-tiktoken',
    broken: (e) => isLow(e.from) && !e.to.startsWith('node:') && e.to !== 'js-tiktoken',
  },
  {
    name: 'services (modules/**/*.service.ts) use no package but node: built-ins',
    broken: (e) => isModule(e.from) && e.from.endsWith('.service.ts') && !e.to.startsWith('node:'),
  },
];

/** Every .ts file under `dir`, relative to the repository, with forward slashes. */
function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const child = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(child);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [child] : [];
  });
}

/** The file a relative specifier names (node16 resolution: `./x`, `./x.js`, `./dir`), or null. */
function resolveRelative(from: string, specifier: string): string | null {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  const stem = base.replace(/\.(js|ts)$/, '');
  for (const candidate of [`${stem}.ts`, `${stem}/index.ts`, base]) {
    const full = path.join(ROOT, candidate);
    if (existsSync(full) && statSync(full).isFile()) return candidate;
  }
  return null;
}

/** Module specifiers of a file: import/export declarations, `import x = require()`, `require()`, `import()`, `import('…')` types. */
function specifiers(file: string): { specifier: string; line: number }[] {
  const source = ts.createSourceFile(file, readFileSync(path.join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const found: { specifier: string; line: number }[] = [];
  const add = (literal: ts.Node) => {
    if (ts.isStringLiteralLike(literal))
      found.push({ specifier: literal.text, line: source.getLineAndCharacterOfPosition(literal.getStart(source)).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.arguments.length > 0) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) add(node.arguments[0]!);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The import graph of src/: one edge per relative import; package imports (`to` the package name) kept apart. */
function importGraph(): { files: string[]; edges: Edge[]; packages: Edge[]; unresolved: string[] } {
  const files = sourceFiles('src');
  const edges: Edge[] = [];
  const packages: Edge[] = [];
  const unresolved: string[] = [];
  for (const from of files) {
    for (const { specifier, line } of specifiers(from)) {
      if (!specifier.startsWith('.')) {
        packages.push({ from, to: specifier, line });
        continue;
      }
      const to = resolveRelative(from, specifier);
      if (to) edges.push({ from, to, line });
      else unresolved.push(`${from}:${line} '${specifier}'`);
    }
  }
  return { files, edges, packages, unresolved };
}

/** Rule breaks, one readable paragraph per rule. */
function violations(edges: readonly Edge[], rules: readonly Rule[] = RULES): string[] {
  return rules.flatMap((rule) => {
    const broken = edges.filter(rule.broken);
    return broken.length === 0
      ? []
      : [`${rule.name} (${broken.length}):\n${broken.map((e) => `  ${e.from}:${e.line} → ${e.to}`).join('\n')}`];
  });
}

/**
 * The import cycles of a graph, one path each (`a → b → c → a`): Tarjan's strongly connected components, then, in
 * each component, a shortest way from its first file back to itself.
 */
function cycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const to of next.get(node) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node)!, index.get(to)!));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (next.get(node) ?? []).includes(node)) components.push(component.sort());
  };
  for (const node of next.keys()) if (!index.has(node)) connect(node);
  return components.map((component) => {
    const inside = new Set(component);
    const start = component[0]!;
    // Breadth-first from start's successors inside the component until start comes round again.
    const cameFrom = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0) {
      const node = queue.shift()!;
      const to = (next.get(node) ?? []).find((n) => n === start);
      if (to) {
        const route = [start];
        for (let at: string | undefined = node; at !== start && at !== undefined; at = cameFrom.get(at)) route.splice(1, 0, at);
        return [...route, start];
      }
      for (const n of next.get(node) ?? []) {
        if (inside.has(n) && !cameFrom.has(n) && n !== start) {
          cameFrom.set(n, node);
          queue.push(n);
        }
      }
    }
    return [...component, start];
  });
}

describe('architecture: the import graph of src/', () => {
  const graph = importGraph();

  it('is read in full: every relative import resolves, and the entry point reaches the composition root', () => {
    assert.deepEqual(graph.unresolved, [], 'relative imports that resolve to no file (the graph would miss their edges)');
    assert.ok(graph.files.length > 100 && graph.edges.length > 300, `only ${graph.files.length} files and ${graph.edges.length} edges`);
    assert.ok(
      graph.edges.some((e) => e.from === 'src/main.ts' && isRoot(e.to)),
      'src/main.ts imports no composition-root file: the layer paths in this test are out of date',
    );
  });

  it('keeps the layers', () => {
    const found = violations(graph.edges);
    assert.equal(found.length, 0, `Imports that break the layers:\n\n${found.join('\n\n')}\n`);
  });

  it('keeps retrieval/, ports/ and services free of SDKs and frameworks', () => {
    const found = violations(graph.packages, PURE_PACKAGES);
    assert.equal(found.length, 0, `Package imports that do not belong there:\n\n${found.join('\n\n')}\n`);
  });

  it('has no import cycles', () => {
    const found = cycles(graph.edges);
    assert.equal(found.length, 0, `Import cycles:\n${found.map((c) => `  ${c.join(' → ')}`).join('\n')}\n`);
  });

  it('reports a bad edge and a cycle when there is one (the checks can fail)', () => {
    const bad: Edge[] = [
      { from: 'src/adapters/embedded/x.ts', to: 'src/modules/query/y.ts', line: 3 },
      { from: 'src/modules/query/y.ts', to: 'src/adapters/embedded/x.ts', line: 4 },
      { from: 'src/retrieval/fusion.ts', to: 'src/graphql/enums.ts', line: 1 },
      { from: 'src/ports/cache.port.ts', to: 'src/errors.ts', line: 1 },
      { from: 'src/graphql/directives/auth.directive.ts', to: 'src/modules/auth/principal.ts', line: 2 },
      { from: 'src/modules/query/query.resolver.ts', to: 'src/app/context.ts', line: 5 },
      { from: 'src/http/server.ts', to: 'src/app/index.ts', line: 9 },
      { from: 'src/cli/serve.ts', to: 'src/app/index.ts', line: 1 },
      { from: 'src/app/index.ts', to: 'src/app/schema.ts', line: 1 },
    ];
    const found = violations(bad).join('\n');
    for (const edge of [
      'src/adapters/embedded/x.ts:3',
      'src/modules/query/y.ts:4',
      'src/retrieval/fusion.ts:1',
      'auth.directive.ts:2',
      'query.resolver.ts:5',
      'src/http/server.ts:9',
    ]) {
      assert.ok(found.includes(edge), `${edge} not reported in:\n${found}`);
    }
    for (const fine of ['cache.port.ts', 'src/cli/serve.ts', 'src/app/index.ts:1'])
      assert.ok(!found.includes(fine), `${fine} reported in:\n${found}`);
    const packages = violations(
      [
        { from: 'src/retrieval/x.ts', to: 'type-graphql', line: 1 },
        { from: 'src/retrieval/cl100k.ts', to: 'js-tiktoken', line: 2 },
        { from: 'src/modules/query/query.service.ts', to: 'weaviate-client', line: 3 },
        { from: 'src/modules/query/query.resolver.ts', to: 'type-graphql', line: 4 },
      ],
      PURE_PACKAGES,
    ).join('\n');
    assert.ok(packages.includes('src/retrieval/x.ts:1') && packages.includes('query.service.ts:3'), packages);
    assert.ok(!packages.includes('cl100k.ts') && !packages.includes('query.resolver.ts'), packages);
    assert.deepEqual(cycles(bad), [['src/adapters/embedded/x.ts', 'src/modules/query/y.ts', 'src/adapters/embedded/x.ts']]);
    const triangle = ['a', 'b', 'c'].map((from, i, all) => ({ from: `src/${from}.ts`, to: `src/${all[(i + 1) % 3]}.ts`, line: 1 }));
    assert.deepEqual(cycles([...triangle, { from: 'src/a.ts', to: 'src/d.ts', line: 2 }]), [
      ['src/a.ts', 'src/b.ts', 'src/c.ts', 'src/a.ts'],
    ]);
  });
});

describe('architecture: ports', () => {
  it('document every method', () => {
    const undocumented: string[] = [];
    for (const file of sourceFiles('src/ports')) {
      const source = ts.createSourceFile(file, readFileSync(path.join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
      for (const statement of source.statements) {
        if (!ts.isInterfaceDeclaration(statement)) continue;
        for (const member of statement.members) {
          const method =
            ts.isMethodSignature(member) ||
            (ts.isPropertySignature(member) && member.type !== undefined && ts.isFunctionTypeNode(member.type));
          if (method && ts.getJSDocCommentsAndTags(member).length === 0)
            undocumented.push(`${file}: ${statement.name.text}.${member.name.getText(source)}`);
        }
      }
    }
    assert.deepEqual(undocumented, [], `Port methods without JSDoc:\n${undocumented.join('\n')}`);
  });

  it('live in src/ports/<name>.port.ts', () => {
    const misnamed = sourceFiles('src/ports').filter((file) => !/^src\/ports\/[a-z0-9-]+\.port\.ts$/.test(file));
    assert.deepEqual(misnamed, []);
  });
});
