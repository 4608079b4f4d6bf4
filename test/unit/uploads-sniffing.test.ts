import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileUploadStore } from '../../src/adapters/jobs/file.upload-store';
import { FileExtractor } from '../../src/adapters/parsing/file.extractor';
import { declaredKind, sniffFile } from '../../src/adapters/parsing/file-sniffer';
import { isAppError } from '../../src/errors';
import type { Principal } from '../../src/ports/principal.port';
import { normaliseFilename, UploadService } from '../../src/modules/jobs/upload.service';
import { corruptDocx, corruptPdf, minimalDocx, minimalPdf, pngBytes, zip } from '../helpers/jobs-fixtures';

const writer: Principal = { kind: 'user', subject: 'w', tenant: 'acme', role: 'WRITER' };

/** The `reason` detail of the AppError `work` rejects with. */
async function reasonOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (error) {
    assert.ok(isAppError(error), `an AppError, got ${String(error)}`);
    assert.equal(error.code, 'BAD_USER_INPUT');
    return String(error.details['reason']);
  }
  assert.fail('expected a rejection');
}

describe('file type sniffing', () => {
  it('judges files by their bytes, not their names', () => {
    assert.equal(sniffFile(minimalPdf(['hello'])).kind, 'PDF');
    assert.equal(sniffFile(minimalDocx(['hello'])).kind, 'DOCX');
    assert.deepEqual(sniffFile(pngBytes()), { kind: 'BINARY', description: 'PNG image' });
    assert.deepEqual(sniffFile(zip({ 'a.txt': 'x' })), { kind: 'BINARY', description: 'ZIP archive' });
    assert.equal(sniffFile(Buffer.alloc(0)).kind, 'EMPTY');
    assert.equal(sniffFile(Buffer.from(' \n\t\r\n')).kind, 'EMPTY');
    assert.equal(sniffFile(Buffer.from('# Title\n\nSome text — with “quotes” and ünïcödé.')).kind, 'TEXT');
    assert.equal(sniffFile(Buffer.from([0x48, 0x69, 0xe9, 0x20, 0x74, 0x65, 0x78, 0x74])).kind, 'BINARY', 'Latin-1 bytes are not UTF-8');
    assert.equal(sniffFile(Buffer.from('text\u0000with a NUL')).kind, 'BINARY');
  });

  it('reads the declared kind from the extension first, then the media type', () => {
    assert.equal(declaredKind('notes.MD', 'application/octet-stream'), 'MARKDOWN');
    assert.equal(declaredKind('report', 'application/pdf'), 'PDF');
    assert.equal(declaredKind('page.htm', null), 'HTML');
    assert.equal(declaredKind('blob', 'application/octet-stream'), null);
  });
});

describe('FileExtractor', () => {
  const extractor = new FileExtractor({ timeoutMs: 20_000, workers: 1 });
  after(() => extractor.close());

  it('extracts the text and title of a PDF in a worker thread', async () => {
    const file = await extractor.extract(
      minimalPdf(['Quartz harbors glow at dusk.', 'Second line here.'], { title: 'Harbor notes' }),
      'x.pdf',
      null,
    );
    assert.equal(file.kind, 'PDF');
    assert.equal(file.contentType, 'TEXT');
    assert.match(file.content, /Quartz harbors glow at dusk\./);
    assert.match(file.content, /Second line here\./);
    assert.equal(file.title, 'Harbor notes');
  });

  it('extracts the paragraphs of a DOCX', async () => {
    const file = await extractor.extract(minimalDocx(['First paragraph about lanterns.', 'Second about copper.']), 'a.docx', null);
    assert.equal(file.kind, 'DOCX');
    assert.match(file.content, /First paragraph about lanterns\.\s+Second about copper\./);
  });

  it('refuses broken files with a specific reason each', async () => {
    assert.equal(await reasonOf(extractor.extract(corruptPdf(), 'broken.pdf', 'application/pdf')), 'CORRUPT_FILE');
    assert.equal(await reasonOf(extractor.extract(minimalPdf(['secret'], { encrypt: true }), 'locked.pdf', null)), 'ENCRYPTED_FILE');
    assert.equal(await reasonOf(extractor.extract(corruptDocx(), 'broken.docx', null)), 'CORRUPT_FILE');
    assert.equal(await reasonOf(extractor.extract(Buffer.alloc(0), 'empty.txt', 'text/plain')), 'EMPTY_FILE');
    assert.equal(await reasonOf(extractor.extract(minimalPdf([]), 'blank.pdf', null)), 'NO_TEXT');
  });

  it('names the mislabelled type in the reason', async () => {
    try {
      await extractor.extract(pngBytes(), 'notes.md', 'text/markdown');
      assert.fail('expected a rejection');
    } catch (error) {
      assert.ok(isAppError(error));
      assert.equal(error.details['reason'], 'UNSUPPORTED_TYPE');
      assert.match(error.message, /declared as Markdown.*PNG image/);
    }
  });

  it('takes text files as they are, typed by name or by content', async () => {
    assert.equal((await extractor.extract(Buffer.from('# Heading\n\ntext'), 'a.md', null)).contentType, 'MARKDOWN');
    assert.equal((await extractor.extract(Buffer.from('<p>hello</p>'), 'page', null)).contentType, 'HTML');
    const bom = await extractor.extract(Buffer.from('\ufeffplain words'), 'a.txt', null);
    assert.equal(bom.content, 'plain words');
    // A PDF named .txt is still read as a PDF: content decides.
    assert.equal((await extractor.extract(minimalPdf(['really a pdf']), 'a.txt', 'text/plain')).kind, 'PDF');
  });

  it('abandons an extraction that takes too long and keeps serving the next ones', async () => {
    const hasty = new FileExtractor({ timeoutMs: 100, workers: 1 });
    try {
      // A 3,000-page PDF cannot be loaded and read within 100 ms.
      const pages = Array.from({ length: 3000 }, (_, i) => `Page line ${i} with some words to read.`);
      const big = minimalPdf(pages);
      const started = Date.now();
      const many = Array.from({ length: 4 }, () => big);
      const reasons = await Promise.all(
        many.map((file) => reasonOf(hasty.extract(Buffer.concat([file, Buffer.alloc(2_000_000, 0x20)]), 'slow.pdf', null))),
      );
      assert.ok(
        reasons.every((r) => r === 'PARSE_TIMEOUT' || r === 'CORRUPT_FILE'),
        reasons.join(),
      );
      assert.ok(reasons.includes('PARSE_TIMEOUT'), reasons.join());
      assert.ok(Date.now() - started < 15_000);
    } finally {
      await hasty.close();
    }
    // The shared extractor is unaffected.
    assert.match((await extractor.extract(minimalPdf(['still fine']), 'ok.pdf', null)).content, /still fine/);
  });
});

describe('UploadService', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const service = async (now = () => new Date()) => {
    const dir = await mkdtemp(join(tmpdir(), 'kbql-uploads-'));
    dirs.push(dir);
    return { dir, uploads: new UploadService({ store: new FileUploadStore(dir), limits: { maxBytes: 1024, ttlSeconds: 60 }, now }) };
  };

  it('stores a file for its tenant only, with PAYLOAD_TOO_LARGE above the limit', async () => {
    const { uploads } = await service();
    const record = await uploads.accept(writer, Buffer.from('hello'), 'dir%2Fnotes%20%C3%BC.md', 'text/markdown');
    assert.equal(record.filename, 'notes ü.md');
    assert.equal(record.bytes, 5);
    assert.equal((await uploads.load(record.id, writer)).data.toString(), 'hello');
    await assert.rejects(uploads.load(record.id, { tenant: 'other' }), (e: unknown) => isAppError(e) && e.code === 'NOT_FOUND');
    await assert.rejects(uploads.load('upl_doesnotexist', writer), (e: unknown) => isAppError(e) && e.code === 'NOT_FOUND');
    await assert.rejects(
      uploads.accept(writer, Buffer.alloc(1025), 'big.txt', null),
      (e: unknown) => isAppError(e) && e.code === 'PAYLOAD_TOO_LARGE',
    );
    await assert.rejects(
      uploads.accept({ ...writer, role: 'READER' }, Buffer.from('x'), 'a.txt', null),
      (e: unknown) => isAppError(e) && e.code === 'FORBIDDEN',
    );
    await assert.rejects(
      uploads.accept(null, Buffer.from('x'), 'a.txt', null),
      (e: unknown) => isAppError(e) && e.code === 'UNAUTHENTICATED',
    );
  });

  it('validates file names', () => {
    assert.equal(normaliseFilename('C:\\docs\\report.pdf'), 'report.pdf');
    assert.throws(
      () => normaliseFilename(null),
      (e: unknown) => isAppError(e) && e.code === 'BAD_USER_INPUT',
    );
    assert.throws(
      () => normaliseFilename('..'),
      (e: unknown) => isAppError(e) && e.code === 'BAD_USER_INPUT',
    );
    assert.throws(
      () => normaliseFilename('a\u0001b'),
      (e: unknown) => isAppError(e) && e.code === 'BAD_USER_INPUT',
    );
  });

  it('forgets and sweeps expired uploads', async () => {
    let clock = new Date('2026-01-01T00:00:00Z');
    const { dir, uploads } = await service(() => clock);
    const record = await uploads.accept(writer, Buffer.from('old'), 'old.txt', null);
    // FileUploadStore compares with the real clock on read: this upload expired long ago.
    await assert.rejects(uploads.load(record.id, writer), (e: unknown) => isAppError(e) && e.code === 'NOT_FOUND');
    clock = new Date();
    const fresh = await uploads.accept(writer, Buffer.from('new'), 'new.txt', null);
    assert.equal(await uploads.sweep(), 1);
    assert.deepEqual((await readdir(join(dir, 'uploads'))).sort(), [`${fresh.id}.bin`, `${fresh.id}.json`]);
  });
});
