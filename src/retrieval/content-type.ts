import type { ContentType } from '../ports/knowledge-store.port';

/** HTML when it starts like markup, Markdown when it has Markdown block structure, TEXT otherwise. */
export function detectContentType(content: string): ContentType {
  const head = content.trimStart().slice(0, 2000);
  if (/^<(?:!doctype html|html|head|body|div|p|article|section|h[1-6]|table|ul|ol)\b/i.test(head)) return 'HTML';
  if (/^(?:#{1,6} \S|```|[-*+] \S|\d+\. \S|> \S)/m.test(head) || /\[[^\]]+\]\([^)]+\)/.test(head)) return 'MARKDOWN';
  return 'TEXT';
}
