import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config';

/**
 * The Kubernetes manifests in deploy/k8s, validated against the Kubernetes OpenAPI schemas that the
 * `kubernetes-models` package (4.5.1) ships as compiled validators (types, required fields, enums, formats; like
 * kubeconform without `-strict`, unknown fields pass the schema, so the fields kbql relies on are asserted here too),
 * plus cross-references between the objects and kbql's own configuration.
 */
const K8S = path.resolve(__dirname, '..', '..', '..', 'deploy', 'k8s');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

function manifests(): { file: string; object: K8sObject }[] {
  return readdirSync(K8S)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
    .flatMap((file) =>
      parseAllDocuments(readFileSync(path.join(K8S, file), 'utf8')).map((doc) => {
        assert.deepEqual(doc.errors, [], file);
        return { file, object: doc.toJS() as K8sObject };
      }),
    );
}

/** The kubernetes-models class for an apiVersion + kind (core group: `v1`; others: `<group>/<version>`). */
function modelFor(apiVersion: string, kind: string): { new (data: unknown): { validate(): void } } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const module = require(`kubernetes-models/${apiVersion}/${kind}`) as Record<string, { new (data: unknown): { validate(): void } }>;
  const model = module[kind];
  assert.ok(model, `kubernetes-models has ${apiVersion} ${kind}`);
  return model;
}

function validateObject(object: K8sObject): void {
  const Model = modelFor(object.apiVersion, object.kind);
  new Model(object).validate();
}

const all = manifests();
const one = (kind: string): K8sObject => {
  const found = all.filter((m) => m.object.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!.object;
};

describe('Kubernetes manifests (deploy/k8s)', () => {
  it('every object is valid against the Kubernetes schema of its apiVersion and kind', () => {
    assert.ok(all.length >= 10, `${all.length} objects`);
    for (const { file, object } of all) {
      assert.doesNotThrow(() => validateObject(object), `${file}: ${object.kind} ${object.metadata?.name}`);
      if (object.kind !== 'Namespace') assert.equal(object.metadata.namespace, 'kbql', `${file} is namespaced`);
    }
  });

  it('the schema check can fail: wrong types, a missing required field and a bad enum are refused', () => {
    const deployment = structuredClone(one('Deployment'));
    deployment.spec.template.spec.containers[0].ports[0].containerPort = '4000';
    assert.throws(() => validateObject(deployment), /containerPort must be integer/);
    const noSelector = structuredClone(one('Deployment'));
    delete noSelector.spec.selector;
    assert.throws(() => validateObject(noSelector), /selector/);
    const service = structuredClone(one('Service'));
    service.spec.type = 'Public';
    assert.throws(() => validateObject(service), /allowed values|enum/i);
  });

  it('kustomization.yaml lists every manifest except the Secret template, and only files that exist', () => {
    const kustomization = parseAllDocuments(readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as { kind: string; resources: string[]; namespace: string; images: { name: string }[] };
    assert.equal(kustomization.kind, 'Kustomization');
    assert.equal(kustomization.namespace, 'kbql');
    const files = [...new Set(all.map((m) => m.file))].filter((f) => f !== 'secret.template.yaml').sort();
    assert.deepEqual([...kustomization.resources].sort(), files);
    assert.equal(kustomization.images[0]?.name, one('Deployment').spec.template.spec.containers[0].image);
  });

  it('the Deployment: probes on /healthz and /readyz, resources, non-root read-only root FS with writable /data and /tmp', () => {
    const deployment = one('Deployment');
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.equal(container.startupProbe.httpGet.path, '/healthz');
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    for (const probe of [container.livenessProbe, container.readinessProbe]) assert.equal(probe.httpGet.port, 'http');
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.runAsUser, 1000, 'the image user `node`');
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    const mounts = Object.fromEntries((container.volumeMounts as { name: string; mountPath: string }[]).map((m) => [m.mountPath, m.name]));
    const volumes = Object.fromEntries((pod.volumes as { name: string }[]).map((v) => [v.name, v]));
    for (const dir of ['/data', '/tmp']) assert.ok(volumes[mounts[dir]!], `${dir} is a mounted volume`);
    assert.equal(pod.automountServiceAccountToken, false);
    // SIGTERM handling: preStop + the 15 s shutdown deadline of main.js fit in the grace period.
    const preStop = Number(container.lifecycle.preStop.exec.command[1]);
    assert.ok(pod.terminationGracePeriodSeconds > preStop + 15, 'grace period covers preStop and the drain deadline');
    assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
  });

  it('the objects refer to each other: labels, ConfigMap, Secret, ports, HPA and PDB targets', () => {
    const deployment = one('Deployment');
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v);
    assert.ok(matches(deployment.spec.selector.matchLabels));
    assert.ok(matches(one('Service').spec.selector), 'Service selects the pods');
    assert.ok(matches(one('PodDisruptionBudget').spec.selector.matchLabels), 'PDB selects the pods');
    const policy = one('NetworkPolicy');
    assert.ok(matches(policy.spec.podSelector.matchLabels), 'NetworkPolicy selects the pods');
    const hpa = one('HorizontalPodAutoscaler');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    assert.ok(hpa.spec.minReplicas >= 2, 'at least two replicas (the PDB then always leaves one)');
    const container = deployment.spec.template.spec.containers[0];
    const envFrom = container.envFrom as { configMapRef?: { name: string }; secretRef?: { name: string } }[];
    assert.equal(envFrom.find((e) => e.configMapRef)?.configMapRef?.name, one('ConfigMap').metadata.name);
    assert.equal(envFrom.find((e) => e.secretRef)?.secretRef?.name, one('Secret').metadata.name);
    assert.equal(deployment.spec.template.spec.serviceAccountName, one('ServiceAccount').metadata.name);
    const portNames = new Set((container.ports as { name: string }[]).map((p) => p.name));
    assert.ok(portNames.has(one('Service').spec.ports[0].targetPort));
    for (const rule of policy.spec.ingress as { ports: { port: string }[] }[]) for (const p of rule.ports) assert.ok(portNames.has(p.port), p.port);
    const ingress = one('Ingress');
    assert.equal(ingress.spec.rules[0].http.paths[0].backend.service.name, one('Service').metadata.name);
    assert.equal(one('Namespace').metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
    const metricsPort = (container.ports as { name: string; containerPort: number }[]).find((p) => p.name === 'metrics')!.containerPort;
    assert.equal(String(metricsPort), one('ConfigMap').data.KBQL_METRICS_PORT);
    assert.equal(deployment.spec.template.metadata.annotations['prometheus.io/port'], String(metricsPort));
  });

  it('the NetworkPolicy lets in only the ingress controller (API port) and monitoring (metrics port)', () => {
    const policy = one('NetworkPolicy');
    assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
    const rules = policy.spec.ingress as { from: { namespaceSelector?: { matchLabels: Record<string, string> } }[]; ports: { port: string }[] }[];
    assert.equal(rules.length, 2);
    for (const rule of rules) {
      assert.ok(rule.from.length > 0 && rule.from.every((f) => f.namespaceSelector), 'every rule names its source namespace');
      assert.equal(rule.ports.length, 1);
    }
    const byPort = Object.fromEntries(rules.map((r) => [r.ports[0]!.port, r.from[0]!.namespaceSelector!.matchLabels['kubernetes.io/metadata.name']]));
    assert.deepEqual(byPort, { http: 'ingress-nginx', metrics: 'monitoring' });
  });

  it('the ConfigMap and Secret hold only kbql variables, and with a filled-in Secret they load as a valid config', () => {
    const data = one('ConfigMap').data as Record<string, string>;
    const secret = one('Secret').stringData as Record<string, string>;
    const known = new Set([...Object.keys(CONFIG_VARIABLES), 'NODE_OPTIONS']);
    for (const name of [...Object.keys(data), ...Object.keys(secret)]) assert.ok(known.has(name), `${name} is a kbql variable`);
    for (const [name, value] of Object.entries(secret)) assert.equal(value, '', `${name} is left empty in the template`);
    assert.ok(!Object.keys(data).some((k) => /SECRET|PASSWORD|API_KEY|REDIS_URL/.test(k)), 'no secret in the ConfigMap');
    const config = loadConfig({ ...data, ...secret, KBQL_JWT_SECRET: 'k'.repeat(48), REDIS_URL: 'redis://redis-master.redis.svc.cluster.local:6379', REDIS_PASSWORD: 'a/b#c?d=' });
    assert.equal(config.env, 'production');
    assert.equal(config.auth.mode, 'jwt');
    assert.equal(config.store.kind, 'weaviate');
    assert.equal(config.metrics.port, 9464);
    assert.equal(config.dataDir, '/data');
    // Without the secret filled in, kbql refuses to start rather than run unauthenticated.
    assert.throws(() => loadConfig({ ...data, ...secret }), /KBQL_JWT_SECRET/);
  });
});
