import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { collectFiles, globToRegExp } from '../../src/cli/files';

describe('kbql ingest: file selection', () => {
  let dir: string;
  const cwd = process.cwd();

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-files-'));
    for (const file of ['a.md', 'b.TXT', 'c.htm', 'd.pdf', 'sub/e.markdown', 'sub/deep/f.html', '.hidden/g.md', 'node_modules/x/h.md']) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), 'x');
    }
    process.chdir(dir);
  });
  after(async () => {
    process.chdir(cwd);
    await rm(dir, { recursive: true, force: true });
  });

  it('walks folders for .md/.markdown/.txt/.html/.htm, skipping hidden entries and node_modules; ids are relative to the base', async () => {
    const { files, skipped, unmatched } = await collectFiles(['.'], dir);
    assert.deepEqual(
      files.map((f) => `${f.id}:${f.contentType}`),
      ['a.md:MARKDOWN', 'b.TXT:TEXT', 'c.htm:HTML', 'sub/deep/f.html:HTML', 'sub/e.markdown:MARKDOWN'],
    );
    assert.deepEqual(skipped, [path.join(dir, 'd.pdf')]);
    assert.deepEqual(unmatched, []);
  });

  it('expands globs from their literal prefix, de-duplicates, and reports arguments that match nothing', async () => {
    const { files, unmatched } = await collectFiles(
      ['sub/**/*.{html,markdown}', 'sub/e.markdown', 'nothing/*.md', 'missing.md'],
      path.join(dir, 'sub'),
    );
    assert.deepEqual(
      files.map((f) => f.id),
      ['deep/f.html', 'e.markdown'],
    );
    assert.deepEqual(unmatched, ['nothing/*.md', 'missing.md']);
  });

  it('translates globs: * and ? within a segment, ** across segments, {a,b} and [!x]', () => {
    const re = globToRegExp('**/*.{md,txt}');
    assert.ok(re.test('a.md') && re.test('x/y/a.txt'));
    assert.ok(!re.test('a.html') && !re.test('a.md.bak'));
    assert.ok(globToRegExp('*.md').test('a.md') && !globToRegExp('*.md').test('x/a.md'));
    assert.ok(globToRegExp('notes/[!_]*.md').test('notes/a.md') && !globToRegExp('notes/[!_]*.md').test('notes/_a.md'));
    assert.ok(globToRegExp('v?.txt').test('v1.txt') && !globToRegExp('v?.txt').test('v10.txt'));
    assert.ok(globToRegExp('a.b').test('a.b') && !globToRegExp('a.b').test('axb'));
  });
});
