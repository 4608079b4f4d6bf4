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
