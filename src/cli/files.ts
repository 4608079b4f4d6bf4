import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ContentType } from '../generated/graphql';

/** File extensions `kbql ingest` reads, and the content type each is sent as. */
export const CONTENT_TYPES: Readonly<Record<string, ContentType>> = {
  '.md': 'MARKDOWN',
  '.markdown': 'MARKDOWN',
  '.txt': 'TEXT',
  '.html': 'HTML',
  '.htm': 'HTML',
};

/**
 * Extensions of files `kbql ingest --async` uploads (POST /v1/uploads) for the server to extract. Without --async
 * they are skipped, as before: the synchronous ingestDocuments takes text only.
 */
export const UPLOAD_EXTENSIONS: ReadonlySet<string> = new Set(['.pdf', '.docx']);

/** Directory entries a walk never enters: hidden ones (.git, .cache…) and node_modules. */
const SKIPPED_DIRS = (name: string) => name.startsWith('.') || name === 'node_modules';
const GLOB_CHARS = /[*?[\]{}]/;

export interface SourceFile {
  /** Absolute path. */
  path: string;
  /** The document id: the path relative to the base directory, with `/` separators. */
  id: string;
  /** How a text file is sent; null: the file is uploaded and the server extracts its text (`--async` only). */
  contentType: ContentType | null;
}

export interface CollectedFiles {
  /** Sorted by id, each file once. */
  files: SourceFile[];
  /** Files named or matched that have another extension. */
  skipped: string[];
  /** Arguments that matched nothing. */
  unmatched: string[];
}

/**
 * Expands `kbql ingest` arguments: a file, a directory (walked recursively for .md/.txt/.html — and .pdf/.docx with
 * `uploads` — hidden entries and node_modules skipped) or a glob (`docs/**\/*.md`, `notes/*.{md,txt}`; quote it so the
 * shell leaves it alone).
 * Ids are relative to `base`, so ingesting the same tree again from the same place updates the same documents.
 */
export async function collectFiles(args: readonly string[], base: string, options: { uploads?: boolean } = {}): Promise<CollectedFiles> {
  const found = new Map<string, SourceFile>();
  const skipped = new Set<string>();
  const unmatched: string[] = [];
  const add = (file: string, named: boolean) => {
    const absolute = path.resolve(file);
    const extension = path.extname(absolute).toLowerCase();
    const contentType = CONTENT_TYPES[extension];
    const id = path.relative(base, absolute).split(path.sep).join('/');
    // With uploads, a file named on the command line goes whatever its extension: the server sniffs its bytes.
    if (contentType) found.set(absolute, { path: absolute, id, contentType });
    else if (options.uploads && (named || UPLOAD_EXTENSIONS.has(extension))) found.set(absolute, { path: absolute, id, contentType: null });
    else skipped.add(absolute);
  };

  for (const arg of args) {
    const info = await stat(arg).catch(() => null);
    const matches = info?.isFile()
      ? [arg]
      : info?.isDirectory()
        ? await walk(path.resolve(arg))
        : GLOB_CHARS.test(arg)
          ? await expandGlob(arg)
          : [];
    if (matches.length === 0) unmatched.push(arg);
    for (const file of matches) add(file, info?.isFile() === true);
  }
  const files = [...found.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { files, skipped: [...skipped].sort(), unmatched };
}

/** Every file under `dir`, depth first, hidden entries and node_modules left out. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    if (SKIPPED_DIRS(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

/** Files matching a glob: the walk starts at its longest literal directory prefix. */
export async function expandGlob(pattern: string): Promise<string[]> {
  const normalised = pattern.split(path.sep).join('/');
  const segments = normalised.split('/');
  const literal: string[] = [];
  while (segments.length > 1 && !GLOB_CHARS.test(segments[0]!)) literal.push(segments.shift()!);
  const root = path.resolve(literal.length === 0 ? '.' : literal.join('/') || '/');
  const matcher = globToRegExp(segments.join('/'));
  const info = await stat(root).catch(() => null);
  if (!info?.isDirectory()) return [];
  return (await walk(root)).filter((file) => matcher.test(path.relative(root, file).split(path.sep).join('/')));
}

/** `*` and `?` stay within a path segment, `**` spans segments, `{a,b}` alternates, `[abc]` / `[!abc]` are classes. */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${globSource(glob)}$`);
}

function globSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const segmentStart = i === 0 || glob[i - 1] === '/';
        i++;
        if (segmentStart && glob[i + 1] === '/') {
          out += '(?:[^/]*/)*';
          i++;
        } else out += '.*';
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '{') {
      const end = glob.indexOf('}', i);
      if (end === -1) out += '\\{';
      else {
        out += `(?:${glob
          .slice(i + 1, end)
          .split(',')
          .map(globSource)
          .join('|')})`;
        i = end;
      }
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end === -1) out += '\\[';
      else {
        const body = glob.slice(i + 1, end);
        out += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else out += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return out;
}
