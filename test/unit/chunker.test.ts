import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Settings } from '@llamaindex/core/global';
import { TextChunker } from '../../src/adapters/parsing/text.chunker';
import type { ChunkDraft } from '../../src/ports/document-processor.port';
import type { ChunkingSettings } from '../../src/ports/knowledge-store.port';

const tokens = (text: string): number => Settings.tokenizer.encode(text).length;

const TOPICS = ['vaccines', 'glaciers', 'compilers', 'orchards', 'satellites', 'enzymes', 'bridges', 'monsoons'];
/** Prose of distinct sentences (each names its number), paragraphs every five sentences. */
const PROSE = Array.from({ length: 60 }, (_, i) => {
  const topic = TOPICS[i % TOPICS.length]!;
  const sentence = `Sentence ${i} explains how ${topic} change over time and why careful measurement of ${topic} matters.`;
  return i % 5 === 4 ? `${sentence}\n\n` : `${sentence} `;
})
  .join('')
  .trim();

const sentence = (size: number, overlap: number): ChunkingSettings => ({ strategy: 'SENTENCE', chunkSize: size, chunkOverlap: overlap });

function assertContiguous(chunks: ChunkDraft[]): void {
  assert.deepEqual(
    chunks.map((c) => c.index),
    chunks.map((_, i) => i),
  );
  for (const c of chunks) assert.notEqual(c.text.trim(), '');
}

describe('TextChunker: SENTENCE', () => {
  const chunker = new TextChunker();

  it('keeps every chunk within chunkSize tokens and covers the whole text', () => {
    for (const [size, overlap] of [
      [32, 0],
      [64, 16],
      [128, 32],
    ] as const) {
      const chunks = chunker.chunk(PROSE, 'TEXT', sentence(size, overlap));
      assert.ok(chunks.length > tokens(PROSE) / size, `${chunks.length} chunks for size ${size}`);
      for (const c of chunks) assert.ok(tokens(c.text) <= size, `${tokens(c.text)} > ${size}: ${c.text}`);
      assertContiguous(chunks);
      for (let i = 0; i < 60; i++)
        assert.ok(
          chunks.some((c) => c.text.includes(`Sentence ${i} `)),
          `sentence ${i} lost`,
        );
    }
  });

  it('gives offsets that point at the chunk text', () => {
    const chunks = chunker.chunk(PROSE, 'TEXT', sentence(64, 16));
    for (const c of chunks) assert.equal(PROSE.slice(c.startOffset, c.endOffset), c.text);
  });

  it('overlaps neighbours by whole sentences when chunkOverlap > 0, and not otherwise', () => {
    const overlapping = chunker.chunk(PROSE, 'TEXT', sentence(64, 24));
    const shared = overlapping.slice(1).filter((c, i) => c.startOffset < overlapping[i]!.endOffset);
    assert.ok(shared.length >= overlapping.length / 2, `${shared.length} of ${overlapping.length} chunks overlap`);
    const first = overlapping[0]!;
    const second = overlapping[1]!;
    assert.ok(first.text.endsWith(PROSE.slice(second.startOffset, first.endOffset)));

    const disjoint = chunker.chunk(PROSE, 'TEXT', sentence(64, 0));
    disjoint.slice(1).forEach((c, i) => assert.ok(c.startOffset >= disjoint[i]!.endOffset));
  });

  it('is deterministic across calls and instances', () => {
    const a = chunker.chunk(PROSE, 'TEXT', sentence(48, 8));
    assert.deepEqual(chunker.chunk(PROSE, 'TEXT', sentence(48, 8)), a);
    assert.deepEqual(new TextChunker().chunk(PROSE, 'TEXT', sentence(48, 8)), a);
  });

  it("repairs text LlamaIndex's sentence tokenizer damages (URLs, e.g.,)", () => {
    const text =
      'Several authors (e.g., Wender 1995) describe adult ADHD in a more differentiated way and propose concepts ' +
      'of the disorder that consider the subjective experiences of the adult patient. ZINC is freely available ' +
      'at http://zinc15.docking.org. The dog was running. Then it stopped.';
    for (const size of [32, 48, 256]) {
      const chunks = chunker.chunk(text, 'TEXT', sentence(size, 0));
      for (const c of chunks) {
        assert.ok(!c.text.includes('{{'), c.text);
        assert.equal(text.slice(c.startOffset, c.endOffset), c.text);
      }
      assert.ok(chunks.some((c) => c.text.includes('http://zinc15.docking.org')));
      assert.ok(chunks.some((c) => c.text.includes('(e.g., Wender 1995)')) || size < 48);
    }
  });

  it('refuses settings it cannot honour', () => {
    assert.throws(() => chunker.chunk(PROSE, 'TEXT', sentence(64, 40)), { code: 'BAD_USER_INPUT' });
    assert.throws(() => chunker.chunk(PROSE, 'TEXT', sentence(4, 0)), { code: 'BAD_USER_INPUT' });
  });
});

describe('TextChunker: MARKDOWN and AUTO', () => {
  const chunker = new TextChunker();
  const md = [
    '# Install',
    '',
    'Read this first.',
    '',
    '## Linux',
    '',
    'Run the installer. Then start the service.',
    '',
    '```sh',
    '# not a heading, a shell comment',
    'kbql start',
    '```',
    '',
    '## macOS',
    '',
    'Use the package manager.',
    '',
    '# Usage',
    '## Queries',
    '',
    'Ask questions over HTTP.',
  ].join('\n');

  it('splits by headings and prefixes each chunk with its heading path', () => {
    const chunks = chunker.chunk(md, 'MARKDOWN', { strategy: 'MARKDOWN', chunkSize: 128, chunkOverlap: 16 });
    assert.deepEqual(
      chunks.map((c) => c.text.split('\n\n')[0]),
      ['Install', 'Install > Linux', 'Install > macOS', 'Usage > Queries'],
    );
    assert.ok(chunks[1]!.text.includes('# not a heading, a shell comment\nkbql start'));
    assertContiguous(chunks);
  });

  it('gives offsets of the chunk body (the text after the heading prefix)', () => {
    const chunks = chunker.chunk(md, 'MARKDOWN', { strategy: 'AUTO', chunkSize: 128, chunkOverlap: 16 });
    for (const c of chunks) {
      const body = md.slice(c.startOffset, c.endOffset);
      assert.ok(body.length > 0 && c.text.endsWith(`\n\n${body}`), c.text);
    }
    assert.equal(md.slice(chunks[3]!.startOffset, chunks[3]!.endOffset), 'Ask questions over HTTP.');
  });

  it('splits long sections by sentences within chunkSize, the prefix included', () => {
    const long = `# Guide\n\n## Details\n\n${PROSE}`;
    const chunks = chunker.chunk(long, 'MARKDOWN', { strategy: 'MARKDOWN', chunkSize: 64, chunkOverlap: 8 });
    assert.ok(chunks.length > 5);
    for (const c of chunks) {
      assert.ok(c.text.startsWith('Guide > Details\n\n'), c.text);
      assert.ok(tokens(c.text) <= 64, `${tokens(c.text)} tokens`);
      assert.equal(long.slice(c.startOffset, c.endOffset), c.text.slice('Guide > Details\n\n'.length));
    }
  });

  it('AUTO uses headings for Markdown only', () => {
    const auto = { strategy: 'AUTO', chunkSize: 128, chunkOverlap: 0 } as const;
    assert.ok(chunker.chunk(md, 'MARKDOWN', auto).length > 1);
    const asText = chunker.chunk(md, 'TEXT', auto);
    assert.ok(asText[0]!.text.startsWith('# Install'));
    assert.ok(!asText.some((c) => c.text.includes('Install > Linux')));
  });

  it('keeps a document made of a heading only', () => {
    const chunks = chunker.chunk('# Just a title', 'MARKDOWN', { strategy: 'MARKDOWN', chunkSize: 64, chunkOverlap: 0 });
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0]!.text, '# Just a title');
    assert.equal(chunks[0]!.startOffset, 0);
  });
});
