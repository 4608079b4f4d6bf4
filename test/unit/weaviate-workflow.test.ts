import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

const root = path.resolve(__dirname, '../../..');

interface Step {
  name?: string;
  run?: string;
  if?: string;
  env?: Record<string, string>;
}

describe('.github/workflows/weaviate.yml', () => {
  it('runs the KnowledgeStore contract on a real Weaviate three ways: single-tenant, multi-tenant, bound tenants', () => {
    const workflow = parse(readFileSync(path.join(root, '.github/workflows/weaviate.yml'), 'utf8')) as {
      jobs: Record<string, { steps: Step[]; env?: Record<string, string> }>;
    };
    const job = workflow.jobs['contract']!;
    assert.equal(job.env?.['WEAVIATE_URL'], 'http://localhost:8080');
    const runs = job.steps.filter((s) => s.run === 'npm run test:weaviate');
    const modes = runs.map((s) => ({
      multiTenant: s.env?.['KBQL_WEAVIATE_MULTI_TENANT'] === 'true',
      tenant: s.env?.['KBQL_WEAVIATE_TENANT'] ?? null,
      bindTenants: s.env?.['KBQL_WEAVIATE_BIND_TENANTS'] === 'true',
    }));
    assert.deepEqual(modes, [
      { multiTenant: false, tenant: null, bindTenants: false },
      { multiTenant: true, tenant: 'ci', bindTenants: false },
      { multiTenant: true, tenant: 'ci', bindTenants: true },
    ]);
    // A failing first run must not hide the other two.
    for (const step of runs.slice(1)) assert.equal(step.if, '${{ !cancelled() }}');
  });

  it('the contract test takes those variables (and the npm script runs it)', () => {
    const source = readFileSync(path.join(root, 'test/integration/weaviate-store.contract.test.ts'), 'utf8');
    for (const name of ['WEAVIATE_URL', 'KBQL_WEAVIATE_MULTI_TENANT', 'KBQL_WEAVIATE_TENANT', 'KBQL_WEAVIATE_BIND_TENANTS']) {
      assert.match(source, new RegExp(`process\\.env\\['${name}'\\]`), name);
    }
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts['test:weaviate']!, /dist\/test\/integration\/weaviate-store\.contract\.test\.js/);
  });
});
