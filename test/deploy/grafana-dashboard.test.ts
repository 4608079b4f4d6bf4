import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createDomainMetrics, METRICS } from '../../src/observability/metrics';
import { createMetricsPlugin } from '../../src/graphql/plugins/metrics.plugin';

const DEPLOY = path.resolve(__dirname, '..', '..', '..', 'deploy');
const read = (file: string) => readFileSync(path.join(DEPLOY, file), 'utf8');

/** PromQL functions, aggregations and keywords: identifiers that are not metric names. */
const NOT_METRICS = new Set(
  (
    'sum avg min max count group stddev stdvar topk bottomk quantile count_values rate irate increase delta idelta deriv ' +
    'histogram_quantile abs absent absent_over_time ceil floor round clamp clamp_min clamp_max changes resets exp ln log2 log10 sqrt ' +
    'label_replace label_join predict_linear scalar vector sort sort_desc time timestamp avg_over_time min_over_time max_over_time ' +
    'sum_over_time count_over_time last_over_time quantile_over_time present_over_time by without on ignoring group_left group_right ' +
    'and or unless bool offset inf nan'
  ).split(' '),
);

/** The metric names a PromQL expression selects (strings, label matchers, ranges and grouping labels removed). */
export function metricNamesIn(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names: string[] = [];
  for (const m of e.matchAll(/(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = e.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest) || NOT_METRICS.has(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

/** Every sample name kbql can expose: metric names, plus _bucket/_sum/_count of histograms and _sum/_count of summaries. */
async function exportedNames(): Promise<Set<string>> {
  const registry = new Registry();
  createDomainMetrics({ registry });
  createMetricsPlugin({ registry });
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    const type = String(metric.type);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(metric.name + suffix);
  }
  return names;
}

function exprsIn(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) exprsIn(item, out);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if ((key === 'expr' || key === 'query') && typeof value === 'string') out.push(value);
      else exprsIn(value, out);
    }
  }
  return out;
}

describe('metricNamesIn', () => {
  it('finds the selected metrics and nothing else', () => {
    assert.deepEqual(
      metricNamesIn('histogram_quantile(0.95, sum by (le, operation) (rate(kbql_a_seconds_bucket{x=~"a|b"}[$__rate_interval]))) / on(instance) group_left up offset 5m'),
      ['kbql_a_seconds_bucket', 'up'],
    );
    assert.deepEqual(metricNamesIn('sum(rate(kbql_x_total[5m])) / sum without (code) (kbql_y)'), ['kbql_x_total', 'kbql_y']);
  });
});

describe('Grafana dashboard and Prometheus rules', () => {
  const dashboard = JSON.parse(read('grafana/dashboards/kbql.json')) as { uid: string; panels: { title: string; type: string; datasource?: { uid: string }; targets?: { expr: string }[] }[] };

  it('the dashboard parses and every expression names only metrics kbql exports', async () => {
    const exported = await exportedNames();
    const exprs = exprsIn(dashboard);
    assert.ok(exprs.length >= 20, `${exprs.length} expressions`);
    for (const expr of exprs) {
      const names = metricNamesIn(expr);
      assert.ok(names.length > 0, `no metric in ${expr}`);
      for (const name of names) assert.ok(exported.has(name), `${name} (in ${expr}) is not a metric kbql exports`);
    }
  });

  it('covers request rate, latency quantiles, errors by code, providers, batch sizes, cache, ingestion and index sizes', () => {
    const exprs = exprsIn(dashboard).join('\n');
    const uses = (name: string) => assert.ok(exprs.includes(name), `the dashboard uses ${name}`);
    uses(`rate(${METRICS.graphqlRequests}`);
    for (const q of ['0.50', '0.95', '0.99']) assert.ok(exprs.includes(`histogram_quantile(${q}, sum by (le) (rate(${METRICS.graphqlRequestDuration}_bucket`), `p${q}`);
    assert.match(exprs, new RegExp(`sum by \\(code\\) \\(rate\\(${METRICS.graphqlErrors}`));
    uses(METRICS.embeddingProviderCalls);
    uses(METRICS.embeddingBatchSize);
    assert.match(exprs, new RegExp(`${METRICS.cacheRequests}\\{result="hit"\\}`));
    uses(METRICS.ingestionDocuments);
    uses(METRICS.tenantDocuments);
    uses(METRICS.tenantChunks);
    uses(METRICS.dependencyUp);
  });

  it('every panel uses the provisioned datasource', () => {
    const provisioned = /uid:\s*(\S+)/.exec(read('grafana/provisioning/datasources/prometheus.yml'))?.[1];
    assert.ok(provisioned);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) assert.equal(panel.datasource?.uid, provisioned, panel.title);
    assert.match(read('grafana/provisioning/dashboards/kbql.yml'), /path: \/var\/lib\/grafana\/dashboards/);
  });

  it('alert rules use exported metrics (plus Prometheus up) and cover errors, latency and readiness', async () => {
    const exported = await exportedNames();
    const rules = read('prometheus/alerts.yml');
    const exprs = [...rules.matchAll(/^\s*expr:\s*'(.*)'\s*$/gm)].map((m) => m[1]!);
    const declared = (rules.match(/^\s*expr:/gm) ?? []).length;
    assert.equal(exprs.length, declared, "every expr is one single-quoted line (so this test reads them all)");
    for (const expr of exprs) {
      for (const name of metricNamesIn(expr)) assert.ok(name === 'up' || exported.has(name), `${name} (in ${expr}) is not exported`);
    }
    const all = exprs.join('\n');
    assert.match(all, new RegExp(METRICS.graphqlErrors));
    assert.match(all, new RegExp(`${METRICS.graphqlRequestDuration}_bucket`));
    assert.match(all, new RegExp(`${METRICS.dependencyUp}\\{critical="true"\\}`));
    const scrape = read('prometheus/prometheus.yml');
    assert.match(scrape, /metrics_path: \/metrics/);
    assert.match(scrape, /- alerts\.yml/);
  });
});
