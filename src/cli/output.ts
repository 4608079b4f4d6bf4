/** Human output goes to stdout line by line; `--json` output is one JSON document on stdout. */
export function writeLine(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One line, at most `max` characters, whitespace collapsed. */
export function snippet(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** How a source is named in human output: its title, then where it came from. */
export function describeDocument(doc: { title: string | null; externalId: string; source: string | null }): string {
  const where = doc.source ?? doc.externalId;
  return doc.title && doc.title !== where ? `${doc.title} (${where})` : where;
}
