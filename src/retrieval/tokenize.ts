/**
 * Shared text helpers for the offline embedder, the extractive synthesizer and citation checks,
 * so all three agree on what a "term" is.
 */

const WORD = /\p{N}+(?:[.,]\p{N}+)*(?:\p{L}[\p{L}\p{M}\p{N}]*)?|[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}]+)?/gu;

/** Lower-cased word tokens (letters and digits, inner apostrophes kept). */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const match of text.toLowerCase().matchAll(WORD)) {
    const word = match[0];
    // Most words have no apostrophe: skip the two replacements (a keyword search tokenizes hundreds of chunks).
    out.push(word.includes("'") || word.includes('’') ? word.replace(/’/g, "'").replace(/'s$/, '') : word);
  }
  return out;
}

/** English function words that carry no topic (kept short on purpose: domain words must survive). */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a an and are as at be been being but by can could did do does doing done for from had has have having he her ' +
    'here hers him his how i if in into is it its itself just me more most my no nor not of off on once only or ' +
    'other our ours out over own same she should so some such than that the their theirs them then there these ' +
    'they this those through to too under until up very was we were what when where which while who whom why will ' +
    'with would you your yours also may might must shall via per about above after again against all am any ' +
    'because before below between both during each few further now ' +
    "don't doesn't didn't can't cannot couldn't won't wouldn't shouldn't isn't aren't wasn't weren't hasn't haven't " +
    "hadn't it's that's there's i'm you're we're they're i've you've we've they've let's"
  ).split(' '),
);

/** Tokens minus stopwords. */
export function contentTerms(text: string): string[] {
  return tokenize(text).filter((t) => !STOPWORDS.has(t));
}

/**
 * Sentence spans of `text` with their offsets. Splits after `.`, `!`, `?` (and runs of them, with closing quotes or
 * brackets, and footnote markers such as `[note 3]`) followed by whitespace and an upper-case letter, digit or quote,
 * and on blank lines; avoids splitting after common abbreviations and single initials.
 */
export function splitSentences(text: string): { text: string; start: number; end: number }[] {
  const spans: { text: string; start: number; end: number }[] = [];
  const boundary = /([.!?]+["'”’)\]]*(?:\[[^\]\n]{1,40}\])*)\s+(?=["'“‘([]?[\p{Lu}\p{N}])|\n\s*\n/gu;
  let start = 0;
  for (const match of text.matchAll(boundary)) {
    const end = match.index + (match[1]?.length ?? 0);
    const candidate = text.slice(start, end);
    if (match[1] && (ABBREVIATION.test(candidate) || INITIAL.test(candidate))) continue;
    push(spans, text, start, end);
    start = match.index + match[0].length;
  }
  push(spans, text, start, text.length);
  return spans;
}

const ABBREVIATION = /\b(?:e\.g|i\.e|etc|vs|cf|al|fig|figs|dr|mr|mrs|ms|prof|st|vol|approx|inc|ltd|jr|sr)\.$/i;
const INITIAL = /(?:^|[\s(])\p{Lu}\.$/u;

function push(spans: { text: string; start: number; end: number }[], text: string, start: number, end: number): void {
  let s = start;
  let e = end;
  while (s < e && /\s/.test(text[s]!)) s++;
  while (e > s && /\s/.test(text[e - 1]!)) e--;
  if (e > s) spans.push({ text: text.slice(s, e), start: s, end: e });
}
