import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ROOT } from '../stack/nginx';

/**
 * Measured with bench/ingest-memory.bench.ts (one replica, 2 worker threads, docs/deploying.md): RSS at rest, and
 * its peak while ingesting a 15 MiB ingestDocuments batch (KBQL_MAX_BODY_BYTES is 16 MiB).
 */
const IDLE_MIB = 275;
const PEAK_MIB = 690;
const WORKERS = 2;

const k8s = (file: string) => parse(readFileSync(path.join(ROOT, 'deploy', 'k8s', file), 'utf8'));
const mib = (q: string): number => {
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi)$/.exec(q);
  assert.ok(m, q);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
};

describe('Kubernetes sizing from measured figures', () => {
  const container = k8s('deployment.yaml').spec.template.spec.containers[0];
  const { requests, limits } = container.resources;

  it('requests the measured ingest peak; the limit leaves room above it', () => {
    assert.ok(mib(requests.memory) >= PEAK_MIB, `memory request ${requests.memory} ≥ the measured peak ${PEAK_MIB} MiB`);
    assert.ok(mib(limits.memory) >= PEAK_MIB * 1.4, `memory limit ${limits.memory} ≥ 1.4 × ${PEAK_MIB} MiB`);
    assert.ok(mib(requests.memory) > IDLE_MIB * 2);
  });

  it('runs as many worker threads as it was measured with, at most the CPU limit', () => {
    const data = k8s('configmap.yaml').data as Record<string, string>;
    assert.equal(Number(data.KBQL_WORKERS), WORKERS);
    assert.ok(WORKERS <= Number(limits.cpu));
  });

  it('the HPA scales on CPU only: a memory target would be crossed by every ingest and never recover', () => {
    const metrics = k8s('hpa.yaml').spec.metrics as { resource: { name: string; target: { averageUtilization: number } } }[];
    assert.deepEqual(metrics.map((m) => m.resource.name), ['cpu']);
    const memory = metrics.find((m) => m.resource.name === 'memory');
    // Were one added: its target must sit above the measured peak's share of the request.
    if (memory) assert.ok(memory.resource.target.averageUtilization > (PEAK_MIB / mib(requests.memory)) * 100);
  });
});
