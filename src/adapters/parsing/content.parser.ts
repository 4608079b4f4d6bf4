import { Parser } from 'htmlparser2';
import { badInput } from '../../errors';
import type { DocumentParser, ParsedDocument } from '../../ports/document-processor.port';
import type { ContentType } from '../../ports/knowledge-store.port';

/** Elements whose content is never text a reader sees. */
const DROPPED = new Set(['script', 'style', 'noscript', 'template', 'svg', 'math', 'iframe', 'object', 'canvas', 'head']);
/** Elements that end a line (block-level). */
const BLOCK = new Set([
  'address', 'article', 'aside', 'blockquote', 'br', 'dd', 'details', 'dialog', 'div', 'dl', 'dt', 'fieldset',
  'figcaption', 'figure', 'footer', 'form', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'li', 'main', 'nav',
  'ol', 'p', 'pre', 'section', 'summary', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'ul', 'caption',
]);
/** Block elements after which a blank line (paragraph break) is kept. */
const PARAGRAPH = new Set(['p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'pre', 'table', 'ul', 'ol', 'section', 'article', 'hr']);

/** Plain text, Markdown and HTML (through htmlparser2) into clean text for chunking. */
export class ContentParser implements DocumentParser {
  parse(content: string, contentType: ContentType): ParsedDocument {
    const parsed = contentType === 'HTML' ? parseHtml(content) : parsePlain(content, contentType);
    if (parsed.text.trim() === '') throw badInput('The document has no text after parsing.', { field: 'content', reason: 'EMPTY' });
    return parsed;
  }
}

function normalise(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '')
    .replace(/[ \t\u00a0]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function parsePlain(content: string, contentType: ContentType): ParsedDocument {
  const text = normalise(contentType === 'TEXT' ? content.replace(/[ \t]+/g, ' ') : content);
  const heading = contentType === 'MARKDOWN' ? /^#\s+(.+?)\s*#*\s*$/m.exec(text) : null;
  return { text, title: heading ? heading[1]!.trim() : null };
}

function parseHtml(content: string): ParsedDocument {
  const out: string[] = [];
  let dropDepth = 0;
  let preDepth = 0;
  let inTitle = false;
  let title = '';
  let h1: string | null = null;
  let h1Depth = 0;
  let h1Text = '';
  const parser = new Parser(
    {
      onopentag(name) {
        if (name === 'title') inTitle = true;
        if (DROPPED.has(name)) dropDepth++;
        if (dropDepth > 0) return;
        if (name === 'pre') preDepth++;
        if (name === 'h1' && h1 === null) h1Depth++;
        if (BLOCK.has(name)) out.push('\n');
        if (name === 'li') out.push('- ');
        if (name === 'td' || name === 'th') out.push(' ');
      },
      ontext(text) {
        if (inTitle) title += text;
        if (dropDepth > 0) return;
        const piece = preDepth > 0 ? text : text.replace(/\s+/g, ' ');
        if (h1Depth > 0) h1Text += piece;
        out.push(piece);
      },
      onclosetag(name) {
        if (name === 'title') inTitle = false;
        if (DROPPED.has(name)) {
          dropDepth = Math.max(0, dropDepth - 1);
          return;
        }
        if (dropDepth > 0) return;
        if (name === 'pre') preDepth = Math.max(0, preDepth - 1);
        if (name === 'h1' && h1Depth > 0) {
          h1Depth--;
          if (h1Depth === 0) h1 = h1Text.replace(/\s+/g, ' ').trim() || null;
        }
        if (BLOCK.has(name)) out.push(PARAGRAPH.has(name) ? '\n\n' : '\n');
      },
    },
    { decodeEntities: true, lowerCaseTags: true, recognizeSelfClosing: true },
  );
  parser.write(content);
  parser.end();
  const text = normalise(
    out
      .join('')
      .split('\n')
      .map((line) => line.replace(/[ \t]+/g, ' ').trim())
      .join('\n'),
  );
  const cleanTitle = title.replace(/\s+/g, ' ').trim();
  return { text, title: cleanTitle || h1 };
}
