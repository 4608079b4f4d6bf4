import { Settings } from '@llamaindex/core/global';
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
 * @param base the tokenizer to remember. @default Settings.tokenizer (LlamaIndex's cl100k_base)
 * @param maxPieces distinct pieces kept before the memory is cleared. @default 200000
 */
export function createMemoTokenizer(base: Tokenizer = Settings.tokenizer, maxPieces = 200_000): MemoTokenizer {
  const memo = new Map<string, Uint32Array>();
  const tokensOf = (piece: string): Uint32Array => {
    let ids = memo.get(piece);
    if (ids === undefined) {
      ids = base.encode(piece);
      if (memo.size >= maxPieces) memo.clear();
      memo.set(piece, ids);
    }
    return ids;
  };
  return {
    encode(text) {
      const parts: Uint32Array[] = [];
      let total = 0;
      for (const match of text.matchAll(CL100K_PIECES)) {
        const ids = tokensOf(match[0]);
        parts.push(ids);
        total += ids.length;
      }
      const out = new Uint32Array(total);
      let at = 0;
      for (const ids of parts) {
        out.set(ids, at);
        at += ids.length;
      }
      return out;
    },
    count(text) {
      let total = 0;
      for (const match of text.matchAll(CL100K_PIECES)) total += tokensOf(match[0]).length;
      return total;
    },
    decode: (tokens) => base.decode(tokens),
  };
}

/** One shared instance: the memory is worth most when every chunker uses it. */
export const memoTokenizer: MemoTokenizer = createMemoTokenizer();
