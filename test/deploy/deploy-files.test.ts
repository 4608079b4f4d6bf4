import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const read = (...parts: string[]) => readFileSync(path.join(ROOT, ...parts), 'utf8');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(name) ? [full] : [];
  });
}

/** The Compose specification's JSON schema, vendored from compose-spec/compose-spec (see deploy/schemas/README.md). */
function composeValidator() {
  // The spec declares draft-07 by its https URI, which Ajv does not know by that name: skip meta-validation.
  const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
  addFormats(ajv);
  return ajv.compile(JSON.parse(read('deploy', 'schemas', 'compose-spec.json')));
}

/** Interpolates `${VAR:?msg}`, `${VAR:-default}` and `${VAR}` the way `docker compose` does, from `env`. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g, (whole, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (whole === '$$') return '$$';
    const value = env[name!];
    if (op === ':?' && !value) throw new Error(`${name}: ${arg}`);
    if (op === ':-' && !value) return arg ?? '';
    return value ?? '';
  });
}

const SECRETS = { KBQL_JWT_SECRET: 'x'.repeat(48), REDIS_PASSWORD: 'q8/Zr+e#Kd?x=0/Y1mW+3pLk#Ab?Cd/Ef+Gh==', GRAFANA_ADMIN_USER: 'ops', GRAFANA_ADMIN_PASSWORD: 'g'.repeat(32) };

describe('deploy and CI files', () => {
  it('every YAML file under deploy/ and .github/ parses (every document of multi-document files)', () => {
    const files = [...yamlFiles(path.join(ROOT, 'deploy')), ...yamlFiles(path.join(ROOT, '.github'))];
    assert.ok(files.length >= 18, `found ${files.length} YAML files`);
    for (const file of files) {
      const docs = parseAllDocuments(readFileSync(file, 'utf8'));
      const errors = docs.flatMap((d) => d.errors.map((e) => e.message));
      assert.deepEqual(errors, [], path.relative(ROOT, file));
      assert.ok(docs.length >= 1 && docs.every((d) => d.contents !== null), `${path.relative(ROOT, file)} has content`);
    }
  });

  it('every JSON file under deploy/ parses', () => {
    const files = readdirSync(path.join(ROOT, 'deploy'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 3);
    for (const file of files) assert.doesNotThrow(() => JSON.parse(read('deploy', file)), file);
  });

  it('the Weaviate workflow runs the contract suite against a Weaviate service container', () => {
    const workflow = parse(read('.github', 'workflows', 'weaviate.yml'));
    const job = Object.values(workflow.jobs as Record<string, any>)[0];
    assert.match(job.services.weaviate.image, /semitechnologies\/weaviate:\d+\.\d+\.\d+$/);
    assert.ok(job.steps.some((s: { run?: string }) => s.run?.includes('npm run test:weaviate')));
    assert.equal(job.env.WEAVIATE_URL, 'http://localhost:8080');
  });

  it('the deploy workflow runs these validation tests and the fast drills', () => {
    const workflow = parse(read('.github', 'workflows', 'deploy.yml'));
    const runs = Object.values(workflow.jobs as Record<string, { steps: { run?: string }[] }>).flatMap((j) => j.steps.map((s) => s.run ?? '')).join('\n');
    assert.match(runs, /deploy-files\.test\.js/);
    assert.match(runs, /deploy-k8s\.test\.js/);
    assert.match(runs, /drills\.test\.js/);
  });
});

describe('docker-compose.yml', () => {
  const text = read('deploy', 'docker-compose.yml');
  const validate = composeValidator();

  // Merge keys (`<<: *restart`) are resolved before validation, as `docker compose` does.
  it('is valid against the Compose specification schema (after interpolation from a complete .env)', () => {
    const compose = parse(interpolate(text, SECRETS), { merge: true });
    const ok = validate(compose);
    assert.ok(ok, JSON.stringify(validate.errors, null, 2));
  });

  it('the schema check can fail: an unknown service key is refused', () => {
    const compose = parse(interpolate(text, SECRETS), { merge: true });
    compose.services.kbql.replicaz = 2;
    assert.equal(validate(compose), false);
    assert.equal(validate.errors?.[0]?.params && (validate.errors[0].params as { additionalProperty?: string }).additionalProperty, 'replicaz');
  });

  it('refuses to start without every secret from .env, and commits no weak default', () => {
    for (const secret of Object.keys(SECRETS)) {
      assert.match(text, new RegExp(`\\$\\{${secret}:\\?`), `${secret} must be required from .env, with no default`);
      const missing = { ...SECRETS, [secret]: '' };
      assert.throws(() => interpolate(text, missing), new RegExp(secret), `compose fails without ${secret}`);
    }
    assert.doesNotMatch(text, /PASSWORD:\s*["']?(admin|password|changeme)/i);
    assert.doesNotMatch(text, /\$\{[A-Z_]*(SECRET|PASSWORD)[A-Z_]*:-[^}]/, 'no default for a secret');
    const example = read('deploy', '.env.example');
    for (const secret of Object.keys(SECRETS)) assert.match(example, new RegExp(`^${secret}=$`, 'm'), `${secret} is empty in .env.example`);
  });

  it('runs two kbql replicas on Weaviate and Redis behind nginx, with tracing to Jaeger and metrics to Prometheus/Grafana', () => {
    const compose = parse(interpolate(text, SECRETS), { merge: true });
    const services = compose.services as Record<string, any>;
    for (const name of ['kbql', 'nginx', 'weaviate', 'redis', 'prometheus', 'grafana', 'otel-collector', 'jaeger']) assert.ok(services[name], name);
    const kbql = services.kbql;
    assert.equal(kbql.deploy.replicas, 2);
    assert.equal(kbql.ports, undefined, 'replicas publish no host port; nginx is the entry point');
    assert.equal(kbql.environment.KBQL_STORE, 'weaviate');
    assert.equal(kbql.environment.WEAVIATE_URL, 'http://weaviate:8080');
    assert.equal(kbql.environment.KBQL_AUTH_MODE, 'jwt');
    assert.equal(kbql.environment.REDIS_URL, 'redis://redis:6379', 'no password in the URL');
    assert.equal(kbql.environment.REDIS_PASSWORD, SECRETS.REDIS_PASSWORD, 'the password goes as it is in REDIS_PASSWORD');
    const config = loadConfig(Object.fromEntries(Object.entries(kbql.environment as Record<string, string | number | null>).map(([k, v]) => [k, v == null ? '' : String(v)])));
    assert.equal(decodeURIComponent(new URL(config.cache.redisUrl!).password), SECRETS.REDIS_PASSWORD, 'an openssl rand -base64 password starts kbql');
    assert.equal(kbql.environment.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://otel-collector:4318');
    assert.equal(kbql.read_only, true);
    assert.equal(kbql.environment.KBQL_TRUSTED_PROXIES, services.nginx.networks.kbql.ipv4_address, 'kbql trusts exactly nginx');
    assert.ok(parseSeconds(kbql.stop_grace_period) > 15, 'grace period above main.js shutdown deadline (15 s)');
    assert.ok(services.nginx.volumes.some((v: string) => v.startsWith('./nginx/templates:')));
    assert.ok(services['otel-collector'].volumes.some((v: string) => v.startsWith('./otel/otel-collector.yml:')));
    assert.ok(services.grafana.volumes.some((v: string) => v.startsWith('./grafana/provisioning:')));
    for (const [name, service] of Object.entries(services)) {
      for (const port of (service.ports ?? []) as string[]) assert.match(port, /^127\.0\.0\.1:/, `${name} publishes ${port} on loopback only`);
      assert.doesNotMatch(String(service.image ?? 'built'), /:latest$|^[^:]+$/, `${name} pins an image tag`);
    }
    // Every file a service mounts from deploy/ exists.
    for (const service of Object.values(services)) {
      for (const volume of (service.volumes ?? []) as string[]) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) assert.ok(statSync(path.join(ROOT, 'deploy', source)), source);
      }
    }
  });

  it('the OpenTelemetry collector receives OTLP/HTTP and exports to Jaeger', () => {
    const otel = parse(read('deploy', 'otel', 'otel-collector.yml'));
    assert.equal(otel.receivers.otlp.protocols.http.endpoint, '0.0.0.0:4318');
    const pipeline = otel.service.pipelines.traces;
    assert.deepEqual(pipeline.receivers, ['otlp']);
    for (const exporter of pipeline.exporters as string[]) assert.ok(otel.exporters[exporter], exporter);
    for (const processor of pipeline.processors as string[]) assert.ok(otel.processors[processor], processor);
    assert.match(otel.exporters['otlp/jaeger'].endpoint, /^jaeger:4317$/);
  });

  it('Prometheus scrapes every replica through DNS discovery, not through nginx', () => {
    const prometheus = parse(read('deploy', 'prometheus', 'prometheus.yml'));
    const job = prometheus.scrape_configs.find((j: { job_name: string }) => j.job_name === 'kbql');
    assert.deepEqual(job.dns_sd_configs[0].names, ['kbql']);
    assert.equal(job.dns_sd_configs[0].port, 9464, 'the metrics port (production default)');
  });
});

// nginx: test/deploy/nginx-template.test.ts (the template, rendered and run).

function parseSeconds(value: string): number {
  const m = /^(\d+)(s|m)$/.exec(value);
  assert.ok(m, value);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}
