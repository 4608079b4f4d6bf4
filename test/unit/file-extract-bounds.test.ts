import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config';
import { AppError } from '../../src/errors';
import { FileExtractor } from '../../src/adapters/parsing/file.extractor';
import { checkZip, ZipRefused } from '../../src/adapters/parsing/zip-guard';
import { minimalDocx } from '../helpers/jobs-fixtures';
import { docxBomb, docxWithEntries, manyPagesPdf } from '../helpers/hostile-files';

const MIB = 1024 * 1024;

/** The refusal `work` rejects with: its code and reason. */
async function refusal(work: Promise<unknown>): Promise<{ code: string; reason: unknown; message: string }> {
  try {
    await work;
  } catch (error) {
    if (error instanceof AppError) return { code: error.code, reason: error.details['reason'], message: error.message };
    if (error instanceof ZipRefused) return { code: 'ZIP', reason: error.reasonCode, message: error.message };
    throw error;
  }
  assert.fail('expected a refusal');
}

describe('zip guard', () => {
  it('passes an honest small DOCX and counts what it inflates to', async () => {
    const summary = await checkZip(minimalDocx(['Harbor lanterns glow.']));
    assert.equal(summary.entries, 3);
    assert.ok(summary.inflatedBytes > 500 && summary.inflatedBytes < 2000, String(summary.inflatedBytes));
  });

  it('refuses declared sizes over the budget before inflating anything', async () => {
    const bomb = docxBomb(1024);
    assert.ok(bomb.length < 1.5 * MIB, `the 1 GiB bomb is ${bomb.length} bytes`);
    const refused = await refusal(checkZip(bomb));
    assert.equal(refused.reason, 'ARCHIVE_TOO_LARGE');
    assert.match(refused.message, /declare \d+ bytes inflated; the limit is 67108864/);
  });

  it('refuses an entry that inflates past the small size its headers declare (lying headers)', async () => {
    const refused = await refusal(checkZip(docxBomb(1024, { lie: true })));
    assert.equal(refused.reason, 'ARCHIVE_TOO_LARGE');
    assert.match(refused.message, /"word\/document\.xml" inflates to more than the 4096 bytes its header declares/);
  });

  it('refuses an archive with too many entries, declared or found', async () => {
    assert.equal((await checkZip(docxWithEntries(['ok'], 10), { maxInflatedBytes: MIB, maxEntries: 13 })).entries, 13);
    const refused = await refusal(checkZip(docxWithEntries(['ok'], 11), { maxInflatedBytes: MIB, maxEntries: 13 }));
    assert.equal(refused.reason, 'ARCHIVE_TOO_LARGE');
    assert.match(refused.message, /14 entries; the limit is 13/);
    // The end record understating the count: the directory itself is counted.
    const lying = docxWithEntries(['ok'], 11);
    lying.writeUInt16LE(3, lying.length - 22 + 8);
    lying.writeUInt16LE(3, lying.length - 22 + 10);
    assert.match((await refusal(checkZip(lying, { maxInflatedBytes: MIB, maxEntries: 13 }))).message, /more than 13 entries/);
  });

  it('calls a truncated archive corrupt', async () => {
    const good = minimalDocx(['x']);
    assert.equal((await refusal(checkZip(good.subarray(0, good.length - 30)))).reason, 'CORRUPT_FILE');
  });
});

describe('FileExtractor bounds', () => {
  const extractor = new FileExtractor({ workers: 1, timeoutMs: 20_000 });
  const small = new FileExtractor({
    workers: 1,
    timeoutMs: 20_000,
    maxExtractedBytes: MIB,
    maxPdfPages: 40,
    maxArchiveInflatedBytes: 8 * MIB,
  });
  after(async () => {
    await extractor.close();
    await small.close();
  });

  it('extracts the text of an honest DOCX after the guard', async () => {
    const file = await extractor.extract(minimalDocx(['Willow branches bend.', 'Falcons nest.']), 'w.docx', null);
    assert.match(file.content, /Willow branches bend\.\s+Falcons nest\./);
  });

  it('reads a small bomb built like the big one (the generator makes a real DOCX), refuses the text over the cap', async () => {
    const file = await extractor.extract(docxBomb(3), 'three.docx', null);
    assert.equal(file.content.trim().length, 3 * MIB);
    assert.match(file.content, /^a+\s*$/);
    const refused = await refusal(small.extract(docxBomb(3), 'three.docx', null));
    assert.deepEqual([refused.code, refused.reason], ['PAYLOAD_TOO_LARGE', 'TEXT_TOO_LARGE']);
  });

  it('fails both 1 GiB bombs with ARCHIVE_TOO_LARGE (PAYLOAD_TOO_LARGE)', async () => {
    for (const lie of [false, true]) {
      const refused = await refusal(extractor.extract(docxBomb(1024, { lie }), 'bomb.docx', null));
      assert.deepEqual([refused.code, refused.reason], ['PAYLOAD_TOO_LARGE', 'ARCHIVE_TOO_LARGE'], refused.message);
    }
  });

  it('writes a 20,000-page PDF that pdf.js opens, and refuses it with TOO_MANY_PAGES', async () => {
    const pdf = manyPagesPdf(20_000);
    const { getDocumentProxy } = await import('unpdf');
    const doc = await getDocumentProxy(new Uint8Array(pdf), { verbosity: 0 });
    assert.equal(doc.numPages, 20_000);
    const last = await (await doc.getPage(20_000)).getTextContent();
    assert.deepEqual(last.items.map((i) => ('str' in i ? i.str : '')).filter(Boolean), ['Page text.']);
    await doc.destroy();
    const refused = await refusal(extractor.extract(pdf, 'pages.pdf', null));
    assert.deepEqual([refused.code, refused.reason], ['PAYLOAD_TOO_LARGE', 'TOO_MANY_PAGES']);
    assert.match(refused.message, /20000 pages; the limit is 2000/);
  });

  it('reads a PDF page by page within the caps and stops at the page that crosses the text cap', async () => {
    const ok = await small.extract(manyPagesPdf(40, ['Quartz harbor page.']), 'forty.pdf', null);
    assert.equal(ok.content.match(/Quartz harbor page\./g)?.length, 40);
    assert.equal((await refusal(small.extract(manyPagesPdf(41), 'p.pdf', null))).reason, 'TOO_MANY_PAGES');
    // 50 lines of 80 characters a page (what fits on it: pdf.js drops text outside the page), ~4 KB of text each.
    const heavy = manyPagesPdf(
      40,
      Array.from({ length: 50 }, (_, i) => `${String(i).padStart(2, '0')} ${'x'.repeat(77)}`),
    );
    const tiny = new FileExtractor({ workers: 1, maxExtractedBytes: 64 * 1024 });
    try {
      const refused = await refusal(tiny.extract(heavy, 'heavy.pdf', null));
      assert.deepEqual([refused.code, refused.reason], ['PAYLOAD_TOO_LARGE', 'TEXT_TOO_LARGE']);
      // Stopped at the 17th page of 40: the count it gives is the cap plus less than one page.
      const counted = Number(/at least (\d+)/.exec(refused.message)?.[1]);
      assert.ok(counted > 65_536 && counted < 65_536 + 4200, refused.message);
    } finally {
      await tiny.close();
    }
  });
});

describe('extraction bounds in the configuration', () => {
  it('has the documented defaults and refuses a text cap below the document limit', () => {
    assert.deepEqual(loadConfig({}).jobs.extraction, {
      maxExtractedBytes: 8 * MIB,
      maxArchiveInflatedBytes: 64 * MIB,
      maxArchiveEntries: 2000,
      maxPdfPages: 2000,
    });
    assert.throws(
      () => loadConfig({ KBQL_MAX_EXTRACTED_BYTES: String(MIB) }),
      /KBQL_MAX_EXTRACTED_BYTES \(1048576\) must not be smaller than KBQL_MAX_DOCUMENT_BYTES \(2097152\)/,
    );
    assert.equal(
      loadConfig({ KBQL_MAX_EXTRACTED_BYTES: String(MIB), KBQL_MAX_DOCUMENT_BYTES: String(MIB) }).jobs.extraction.maxExtractedBytes,
      MIB,
    );
  });
});
