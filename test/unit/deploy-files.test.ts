import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..', '..');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(name) ? [full] : [];
  });
}

describe('deploy and CI files', () => {
  it('every YAML file under deploy/ and .github/ parses', () => {
    const files = [...yamlFiles(path.join(ROOT, 'deploy')), ...yamlFiles(path.join(ROOT, '.github'))];
    assert.ok(files.length >= 5, `found ${files.length} YAML files`);
    for (const file of files) assert.doesNotThrow(() => parse(readFileSync(file, 'utf8')), path.relative(ROOT, file));
  });

  it('the Weaviate workflow runs the contract suite against a Weaviate service container', () => {
    const workflow = parse(readFileSync(path.join(ROOT, '.github', 'workflows', 'weaviate.yml'), 'utf8'));
    const job = Object.values(workflow.jobs as Record<string, any>)[0];
    assert.match(job.services.weaviate.image, /semitechnologies\/weaviate:\d+\.\d+\.\d+$/);
    assert.ok(job.steps.some((s: { run?: string }) => s.run?.includes('npm run test:weaviate')));
    assert.equal(job.env.WEAVIATE_URL, 'http://localhost:8080');
  });

  it('compose wires kbql to Weaviate and Redis with secrets only from .env', () => {
    const text = readFileSync(path.join(ROOT, 'deploy', 'docker-compose.yml'), 'utf8');
    const compose = parse(text);
    const kbql = compose.services.kbql;
    assert.equal(kbql.environment.KBQL_STORE, 'weaviate');
    assert.equal(kbql.environment.WEAVIATE_URL, 'http://weaviate:8080');
    assert.ok(compose.services.weaviate && compose.services.redis);
    for (const secret of ['KBQL_JWT_SECRET', 'REDIS_PASSWORD', 'GRAFANA_ADMIN_PASSWORD']) {
      assert.match(text, new RegExp(`\\$\\{${secret}:\\?`), `${secret} must be required from .env, with no default`);
    }
    assert.doesNotMatch(text, /PASSWORD:\s*["']?(admin|password|changeme)/i);
  });
});
