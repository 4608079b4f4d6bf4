import { Parser } from 'htmlparser2';
import { badInput } from '../../errors';
import type { DocumentParser, ParsedDocument } from '../../ports/document-processor.port';
import type { ContentType } from '../../ports/knowledge-store.port';

/**
 * Raw content into clean text for chunking and indexing.
 * - TEXT: newlines normalised, runs of spaces and tabs collapsed, at most one blank line between paragraphs.
 * - MARKDOWN: kept as Markdown (the chunker splits on its headings), newlines normalised; title from the first `# `.
 * - HTML: parsed with htmlparser2; scripts, styles, templates, SVG, hidden elements and `<head>` (but its `<title>`)
 *   dropped; block elements become line or paragraph breaks, inline whitespace collapsed, `<pre>` kept verbatim,
 *   table cells separated by ` | `, entities decoded; title from `<title>`, else the first `<h1>`.
 * Content without any text afterwards is refused with BAD_USER_INPUT.
 */
export class ContentParser implements DocumentParser {
  parse(content: string, contentType: ContentType): ParsedDocument {
    const changes: TextChanges = { removedControlChars: 0, replacedSurrogates: 0 };
    const cleaned = clean(content, changes);
    const parsed = contentType === 'HTML' ? parseHtml(cleaned) : contentType === 'MARKDOWN' ? parseMarkdown(cleaned) : parseText(cleaned);
    if (!/[\p{L}\p{N}]/u.test(parsed.text)) {
      throw badInput('The document has no text after parsing.', { field: 'content', contentType });
    }
    return { ...parsed, notices: textNotices(changes) };
  }
}

/** Human-readable notices of what cleaning changed (none when nothing was). */
function textNotices(changes: TextChanges): string[] {
  const notices: string[] = [];
  if (changes.removedControlChars > 0) {
    notices.push(`${changes.removedControlChars} control character(s) (such as NUL) were removed from the text.`);
  }
  if (changes.replacedSurrogates > 0) {
    notices.push(`${changes.replacedSurrogates} unpaired UTF-16 surrogate(s) were replaced by U+FFFD.`);
  }
  return notices;
}

/** What cleaning changed in a document's text; reported on its result instead of changing it silently. */
export interface TextChanges {
  /** NUL and other control characters (but tab and newline) removed. */
  removedControlChars: number;
  /** Unpaired UTF-16 surrogates, which no store can keep, replaced by U+FFFD. */
  replacedSurrogates: number;
}

/**
 * Line endings to `\n`, BOM, zero-width and control characters (but tab and newline) removed, unpaired surrogates
 * replaced by U+FFFD, NFC. The two changes that alter what the sender wrote are counted into `changes`.
 */
function clean(text: string, changes: TextChanges): string {
  return text
    .replace(LONE_SURROGATE, () => {
      changes.replacedSurrogates++;
      return '\ufffd';
    })
    .normalize('NFC')
    .replace(/\r\n?|[\u2028\u2029\u0085]/g, '\n')
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, () => {
      changes.removedControlChars++;
      return '';
    })
    .replace(/[\ufeff\u200b]/g, '');
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Trailing spaces removed from lines, at most one blank line in a row, trimmed. Written without `\s+$`-style
 * patterns, which backtrack quadratically over long runs of spaces.
 */
function tidyLines(text: string): string {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) lines[i] = lines[i]!.trimEnd();
  let out = lines.join('\n').replace(/\n{3,}/g, '\n\n');
  let start = 0;
  while (start < out.length && out.charCodeAt(start) === 10) start++;
  out = out.slice(start).trimEnd();
  return out;
}

function parseText(content: string): Omit<ParsedDocument, 'notices'> {
  const text = tidyLines(content.replace(/[^\S\n]+/g, ' ').replace(/^ /gm, ''));
  return { text, title: null };
}

function parseMarkdown(content: string): Omit<ParsedDocument, 'notices'> {
  // Markdown is kept as written (indentation matters to code blocks and lists); only line ends and blank runs change.
  const text = tidyLines(content);
  return { text, title: markdownTitle(text) };
}

/** The first ATX level-1 heading outside fenced code, with inline markup removed. */
function markdownTitle(text: string): string | null {
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    const fenceMatch = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fenceMatch) {
      const marker = fenceMatch[1]!;
      if (fence === null) fence = marker[0]!.repeat(marker.length);
      else if (marker.startsWith(fence)) fence = null;
      continue;
    }
    if (fence !== null) continue;
    // A title is short: a longer line is not looked at (the patterns below would be slow on megabytes).
    if (line.length > MAX_TITLE_LINE_CHARS) continue;
    const heading = /^ {0,3}#[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (heading) {
      const title = heading[1]!
        .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
        .replace(/(\*\*|__|`)/g, '')
        .trim();
      if (title) return title;
    }
  }
  return null;
}

const MAX_TITLE_LINE_CHARS = 500;

/** Elements whose content is never text a reader sees. */
const DROPPED = new Set(['script', 'style', 'noscript', 'template', 'svg', 'math', 'head', 'iframe', 'object', 'canvas']);
/** Block elements followed by a blank line. */
const PARAGRAPH = new Set([
  'p',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'blockquote',
  'pre',
  'table',
  'ul',
  'ol',
  'dl',
  'section',
  'article',
  'header',
  'footer',
  'nav',
  'aside',
  'main',
  'figure',
  'form',
  'fieldset',
  'details',
  'address',
  'hr',
]);
/** Block elements that end a line. */
const LINE = new Set([
  'div',
  'li',
  'tr',
  'dt',
  'dd',
  'caption',
  'figcaption',
  'summary',
  'legend',
  'thead',
  'tbody',
  'tfoot',
  'option',
  'label',
  'body',
  'html',
]);

const enum Break {
  None = 0,
  Line = 1,
  Paragraph = 2,
}

/** Accumulates text with pending breaks so that whitespace between blocks never piles up. */
class TextBuilder {
  readonly #parts: string[] = [];
  #pending: Break = Break.None;
  #atLineStart = true;

  break(kind: Break): void {
    if (this.#parts.length > 0 && kind > this.#pending) this.#pending = kind;
  }

  /** `<br>`: a line break, a second one in a row a paragraph break. */
  lineBreak(): void {
    this.break(this.#pending === Break.None ? Break.Line : Break.Paragraph);
  }

  text(raw: string, verbatim: boolean): void {
    let piece = verbatim ? raw : raw.replace(/\s+/g, ' ');
    if (!verbatim && (this.#pending !== Break.None || this.#atLineStart)) piece = piece.trimStart();
    if (piece === '') return;
    if (this.#pending !== Break.None) {
      const last = this.#parts.length - 1;
      this.#parts[last] = trimEndOfLine(this.#parts[last]!);
      this.#parts.push(this.#pending === Break.Paragraph ? '\n\n' : '\n');
      this.#pending = Break.None;
    }
    this.#parts.push(piece);
    this.#atLineStart = piece.endsWith('\n');
  }

  toString(): string {
    return tidyLines(this.#parts.join(''));
  }
}

/** Trailing spaces and tabs (not newlines) removed, by a loop: `/[^\S\n]+$/` backtracks over long inner runs. */
function trimEndOfLine(text: string): string {
  let end = text.length;
  while (end > 0) {
    const code = text.charCodeAt(end - 1);
    if (code === 10 || !/\s/.test(text[end - 1]!)) break;
    end--;
  }
  return end === text.length ? text : text.slice(0, end);
}

function parseHtml(content: string): Omit<ParsedDocument, 'notices'> {
  const out = new TextBuilder();
  /** Open elements that drop their content (a stack of names, since they nest: `<head><style>`). */
  const dropped: string[] = [];
  /** Depth of hidden (`hidden`, `display:none`) elements, by tag name so the right close ends them. */
  const hidden: string[] = [];
  let preDepth = 0;
  let titleDepth = 0;
  let title = '';
  let h1Depth = 0;
  let h1 = '';
  let h1Done = false;
  const cellsInRow: number[] = [];

  const parser = new Parser(
    {
      onopentag(name, attributes) {
        if (name === 'title' && dropped.every((d) => d === 'head')) titleDepth++;
        if (DROPPED.has(name)) {
          dropped.push(name);
          return;
        }
        if (dropped.length > 0) return;
        if (hidden.length > 0 || isHidden(attributes)) {
          hidden.push(name);
          return;
        }
        if (name === 'pre') preDepth++;
        if (name === 'h1' && !h1Done) h1Depth++;
        if (name === 'tr') cellsInRow.push(0);
        if (name === 'td' || name === 'th') {
          const row = cellsInRow.length - 1;
          if (row >= 0) {
            if (cellsInRow[row]! > 0) out.text(' | ', true);
            cellsInRow[row]!++;
          }
        }
        if (name === 'br') out.lineBreak();
        else if (PARAGRAPH.has(name)) out.break(Break.Paragraph);
        else if (LINE.has(name)) out.break(Break.Line);
      },
      ontext(text) {
        if (titleDepth > 0) title += text;
        if (dropped.length > 0 || hidden.length > 0) return;
        if (h1Depth > 0) h1 += text;
        out.text(text, preDepth > 0);
      },
      onclosetag(name) {
        if (name === 'title' && titleDepth > 0) titleDepth--;
        if (dropped.length > 0) {
          if (dropped[dropped.length - 1] === name) dropped.pop();
          return;
        }
        if (hidden.length > 0) {
          if (hidden[hidden.length - 1] === name) hidden.pop();
          return;
        }
        if (name === 'pre' && preDepth > 0) preDepth--;
        if (name === 'h1' && h1Depth > 0 && --h1Depth === 0) h1Done = h1.trim() !== '';
        if (name === 'tr') cellsInRow.pop();
        if (PARAGRAPH.has(name)) out.break(Break.Paragraph);
        else if (LINE.has(name)) out.break(Break.Line);
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true, recognizeSelfClosing: true },
  );
  parser.write(content);
  parser.end();

  const text = out.toString();
  const cleanTitle = title.replace(/\s+/g, ' ').trim() || h1.replace(/\s+/g, ' ').trim();
  return { text, title: cleanTitle || null };
}

function isHidden(attributes: Record<string, string>): boolean {
  if ('hidden' in attributes) return true;
  if (attributes['aria-hidden'] === 'true') return true;
  const style = attributes['style'];
  return style !== undefined && /display\s*:\s*none|visibility\s*:\s*hidden/i.test(style);
}
