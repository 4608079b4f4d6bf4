import { cl100k, cl100kBytes, type Cl100kBytes } from '../../retrieval/cl100k';
import type { Tokenizer } from '@llamaindex/env/tokenizers';

/**
 * cl100k_base's pre-tokenisation pattern (as js-tiktoken spells it): BPE runs on each match separately, so a text's
 * tokens are the concatenation of its pieces' tokens.
 */
const CL100K_PIECES =
  /('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

export interface MemoTokenizer extends Tokenizer {
  /** Tokens in `text`, without building the array. */
  count(text: string): number;
}

/**
 * LlamaIndex's cl100k_base tokenizer (js-tiktoken, pure JS: a few ms per abstract, most of the cost of chunking) with
 * every piece's tokens remembered: words repeat, so after a few documents almost every piece is a map lookup.
 * `encode` returns exactly what the underlying tokenizer returns for text without special tokens (checked by
 * `test/unit/token-counter.test.ts`); for text that contains one, such as `<|endoftext|>`, it encodes the characters
 * as ordinary text instead of throwing.
 *
 * @param base the tokenizer to remember. @default js-tiktoken's cl100k_base (what LlamaIndex's Settings.tokenizer wraps)
 * @param maxPieces distinct pieces kept before the memory is cleared. @default 200000
 */
export function createMemoTokenizer(base: Pick<Tokenizer, 'encode' | 'decode'> = cl100kPieces(), maxPieces = 200_000): MemoTokenizer {
  const memo = new Map<string, Uint32Array>();
  const counts = new Map<string, number>();
  const tokensOfShort = (piece: string): Uint32Array => {
    let ids = memo.get(piece);
    if (ids === undefined) {
      ids = base.encode(piece);
      if (memo.size >= maxPieces) memo.clear();
      memo.set(piece, ids);
    }
    return ids;
  };
  const tokensOf = (piece: string): Uint32Array =>
    piece.length <= MAX_WIDE_PIECE_CHARS || (piece.length <= MAX_PIECE_CHARS && !WIDE_SCRIPT.test(piece))
      ? tokensOfShort(piece)
      : longPiece(piece, tokensOfShort);
  return {
    encode(text) {
      const parts: Uint32Array[] = [];
      for (const match of text.matchAll(CL100K_PIECES)) parts.push(tokensOf(match[0]));
      return concatTokens(parts);
    },
    count(text) {
      // The chunker counts one word (with its leading space) at a time: remembering whole short texts skips the
      // pre-tokenisation pattern as well.
      const short = text.length <= MAX_COUNTED_CHARS;
      if (short) {
        const known = counts.get(text);
        if (known !== undefined) return known;
      }
      let total = 0;
      for (const match of text.matchAll(CL100K_PIECES)) total += tokensOf(match[0]).length;
      if (short) {
        if (counts.size >= maxPieces) counts.clear();
        counts.set(text, total);
      }
      return total;
    },
    decode: (tokens) => base.decode(tokens),
  };
}

/**
 * Longest piece handed to BPE whole. js-tiktoken's merge loop is quadratic in a piece's bytes, and one piece can be
 * a whole document (1 MiB of one letter, CJK text without spaces): longer pieces are encoded in slices, so tokenising
 * stays linear in the text. Pieces this long are rare in prose; for them the count is an upper bound (a merge across
 * two slices is not made), which keeps chunks within their size.
 */
export const MAX_PIECE_CHARS = 32;
/** Longest text whose count is remembered whole (a chunker segment is at most 32 characters after its spaces). */
const MAX_COUNTED_CHARS = 48;
/** Longest CJK/kana/Hangul piece handed to BPE whole: three bytes a character make their merges costlier still. */
const MAX_WIDE_PIECE_CHARS = 16;
const WIDE_SCRIPT = /[\u2e80-\ua4cf\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]/;

/** A long piece's tokens: one code point at a time for CJK, kana and Hangul, else slices of {@link MAX_PIECE_CHARS}. */
function longPiece(piece: string, tokensOf: (slice: string) => Uint32Array): Uint32Array {
  const parts: Uint32Array[] = [];
  const add = (slice: string) => parts.push(tokensOf(slice));
  if (piece.length > MAX_WIDE_PIECE_CHARS && WIDE_SCRIPT.test(piece)) {
    // Each of these characters is one to three tokens; the BPE of a long run costs far more than that tells.
    for (const char of piece) add(char);
  } else {
    for (let at = 0; at < piece.length;) {
      let end = Math.min(piece.length, at + MAX_PIECE_CHARS);
      // Never cut a surrogate pair.
      if (end < piece.length && isHighSurrogate(piece.charCodeAt(end - 1))) end--;
      add(piece.slice(at, end));
      at = end;
    }
  }
  return concatTokens(parts);
}

function concatTokens(parts: readonly Uint32Array[]): Uint32Array {
  let total = 0;
  for (const ids of parts) total += ids.length;
  const out = new Uint32Array(total);
  let offset = 0;
  for (const ids of parts) {
    out.set(ids, offset);
    offset += ids.length;
  }
  return out;
}

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff;

/**
 * cl100k_base for single pieces: the tokens of js-tiktoken's encoder (the one LlamaIndex's `Settings.tokenizer`
 * wraps) without its special-token checks, which rebuild regular expressions on every call, and with its BPE on
 * byte strings ({@link cl100kBytes}). Special-token text is ordinary text here, as in {@link createMemoTokenizer}.
 */
function cl100kPieces(): Pick<Tokenizer, 'encode' | 'decode'> {
  // Built on first use, not at import: the event loop thread imports the chunker's types but never chunks.
  let encoding: Cl100kBytes | null = null;
  return {
    encode: (text: string) => Uint32Array.from((encoding ??= cl100kBytes()).encodeOrdinary(text)),
    decode: (tokens: Uint32Array) => cl100k().decode(Array.from(tokens)),
  };
}

/** One shared instance: the memory is worth most when every chunker uses it. */
export const memoTokenizer: MemoTokenizer = createMemoTokenizer();
