import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** The repository's root (the tests run from `dist/test/…`). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

/** README.md and every Markdown file under docs/, as paths relative to the root (`docs/api.md`). */
export function docFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(path.join(ROOT, dir))
      .sort()
      .flatMap((name) => {
        const rel = `${dir}/${name}`;
        if (statSync(path.join(ROOT, rel)).isDirectory()) return walk(rel);
        return name.endsWith('.md') ? [rel] : [];
      });
  return ['README.md', ...walk('docs')];
}

export const readDoc = (rel: string): string => readFileSync(path.join(ROOT, rel), 'utf8');

/** Languages of fenced blocks that a reader runs: each such block is marked runnable or not-run. */
export const RUNNABLE_LANGUAGES = new Set(['bash', 'sh', 'shell', 'graphql', 'gql', 'js', 'javascript', 'mjs', 'ts', 'typescript']);

export interface FencedBlock {
  lang: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** `<!-- runnable: name -->` on the line before the fence (blank lines allowed). */
  runnable: string | null;
  /** `<!-- not-run: reason -->` on the line before the fence. */
  notRun: string | null;
}

/** The fenced code blocks of a Markdown text, with the marker before each. */
export function fencedBlocks(text: string): FencedBlock[] {
  const lines = text.split('\n');
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})([\w-]*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    let end = i + 1;
    while (end < lines.length && !new RegExp(`^\\s*${fence}\\s*$`).test(lines[end]!)) end++;
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const marker = before >= 0 ? lines[before]!.trim() : '';
    blocks.push({
      lang: lang!,
      code:
        lines
          .slice(i + 1, end)
          .map((l) => (l.startsWith(indent!) ? l.slice(indent!.length) : l))
          .join('\n') + '\n',
      line: i + 1,
      runnable: /^<!-- runnable: ([\w-]+) -->$/.exec(marker)?.[1] ?? null,
      notRun: /^<!-- not-run: (.+) -->$/.exec(marker)?.[1] ?? null,
    });
    i = end;
  }
  return blocks;
}

/** Every `<!-- runnable: name -->` block of README.md and docs/, by name. */
export function runnableBlocks(): Map<string, FencedBlock & { file: string }> {
  const found = new Map<string, FencedBlock & { file: string }>();
  for (const file of docFiles()) {
    for (const block of fencedBlocks(readDoc(file))) {
      if (!block.runnable) continue;
      if (found.has(block.runnable))
        throw new Error(`runnable block ${block.runnable} is in ${found.get(block.runnable)!.file} and ${file}`);
      found.set(block.runnable, { ...block, file });
    }
  }
  return found;
}

/** The code of the runnable block `name`, wherever it lives. */
export function runnableBlock(name: string): string {
  const block = runnableBlocks().get(name);
  if (!block) throw new Error(`no <!-- runnable: ${name} --> block in README.md or docs/`);
  return block.code;
}

/** The text with fenced blocks and inline code blanked out (links inside code are not links). */
export function proseOf(text: string): string {
  const lines = text.split('\n');
  for (const block of fencedBlocks(text)) {
    const lineCount = block.code.split('\n').length; // code lines + the closing fence
    for (let i = block.line - 1; i < block.line + lineCount && i < lines.length; i++) lines[i] = '';
  }
  return lines.join('\n').replace(/(`+)[\s\S]*?\1/g, (code) => code.replace(/[^\n]/g, ' '));
}

/** GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces → hyphens. */
export function githubSlug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown text's headings, duplicates numbered as GitHub does (`x`, `x-1`, …). */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseOfHeadings(text)) {
    const slug = githubSlug(line);
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

function proseOfHeadings(text: string): string[] {
  const lines = text.split('\n');
  const inCode = new Set<number>();
  for (const block of fencedBlocks(text)) {
    for (let i = block.line - 1; i < block.line + block.code.split('\n').length; i++) inCode.add(i);
  }
  return lines.flatMap((line, i) => {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    return heading && !inCode.has(i) ? [heading[1]!] : [];
  });
}

/** The targets of the Markdown links `[text](target)` in a text's prose. */
export function linkTargets(text: string): string[] {
  return [...proseOf(text).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
}

/**
 * Problems with the links of one Markdown file (`file` relative to the root): a relative link to a missing file, an
 * anchor that names no heading of its page, or a link that leaves the repository.
 */
export function linkProblems(file: string, text: string, read: (rel: string) => string | null = readOrNull): string[] {
  const problems: string[] = [];
  for (const target of linkTargets(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
    const [rawPath, anchor] = target.split('#', 2) as [string, string | undefined];
    const resolved = rawPath === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURI(rawPath)));
    if (resolved.startsWith('../') || path.posix.isAbsolute(resolved)) {
      problems.push(`${file}: link ${target} leaves the repository`);
      continue;
    }
    const content = rawPath === '' ? text : read(resolved);
    if (content === null && !existsSync(path.join(ROOT, resolved))) {
      problems.push(`${file}: link ${target} → ${resolved} does not exist`);
      continue;
    }
    if (anchor !== undefined && resolved.endsWith('.md')) {
      if (content === null || !headingAnchors(content).has(anchor))
        problems.push(`${file}: link ${target} → no heading #${anchor} in ${resolved}`);
    }
  }
  return problems;
}

function readOrNull(rel: string): string | null {
  const full = path.join(ROOT, rel);
  return existsSync(full) && statSync(full).isFile() ? readFileSync(full, 'utf8') : null;
}

/** Paths anywhere in a file's text (code included) that point outside the repository: `../` past the root, `shared/data`. */
export function outsidePathProblems(file: string, text: string): string[] {
  const problems: string[] = [];
  for (const m of text.matchAll(/(?:\.\.\/)+[^\s)`'"<>\]]*/g)) {
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[0]));
    if (resolved.startsWith('../')) problems.push(`${file}: path ${m[0]} leaves the repository`);
  }
  if (/shared\/data/.test(text)) problems.push(`${file}: names shared/data, which a clone does not have`);
  return problems;
}

/** Fenced blocks in a runnable language without a `runnable` or `not-run` marker. */
export function unmarkedBlockProblems(file: string, text: string): string[] {
  return fencedBlocks(text)
    .filter((b) => RUNNABLE_LANGUAGES.has(b.lang) && !b.runnable && !b.notRun)
    .map((b) => `${file}:${b.line}: a ${b.lang} block without <!-- runnable: name --> or <!-- not-run: reason --> before it`);
}

/** Longest summary line: one line of prose at the pages' line length. */
export const SUMMARY_MAX_CHARS = 120;

/**
 * A page of docs/ opens with `# Title`, a blank line and a one-line summary: one sentence on one line, ending with a
 * full stop, followed by a blank line. A page that is only its title passes (a stub to be written).
 */
export function summaryProblems(file: string, text: string): string[] {
  const lines = text.split('\n');
  if (!/^# \S/.test(lines[0] ?? '')) return [`${file}: the first line is not a "# " title`];
  if (lines.slice(1).every((l) => l.trim() === '')) return [];
  const [blank, summary = '', after] = lines.slice(1, 4);
  if (blank !== '') return [`${file}: no blank line after the title`];
  if (!/^[A-Z`[]/.test(summary) || !/\.$/.test(summary))
    return [`${file}: line 3 is not a one-sentence summary ending with a full stop: ${summary}`];
  if (summary.length > SUMMARY_MAX_CHARS) return [`${file}: the summary is longer than ${SUMMARY_MAX_CHARS} characters`];
  if (after !== undefined && after.trim() !== '') return [`${file}: the summary runs onto a second line`];
  return [];
}
