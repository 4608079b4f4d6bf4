import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ExtractiveSynthesizer } from '../src/adapters/synthesizers/extractive.synthesizer';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import { DEVELOPMENT_PRINCIPAL as caller } from '../src/modules/auth/principal';
import { stripMarkers } from '../src/modules/query/citations';
import type { AnswerSource } from '../src/ports/answer-synthesizer.port';
import type { SearchMode } from '../src/ports/knowledge-store.port';
import { loadScifact, percentile, printTable, sharedDataDir } from './shared-data';

/**
 * Answer quality end to end, with the offline defaults (hash embedder, HYBRID retrieval, extractive synthesizer):
 * the 232 distinct SQuAD 2 paragraphs of `../shared/data/squad2/queries.json` are ingested into one collection
 * through the real services, and every one of the 251 questions is asked through `QueryService.ask`. Prints, for
 * answerable questions, the share whose answer contains a gold answer (SQuAD normalisation) and token F1 (abstentions
 * count as 0), for unanswerable ones the abstention rate; plus retrieval (own paragraph among the sources) and the
 * same questions asked of a collection that does not hold their paragraphs (off-topic abstention).
 *
 * Calibration is honest: questions are split in two halves by a hash of their id; thresholds swept on the
 * calibration half, figures reported on the held-out half too. Then runs `bench/scifact.bench.ts` for the SciFact
 * retrieval table (KBQL_BENCH_SKIP_SCIFACT=1 skips it; KBQL_BENCH_QUERIES limits its queries).
 *
 * Run after `tsc`: `node dist/bench/answers-squad2.bench.js`. Never copies the data into the repository.
 */

interface Query {
  id: string;
  context: string;
  question: string;
}
interface Truth {
  answers: string[];
  is_impossible: boolean;
}

const dataDir = path.join(sharedDataDir(), 'squad2');
const queries = (JSON.parse(readFileSync(path.join(dataDir, 'queries.json'), 'utf8')) as { queries: Query[] }).queries;
const truth = JSON.parse(readFileSync(path.join(dataDir, 'ground_truth.json'), 'utf8')) as Record<string, Truth>;
const contexts = [...new Set(queries.map((q) => q.context))];
const half = (id: string): 'calibration' | 'held-out' => (createHash('sha1').update(id).digest()[0]! % 2 === 0 ? 'calibration' : 'held-out');

/** SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces. */
export function normalize(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export function tokenF1(prediction: string, gold: string): number {
  const p = normalize(prediction).split(' ').filter(Boolean);
  const g = normalize(gold).split(' ').filter(Boolean);
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let common = 0;
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      common++;
      counts.set(t, c - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / p.length;
  const recall = common / g.length;
  return (2 * precision * recall) / (precision + recall);
}

interface Outcome {
  q: Query;
  truth: Truth;
  answer: string | null;
  ownRetrieved: boolean;
}

interface Row {
  n: number;
  answerable: number;
  containsGold: number;
  f1: number;
  answerableAbstained: number;
  unanswerable: number;
  unanswerableAbstained: number;
}

function score(outcomes: readonly Outcome[]): Row {
  let answerable = 0;
  let contains = 0;
  let f1 = 0;
  let ansAbstained = 0;
  let unanswerable = 0;
  let unAbstained = 0;
  for (const o of outcomes) {
    if (o.truth.is_impossible) {
      unanswerable++;
      if (o.answer === null) unAbstained++;
      continue;
    }
    answerable++;
    if (o.answer === null) {
      ansAbstained++;
      continue;
    }
    const text = stripMarkers(o.answer);
    const golds = o.truth.answers.filter((a) => a.trim() !== '');
    if (golds.some((g) => ` ${normalize(text)} `.includes(` ${normalize(g)} `))) contains++;
    f1 += Math.max(0, ...golds.map((g) => tokenF1(text, g)));
  }
  return {
    n: outcomes.length,
    answerable,
    containsGold: contains / answerable,
    f1: f1 / answerable,
    answerableAbstained: ansAbstained / answerable,
    unanswerable,
    unanswerableAbstained: unAbstained / unanswerable,
  };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const rowCells = (label: string, r: Row): (string | number)[] => [
  label,
  r.n,
  pct(r.containsGold),
  r.f1.toFixed(3),
  pct(r.answerableAbstained),
  pct(r.unanswerableAbstained),
];
const HEADER = ['set', 'questions', 'answerable: contains gold', 'answerable: token F1', 'answerable abstained', 'unanswerable abstained'];

async function main(): Promise<void> {
  const mode = (process.env['KBQL_BENCH_MODE'] ?? 'HYBRID') as SearchMode;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'kbql-bench-answers-'));
  const config = loadConfig({ ...process.env, NODE_ENV: 'test', KBQL_LOG_LEVEL: 'error', KBQL_DATA_DIR: tmp, KBQL_CACHE_RESULT_TTL_SECONDS: '0' });
  const app = await createApp(config);
  try {
    const { collections, ingestion, query } = app.services;
    await collections.create({ name: 'squad2' }, caller);
    const started = performance.now();
    const docs = contexts.map((context, i) => ({ id: `p${i}`, content: context, contentType: 'TEXT' as const }));
    const ingested = await ingestion.ingest('squad2', docs, caller);
    if (ingested.failed > 0) throw new Error(`ingest failed: ${JSON.stringify(ingested.results.find((r) => r.status === 'FAILED'))}`);
    const ingestSeconds = (performance.now() - started) / 1000;
    const ownId = new Map(contexts.map((c, i) => [c, `p${i}`]));

    // Every question through ask, with the defaults (what a user gets).
    const outcomes: Outcome[] = [];
    const retrieved = new Map<string, AnswerSource[]>();
    const latencies: number[] = [];
    for (const q of queries) {
      const t0 = performance.now();
      const result = await query.ask({ collection: 'squad2', question: q.question, mode }, { access: caller });
      latencies.push(performance.now() - t0);
      retrieved.set(q.id, result.sources);
      outcomes.push({
        q,
        truth: truth[q.id]!,
        answer: result.answer,
        ownRetrieved: result.sources.some((s) => s.document.externalId === ownId.get(q.context)),
      });
    }
    console.log(
      `SQuAD 2 end to end: ${contexts.length} paragraphs ingested in ${ingestSeconds.toFixed(1)} s (embedder ${app.config.embedder.kind}, ` +
        `synthesizer ${config.synthesizer.kind}, mode ${mode}, topK ${config.defaults.askTopK}); ${queries.length} questions asked through QueryService.ask ` +
        `(p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms).`,
    );
    console.log(`Own paragraph among the sources: ${pct(outcomes.filter((o) => o.ownRetrieved).length / outcomes.length)}.`);
    printTable('Answer quality with the defaults (abstentions count as misses for contains-gold and F1)', HEADER, [
      rowCells('all', score(outcomes)),
      rowCells('calibration half', score(outcomes.filter((o) => half(o.q.id) === 'calibration'))),
      rowCells('held-out half', score(outcomes.filter((o) => half(o.q.id) === 'held-out'))),
    ]);

    // Threshold sweep on the same retrieved sources (synthesizer only; retrieval is not re-run).
    const sweep = (options: ConstructorParameters<typeof ExtractiveSynthesizer>[0], which: 'calibration' | 'held-out'): Row => {
      const synth = new ExtractiveSynthesizer(options);
      return score(
        queries
          .filter((q) => half(q.id) === which)
          .map((q) => ({ q, truth: truth[q.id]!, answer: synth.synthesizeSync({ question: q.question, sources: retrieved.get(q.id)! }).answer, ownRetrieved: true })),
      );
    };
    const rows: (string | number)[][] = [];
    for (const checks of [false, true]) {
      for (const minRelevance of [0.25, 0.35, 0.4, 0.45, 0.5]) {
        for (const minKeyCoverage of [0, 0.5, 0.55, 0.6, 0.65, 0.7]) {
          const options = { minRelevance, minKeyCoverage, checkAnswerType: checks, checkContradiction: checks };
          const c = sweep(options, 'calibration');
          const h = sweep(options, 'held-out');
          rows.push([`${minRelevance} / ${minKeyCoverage} / ${checks ? 'on' : 'off'}`, pct(c.containsGold), pct(c.unanswerableAbstained), pct(h.containsGold), pct(h.unanswerableAbstained)]);
        }
      }
    }
    printTable('Sweep of minRelevance / minKeyCoverage / answer-type and contradiction checks (extractive), on the retrieved sources', [
      'minRelevance / minKeyCoverage / answer-type and contradiction checks',
      'calibration: contains gold',
      'calibration: unanswerable abstained',
      'held-out: contains gold',
      'held-out: unanswerable abstained',
    ], rows);

    // Off-topic: SciFact claims asked of the SQuAD collection (nothing there answers them).
    const claims = loadScifact().queries.slice(0, 200);
    let offAbstained = 0;
    const offTop: number[] = [];
    for (const claim of claims) {
      const result = await query.ask({ collection: 'squad2', question: claim.text, mode }, { access: caller });
      if (result.abstained) offAbstained++;
      const best = Math.max(...result.sources.map((s) => s.vectorScore ?? -1));
      offTop.push(best);
    }
    const onTop = queries.map((q) => Math.max(...retrieved.get(q.id)!.map((s) => s.vectorScore ?? -1)));
    const quant = (xs: number[]) => [5, 25, 50, 75, 95].map((p) => percentile(xs, p).toFixed(3)).join(' / ');
    console.log(`\nOff-topic: ${claims.length} SciFact claims asked of the SQuAD collection: ${pct(offAbstained / claims.length)} abstained.`);
    console.log(`Best vector similarity p5/p25/p50/p75/p95: SQuAD questions ${quant(onTop)}; off-topic claims ${quant(offTop)}.`);
  } finally {
    await app.stop();
    await rm(tmp, { recursive: true, force: true });
  }

  if (process.env['KBQL_BENCH_SKIP_SCIFACT'] !== '1') {
    console.log('\nSciFact retrieval (bench/scifact.bench.ts):');
    const run = spawnSync(process.execPath, [path.join(__dirname, 'scifact.bench.js')], { stdio: 'inherit', env: process.env });
    if (run.status !== 0) throw new Error(`scifact bench exited with ${run.status}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
