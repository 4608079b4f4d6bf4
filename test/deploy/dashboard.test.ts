import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { METRICS } from '../../src/observability/metrics';
import { ROOT } from '../stack/nginx';

interface Panel {
  title: string;
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy', 'grafana', 'dashboards', 'kbql.json'), 'utf8')) as { panels: Panel[] };
const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
const observability = readFileSync(path.join(ROOT, 'docs', 'observability.md'), 'utf8');

describe('the dashboard reads what kbql counts, aggregated right across replicas', () => {
  it('abstentions come from kbql_answer_abstentions_total (most abstentions never reach the synthesizer), citations are shown', () => {
    assert.ok(exprs.some((e) => e.expr.includes(`rate(${METRICS.answerAbstentions}`)), 'abstention panel reads the abstention counter');
    assert.ok(exprs.some((e) => e.expr.includes(`rate(${METRICS.answerCitations}`)), 'citations are shown');
    assert.ok(!exprs.some((e) => e.expr.includes('outcome="abstained"')), 'not the synthesis histogram, which misses early abstentions');
  });

  it('store sizes are per tenant and taken with max across replicas (each reports the shared store), never summed', () => {
    const sizes = exprs.filter((e) => /kbql_(tenant|collection)_(documents|chunks)/.test(e.expr));
    assert.ok(sizes.length >= 2);
    for (const { panel, expr } of sizes) {
      assert.match(expr, /^max by \(tenant\) \(kbql_tenant_(documents|chunks)\)$/, panel);
    }
  });

  it('docs/observability.md lists every answer and size metric, and how to aggregate the sizes', () => {
    for (const name of [METRICS.answerAbstentions, METRICS.answerCitations, METRICS.tenantCollections, METRICS.tenantDocuments, METRICS.tenantChunks]) {
      assert.ok(observability.includes(`\`${name}\``), `${name} is in the metrics table`);
    }
    assert.match(observability, /max by \(tenant\)/);
    assert.doesNotMatch(observability, /kbql_collection_documents/);
  });
});
