import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The evaluation data lives outside the project in `../shared/data` (never copied in).
 * `KBQL_DATA_SHARED` points elsewhere when needed.
 */
export function sharedDataDir(): string {
  const candidates = [
    process.env.KBQL_DATA_SHARED,
    path.resolve(process.cwd(), '..', 'shared', 'data'),
    path.resolve(__dirname, '..', '..', '..', 'shared', 'data'),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`shared evaluation data not found (looked in ${candidates.join(', ')}); set KBQL_DATA_SHARED`);
  return found;
}

export interface BeirSet {
  corpus: { id: string; title: string; text: string }[];
  queries: { id: string; text: string }[];
  /** query id → relevant corpus ids with grades. */
  qrels: Map<string, Map<string, number>>;
}

export function loadScifact(): BeirSet {
  const dir = path.join(sharedDataDir(), 'scifact');
  const jsonl = <T>(file: string) =>
    readFileSync(path.join(dir, file), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as T);
  const corpus = jsonl<{ _id: string; title: string; text: string }>('corpus.jsonl').map((d) => ({
    id: d._id,
    title: d.title,
    text: d.text,
  }));
  const qrels = new Map<string, Map<string, number>>();
  for (const line of readFileSync(path.join(dir, 'qrels', 'train.tsv'), 'utf8')
    .split('\n')
    .slice(1)) {
    const [q, d, s] = line.trim().split('\t');
    if (!q || !d) continue;
    if (!qrels.has(q)) qrels.set(q, new Map());
    qrels.get(q)!.set(d, Number(s));
  }
  const queries = jsonl<{ _id: string; text: string }>('queries.jsonl')
    .map((q) => ({ id: q._id, text: q.text }))
    .filter((q) => qrels.has(q.id));
  return { corpus, queries, qrels };
}

/** One SQuAD 2 question: its paragraph and, in the ground truth, its gold answers (none when unanswerable). */
export interface SquadQuery {
  id: string;
  context: string;
  question: string;
}
export interface SquadTruth {
  answers: string[];
  is_impossible: boolean;
}
export interface SquadSet {
  queries: SquadQuery[];
  truth: Record<string, SquadTruth>;
  /** The distinct paragraphs, in first-seen order. */
  contexts: string[];
}

/** `../shared/data/squad2`: the questions, their ground truth and the distinct paragraphs. */
export function loadSquad2(): SquadSet {
  const dir = path.join(sharedDataDir(), 'squad2');
  const queries = (JSON.parse(readFileSync(path.join(dir, 'queries.json'), 'utf8')) as { queries: SquadQuery[] }).queries;
  const truth = JSON.parse(readFileSync(path.join(dir, 'ground_truth.json'), 'utf8')) as Record<string, SquadTruth>;
  return { queries, truth, contexts: [...new Set(queries.map((q) => q.context))] };
}

/** SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces. */
export function normalizeAnswer(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** SQuAD's token F1 between a prediction and one gold answer (normalised bags of words). */
export function tokenF1(prediction: string, gold: string): number {
  const p = normalizeAnswer(prediction).split(' ').filter(Boolean);
  const g = normalizeAnswer(gold).split(' ').filter(Boolean);
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

/** Whether `text` contains one of the gold answers as whole normalised words. */
export const containsGold = (text: string, golds: readonly string[]): boolean =>
  golds.some((g) => ` ${normalizeAnswer(text)} `.includes(` ${normalizeAnswer(g)} `));

/** nDCG@k with graded relevance (BEIR's definition, log2 discount). */
export function ndcgAt(ranked: readonly string[], relevant: Map<string, number>, k: number): number {
  let dcg = 0;
  ranked.slice(0, k).forEach((id, i) => {
    const rel = relevant.get(id) ?? 0;
    if (rel > 0) dcg += (2 ** rel - 1) / Math.log2(i + 2);
  });
  const ideal = [...relevant.values()].sort((a, b) => b - a).slice(0, k);
  const idcg = ideal.reduce((sum, rel, i) => sum + (2 ** rel - 1) / Math.log2(i + 2), 0);
  return idcg === 0 ? 0 : dcg / idcg;
}

export function recallAt(ranked: readonly string[], relevant: Map<string, number>, k: number): number {
  const wanted = [...relevant.entries()].filter(([, r]) => r > 0).map(([id]) => id);
  if (wanted.length === 0) return 0;
  const top = new Set(ranked.slice(0, k));
  return wanted.filter((id) => top.has(id)).length / wanted.length;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Prints rows as an aligned text table. */
export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]) => `| ${r.map((c, i) => String(c).padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`\n${title}\n${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const r of cells.slice(1)) process.stdout.write(`${line(r)}\n`);
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toFixed(4);
}
