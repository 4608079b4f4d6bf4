import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Settings } from '@llamaindex/core/global';
import { createMemoTokenizer } from '../../src/adapters/parsing/token-counter';
import { cl100k, cl100kBytes } from '../../src/retrieval/cl100k';

const SAMPLES = [
  'Employees receive 25 days of paid vacation per calendar year.',
  "Don't stop; I'M sure we'll go. They'd've said it's THEIR'S — isn't it?",
  'Numbers: 1234567 12.5% 3,000,000 0.0001 2024-05-01T10:00:00Z',
  'naïve café Straße 日本語のテキスト 😀👍🏽 e\u0301 \u200b zero-width',
  'a  \n\n  b\t\tc   \r\n\r\nd    ',
  '   leading and trailing spaces   ',
  '# Title\n\n- item one\n- item two\n\n```ts\nconst x = { a: 1 };\n```\n',
  '<html><head><title>x</title></head><body><p>Hello&nbsp;world</p></body></html>',
  'https://example.com/path?q=1&r=2#frag mailto:someone@example.com',
  'function f(x) {\n\treturn x * 2; // double\n}\n',
  '',
  '\n',
  '!!!???...,,,;;;',
];

/** Deterministic pseudo-random strings over a mixed alphabet (letters, digits, spaces, newlines, symbols, non-ASCII). */
function fuzz(count: number): string[] {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const alphabet = [
    'a',
    'b',
    'Z',
    'é',
    'ß',
    '日',
    '1',
    '9',
    ' ',
    ' ',
    '  ',
    '\n',
    '\r\n',
    '\t',
    "'",
    "'s",
    "'LL",
    '.',
    ',',
    '-',
    '😀',
    '\u0301',
    'th',
    'ing',
    '<|',
    '|>',
  ];
  return Array.from({ length: count }, () => {
    const length = Math.floor(next() * 60);
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet[Math.floor(next() * alphabet.length)];
    return s;
  });
}

describe('memo tokenizer', () => {
  it('encodes exactly like LlamaIndex’s cl100k_base tokenizer', () => {
    const memo = createMemoTokenizer();
    for (const text of [...SAMPLES, ...fuzz(400), ...SAMPLES]) {
      const expected = Settings.tokenizer.encode(text);
      assert.deepEqual([...memo.encode(text)], [...expected], JSON.stringify(text));
      assert.equal(memo.count(text), expected.length);
    }
    assert.equal(memo.decode(memo.encode(SAMPLES[1]!)), SAMPLES[1]);
  });

  it('keeps working after its memory is cleared', () => {
    const memo = createMemoTokenizer(Settings.tokenizer, 3);
    for (const text of SAMPLES) assert.equal(memo.count(text), Settings.tokenizer.encode(text).length);
  });

  it('counts text with special-token markers as ordinary text instead of throwing', () => {
    const memo = createMemoTokenizer();
    assert.ok(memo.count('before <|endoftext|> after') > 5);
  });
});

/** Words of 1–24 characters over several scripts and symbol sets, so that BPE does many merges of every kind. */
function words(count: number): string[] {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const scripts = [
    'abcdefghijklmnopqrstuvwxyz',
    'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
    'äöüßéèçñ',
    'абвгдежзийк',
    'αβγδεζηθ',
    '日本語文字漢',
    'ひらがなカタ',
    '한국어글',
    'अआइईउ',
    '0123456789',
    '.,;:!?-_/()[]{}@#$%^&*',
  ];
  return Array.from({ length: count }, () => {
    const chars = [...scripts[Math.floor(next() * scripts.length)]!, ...scripts[Math.floor(next() * 2)]!];
    const length = 1 + Math.floor(next() * 24);
    let w = next() < 0.5 ? ' ' : '';
    for (let i = 0; i < length; i++) w += chars[Math.floor(next() * chars.length)];
    return w;
  });
}

describe('cl100k_base on byte strings', () => {
  it('gives js-tiktoken’s tokens and ranks for text in many scripts', () => {
    const fast = cl100kBytes();
    const reference = cl100k();
    const utf8 = new TextEncoder();
    for (const text of [
      ...SAMPLES,
      ...fuzz(400),
      ...words(3000),
      'x'.repeat(100),
      ' supercalifragilisticexpialidocious',
      'before <|endoftext|> after',
    ]) {
      assert.deepEqual(fast.encodeOrdinary(text), reference.encode(text, [], []), JSON.stringify(text));
      assert.equal(fast.rankOf(text), reference.rankMap?.get(utf8.encode(text).join(',')), JSON.stringify(text));
    }
  });
});
