/**
 * Citation markers in synthesized answers: parsing, sentence attribution and verification against the sources.
 * Pure helpers shared by every synthesizer, so every {@link Synthesis} satisfies the port's promise that each `[n]`
 * left in an answer names a source that supports its sentence.
 */
import type { AnswerSource, Citation } from '../ports/answer-synthesizer.port';
import { splitSentences } from './tokenize';
import { stemmedTerms } from './relevance';

/** One bracketed marker token in a text: `[2]`, `[1, 3]`, `[1-3]`, `[Source 2]`. */
export interface CitationMarker {
  /** Offsets of the whole token, brackets included. */
  start: number;
  end: number;
  /** The cited numbers in order, ranges expanded, duplicates removed. */
  numbers: number[];
}

/** A sentence of an answer with its offsets in the answer; its markers are part of `text`. */
export interface AnswerSentence {
  text: string;
  start: number;
  end: number;
}

export interface VerifyCitationsOptions {
  /**
   * Least share of a sentence's content terms (light-stemmed, markers excluded) that must occur in the cited
   * source's title or chunk text for the marker to count as supported. Measured on SQuAD 2 paragraphs
   * (`bench/synthesizer-squad2.bench.ts`): at 0.5, every sentence is supported by its own paragraph, 70% still are
   * with a third of their words replaced at random, 4.6% are by the most similar other paragraph and 0.1% by a
   * random one (0.4: 89%, 7.8%, 0.2%).
   * @default 0.5
   */
  minSupport?: number;
}

export interface VerifiedAnswer {
  /** The answer with unknown and unsupported markers removed and whitespace tidied; may be empty. */
  answer: string;
  /**
   * One entry per (sentence, cited number) for numbers that name an existing source, in order of appearance;
   * `supported: false` entries were removed from `answer`. `sentence` is the sentence as it appears in `answer`.
   */
  citations: Citation[];
  /** Numbers removed from the answer (no such source, or the source does not support the sentence), first-seen order. */
  unsupportedMarkers: number[];
}

/** @see VerifyCitationsOptions.minSupport */
export const DEFAULT_MIN_SUPPORT = 0.5;

const ITEM = String.raw`(?:source\s*)?\d{1,3}(?:\s*[-–]\s*\d{1,3})?`;
const MARKER = new RegExp(String.raw`\[\s*${ITEM}(?:\s*[,;]\s*${ITEM})*\s*\]`, 'gi');
/** Longest range expanded (`[1-3]`); a wider "range" is not a citation (e.g. `[10-90]`). */
const MAX_RANGE = 10;

/** Every citation marker token in `text`, in order. Bracketed text that is not a marker is ignored. */
export function parseMarkers(text: string): CitationMarker[] {
  const out: CitationMarker[] = [];
  for (const match of text.matchAll(MARKER)) {
    const numbers = parseNumbers(match[0]);
    if (numbers) out.push({ start: match.index, end: match.index + match[0].length, numbers });
  }
  return out;
}

function parseNumbers(token: string): number[] | null {
  const numbers: number[] = [];
  for (const item of token.slice(1, -1).split(/[,;]/)) {
    const [lo, hi] = item
      .replace(/source/i, '')
      .split(/[-–]/)
      .map((part) => Number.parseInt(part.trim(), 10));
    if (lo === undefined || Number.isNaN(lo)) return null;
    const last = hi === undefined || Number.isNaN(hi) ? lo : hi;
    if (last < lo || last - lo > MAX_RANGE) return null;
    for (let n = lo; n <= last; n++) if (!numbers.includes(n)) numbers.push(n);
  }
  return numbers;
}

/** `text` without any citation marker (whitespace left by them tidied). */
export function stripMarkers(text: string): string {
  return tidy(replaceMarkers(text, parseMarkers(text), () => false));
}

/**
 * Sentences of an answer, using the shared splitter and then attributing markers correctly: a marker group that
 * opens a span (`Paris is big. [1] It…`) belongs to the sentence before it, and a span is split after a marker group
 * that touches sentence punctuation (`big.[1] it…`, `big [1]. it…`), ends a line, or is followed by a capital.
 */
export function splitAnswerSentences(answer: string): AnswerSentence[] {
  const markers = parseMarkers(answer);
  const markerAt = new Map(markers.map((m) => [m.start, m]));
  const groupEnd = (pos: number): number => {
    let end = pos;
    for (;;) {
      let q = end;
      while (answer[q] === ' ' || answer[q] === '\t') q++;
      const marker = markerAt.get(q);
      if (!marker) return end;
      end = marker.end;
    }
  };

  const spans = splitSentences(answer).map(({ start, end }) => ({ start, end }));
  for (let i = 1; i < spans.length; i++) {
    const span = spans[i]!;
    const end = groupEnd(span.start);
    if (end === span.start) continue;
    spans[i - 1]!.end = end;
    let start = end;
    while (start < span.end && /\s/.test(answer[start]!)) start++;
    span.start = start;
  }

  const out: AnswerSentence[] = [];
  const emit = (start: number, end: number): void => {
    let s = start;
    let e = end;
    while (s < e && /\s/.test(answer[s]!)) s++;
    while (e > s && /\s/.test(answer[e - 1]!)) e--;
    if (e > s) out.push({ text: answer.slice(s, e), start: s, end: e });
  };
  for (const span of spans) {
    if (span.end <= span.start) continue;
    let start = span.start;
    for (const marker of markers) {
      if (marker.start < start || marker.end > span.end) continue;
      // Every marker of a group reaches the same decision; once split, the later ones fall before `start`.
      const end = groupEnd(marker.start);
      if (end >= span.end) continue;
      const after = /^([.!?]+["'”’)\]]*)?(\s+)(.?)/u.exec(answer.slice(end, span.end));
      if (!after) continue;
      const before = answer.slice(start, marker.start);
      const split =
        /[.!?]["'”’)\]]*\s*$/.test(before) ||
        after[1] !== undefined ||
        after[2]!.includes('\n') ||
        /[\p{Lu}\p{N}"'“‘]/u.test(after[3] ?? '');
      if (!split) continue;
      emit(start, end + (after[1]?.length ?? 0));
      start = end + after[0].length - (after[3]?.length ?? 0);
    }
    emit(start, span.end);
  }
  return out;
}

/**
 * Share of `claim`'s distinct content terms (light-stemmed, markers excluded) present in `sourceTerms`;
 * 1 when the claim has no content terms (nothing to contradict).
 */
export function supportScore(claim: string, sourceTerms: ReadonlySet<string>): number {
  const terms = new Set(stemmedTerms(stripMarkers(claim)));
  if (terms.size === 0) return 1;
  let found = 0;
  for (const term of terms) if (sourceTerms.has(term)) found++;
  return found / terms.size;
}

/** The stemmed terms a source can support: its document title and its chunk text. */
export function sourceTerms(source: AnswerSource): Set<string> {
  return new Set(stemmedTerms(`${source.document.title ?? ''}\n${source.chunk.text}`));
}

/**
 * Checks every marker of `answer` against `sources` (by `n`): a marker survives only when its source exists and
 * supports the sentence carrying it (see {@link VerifyCitationsOptions.minSupport}).
 */
export function verifyCitations(answer: string, sources: readonly AnswerSource[], options: VerifyCitationsOptions = {}): VerifiedAnswer {
  const minSupport = options.minSupport ?? DEFAULT_MIN_SUPPORT;
  const byN = new Map(sources.map((s) => [s.n, s]));
  const termsByN = new Map<number, Set<string>>();
  const termsOf = (source: AnswerSource): Set<string> => {
    let terms = termsByN.get(source.n);
    if (!terms) termsByN.set(source.n, (terms = sourceTerms(source)));
    return terms;
  };

  const citations: Citation[] = [];
  const unsupported: number[] = [];
  const flag = (n: number): void => {
    if (!unsupported.includes(n)) unsupported.push(n);
  };
  const markers = parseMarkers(answer);
  let out = '';
  let previousEnd = 0;
  for (const sentence of splitAnswerSentences(answer)) {
    const inside = markers.filter((m) => m.start >= sentence.start && m.end <= sentence.end);
    const decided = new Map<number, boolean>();
    for (const marker of inside) {
      for (const n of marker.numbers) {
        if (decided.has(n)) continue;
        const source = byN.get(n);
        const ok = source !== undefined && supportScore(sentence.text, termsOf(source)) >= minSupport;
        decided.set(n, ok);
        if (!ok) flag(n);
      }
    }
    const local = inside.map((m) => ({ ...m, start: m.start - sentence.start, end: m.end - sentence.start }));
    const clean = tidy(replaceMarkers(sentence.text, local, (n) => decided.get(n) === true));
    if (!clean) {
      previousEnd = sentence.end;
      continue;
    }
    if (out) out += gap(answer.slice(previousEnd, sentence.start));
    out += clean;
    previousEnd = sentence.end;
    for (const [n, supported] of decided) if (byN.has(n)) citations.push({ marker: n, sentence: clean, supported });
  }

  // Belt and braces: nothing may name a missing source, whatever the splitter did.
  const leftovers = parseMarkers(out).filter((m) => m.numbers.some((n) => !byN.has(n)));
  if (leftovers.length > 0) {
    for (const m of leftovers) for (const n of m.numbers) if (!byN.has(n)) flag(n);
    out = tidy(replaceMarkers(out, leftovers, (n) => byN.has(n)));
  }
  return { answer: out, citations, unsupportedMarkers: unsupported };
}

/** Placeholder left where a marker (or part of a group) was removed, resolved by {@link tidy}. */
const HOLE = '\u0000';

/** Rewrites `markers` (sorted, offsets into `text`) keeping only the numbers `keep` accepts. */
function replaceMarkers(text: string, markers: readonly CitationMarker[], keep: (n: number) => boolean): string {
  let out = '';
  let cursor = 0;
  for (const m of markers) {
    out += text.slice(cursor, m.start);
    const kept = m.numbers.filter(keep);
    out += kept.length === m.numbers.length ? text.slice(m.start, m.end) : kept.length ? `[${kept.join(', ')}]` : HOLE;
    cursor = m.end;
  }
  return out + text.slice(cursor);
}

function tidy(text: string): string {
  return (
    text
      // Adjacent removed markers (`[2][9]`) leave one hole, so the punctuation rule below sees it.
      .replace(new RegExp(`${HOLE}(?:[ \\t]*${HOLE})+`, 'g'), HOLE)
      .replace(new RegExp(`[ \\t]*${HOLE}[ \\t]*(?=[.,;:!?)\\]]|$)`, 'gm'), '')
      .replace(new RegExp(`[ \\t]*${HOLE}[ \\t]*`, 'g'), ' ')
      .replace(/[ \t]{2,}/g, ' ')
      .trim()
  );
}

function gap(whitespace: string): string {
  if (/\n[ \t]*\n/.test(whitespace)) return '\n\n';
  return whitespace.includes('\n') ? '\n' : ' ';
}
