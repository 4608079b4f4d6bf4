import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config';
import { ROOT } from '../stack/nginx';

const ingress = parse(readFileSync(path.join(ROOT, 'deploy', 'k8s', 'ingress.yaml'), 'utf8'));
const configMap = parse(readFileSync(path.join(ROOT, 'deploy', 'k8s', 'configmap.yaml'), 'utf8'));

/** `16m` / `26m` / `1g` as ingress-nginx reads proxy-body-size, in bytes. */
function sizeBytes(value: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(value);
  assert.ok(m, value);
  return Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
}

describe('deploy/k8s/ingress.yaml', () => {
  it('routes every public kbql route: /graphql and POST /v1/uploads, to the http port', () => {
    const paths = ingress.spec.rules.flatMap((r: any) => r.http.paths) as { path: string; pathType: string; backend: any }[];
    for (const route of ['/graphql', '/v1/uploads']) {
      const p = paths.find((x) => x.path === route);
      assert.ok(p, `${route} is routed`);
      assert.equal(p.pathType, 'Exact');
      assert.deepEqual(p.backend.service, { name: 'kbql', port: { name: 'http' } });
    }
    assert.ok(!paths.some((x) => x.path === '/metrics' || x.path === '/'), 'metrics and everything else stay inside');
  });

  it("lets bodies past kbql's own limits through, so the 413 is kbql's JSON PAYLOAD_TOO_LARGE", () => {
    const config = loadConfig({ ...configMap.data, KBQL_JWT_SECRET: 'k'.repeat(48) });
    const proxyBodySize = sizeBytes(ingress.metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']);
    assert.ok(proxyBodySize > config.limits.maxBodyBytes, 'above KBQL_MAX_BODY_BYTES');
    assert.ok(proxyBodySize > config.uploads.maxBytes, 'above KBQL_MAX_UPLOAD_BYTES');
  });
});
