import type { AnswerSource } from '../../src/ports/answer-synthesizer.port';

/** Mulberry32: a small seeded PRNG in [0, 1), so generated test and bench data are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A retrieved source `[n]` holding one chunk of `text` (for synthesizer and citation tests and benches). */
export function answerSource(n: number, text: string, title: string | null = null): AnswerSource {
  const now = new Date(0);
  return {
    n,
    score: 1 / n,
    vectorScore: null,
    keywordScore: null,
    chunk: { id: `c${n}`, documentId: `d${n}`, collectionId: 'k', index: 0, text, startOffset: 0, endOffset: text.length },
    document: {
      id: `d${n}`,
      collectionId: 'k',
      externalId: `doc-${n}`,
      title,
      source: null,
      contentType: 'TEXT',
      metadata: {},
      contentHash: '',
      charCount: text.length,
      chunkCount: 1,
      createdAt: now,
      updatedAt: now,
    },
  };
}
