/** What kbql uses of js-tiktoken's cl100k_base encoder (the tokenizer LlamaIndex's `Settings.tokenizer` wraps). */
export interface Cl100k {
  encode(text: string, allowedSpecial?: string[] | 'all', disallowedSpecial?: string[] | 'all'): number[];
  decode(tokens: number[]): string;
  /** Token bytes (decimal, comma-joined) → token; js-tiktoken's own table, absent in a build that hides it. */
  readonly rankMap?: Map<string, number>;
}

let shared: Cl100k | null = null;

/**
 * The one cl100k_base encoder of this thread: building it parses the whole vocabulary (about 300 ms and tens of MB),
 * so the chunker's token counter and the hash embedder share it.
 */
export function cl100k(): Cl100k {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  shared ??= (require('js-tiktoken') as { getEncoding(name: 'cl100k_base'): Cl100k }).getEncoding('cl100k_base');
  return shared;
}

/** cl100k_base's ordinary-text encoding, with the vocabulary keyed by byte strings. */
export interface Cl100kBytes {
  /** The token whose UTF-8 bytes are exactly `text`'s, if there is one. */
  rankOf(text: string): number | undefined;
  /** `text`'s tokens with special-token text encoded as ordinary text: js-tiktoken's `encode(text, [], [])`. */
  encodeOrdinary(text: string): number[];
}

let sharedBytes: Cl100kBytes | null = null;

/**
 * The same encoder, faster: js-tiktoken keys its vocabulary by comma-joined byte lists, so every lookup of its BPE
 * loop builds an array and a string. Here each token is keyed by its bytes as a one-byte-per-character string (for
 * ASCII text that is the text itself), and the merge loop remembers each pair's rank instead of looking it up again
 * after every merge. The merges, and so the tokens, are js-tiktoken's own: the lowest-ranked adjacent pair first,
 * the leftmost on a tie (`test/unit/token-counter.test.ts` compares both on generated text in many scripts).
 * Without js-tiktoken's tables (a build that hides them) this falls back to its `encode`.
 */
export function cl100kBytes(): Cl100kBytes {
  if (sharedBytes) return sharedBytes;
  const encoding = cl100k() as Cl100k & { textMap?: Map<number, Uint8Array>; patStr?: string };
  const utf8 = new TextEncoder();
  if (!encoding.textMap || !encoding.patStr) {
    const ranks = encoding.rankMap;
    sharedBytes = {
      rankOf: (text) => ranks?.get(utf8.encode(text).join(',')),
      encodeOrdinary: (text) => encoding.encode(text, [], []),
    };
    return sharedBytes;
  }
  const ranks = new Map<string, number>();
  for (const [rank, bytes] of encoding.textMap) ranks.set(byteString(bytes), rank);
  const pieces = new RegExp(encoding.patStr, 'gu');
  const keyOf = (text: string): string => (ASCII.test(text) ? text : byteString(utf8.encode(text)));
  sharedBytes = {
    rankOf: (text) => ranks.get(keyOf(text)),
    encodeOrdinary(text) {
      const out: number[] = [];
      for (const match of text.matchAll(pieces)) {
        const key = keyOf(match[0]);
        const whole = ranks.get(key);
        if (whole !== undefined) out.push(whole);
        else bytePairEncode(key, ranks, out);
      }
      return out;
    },
  };
  return sharedBytes;
}

const ASCII = /^[\x00-\x7f]*$/;

function byteString(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 4096) out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return out;
}

/**
 * BPE of one piece (as a byte string) into `out`. `start[i]` is where part i begins; `pairRank[i]` the rank of parts
 * i and i+1 merged (Infinity when that is no token). O(n²) in the piece's bytes: callers keep pieces short.
 */
function bytePairEncode(piece: string, ranks: Map<string, number>, out: number[]): void {
  const n = piece.length;
  if (n === 1) {
    out.push(ranks.get(piece)!);
    return;
  }
  const start: number[] = new Array<number>(n + 1);
  for (let i = 0; i <= n; i++) start[i] = i;
  let parts = n;
  const rankOfPair = (i: number): number => (i + 2 <= parts ? (ranks.get(piece.slice(start[i], start[i + 2])) ?? Infinity) : Infinity);
  const pairRank: number[] = new Array<number>(n);
  for (let i = 0; i < parts - 1; i++) pairRank[i] = rankOfPair(i);
  for (;;) {
    let best = Infinity;
    let at = -1;
    for (let i = 0; i < parts - 1; i++) {
      if (pairRank[i]! < best) {
        best = pairRank[i]!;
        at = i;
      }
    }
    if (at < 0) break;
    // Merge parts `at` and `at + 1`: drop the boundary between them.
    start.splice(at + 1, 1);
    pairRank.splice(at + 1, 1);
    parts--;
    pairRank[at] = rankOfPair(at);
    if (at > 0) pairRank[at - 1] = rankOfPair(at - 1);
  }
  for (let i = 0; i < parts; i++) {
    const rank = ranks.get(piece.slice(start[i], start[i + 1]));
    // js-tiktoken drops a part that is no token; with cl100k_base every byte is one, so this never happens.
    if (rank !== undefined) out.push(rank);
  }
}
