import { AskDocument, AskStreamDocument, SearchDocument, type AskQuery, type SearchMode } from '../generated/graphql';
import type { KbqlClient } from './client';
import { CliError, EXIT } from './client';
import { describeDocument, snippet, writeJson, writeLine } from './output';

export interface RetrievalOptions {
  collection: string;
  mode: SearchMode;
  topK?: number;
  json: boolean;
}

/** `kbql ask`: the answer, then its sources numbered as the `[n]` markers cite them. */
export async function runAsk(client: KbqlClient, question: string, options: RetrievalOptions): Promise<number> {
  const { ask } = await client.request(AskDocument, {
    collection: options.collection,
    question,
    mode: options.mode,
    topK: options.topK ?? null,
  });
  if (options.json) {
    writeJson(ask);
    return EXIT.OK;
  }
  if (ask.abstained || ask.answer === null) {
    writeLine(abstentionLine(ask.abstentionReason));
  } else {
    writeLine(ask.answer);
  }
  printSources(ask);
  return EXIT.OK;
}

/**
 * The one line printed when kbql abstains: "Not found in the knowledge base.", with the reason in brackets only when
 * it says something else (a budget, an unavailable model…).
 */
export function abstentionLine(reason: string | null | undefined): string {
  const plain = 'Not found in the knowledge base.';
  const said = reason?.trim().replace(/\.$/, '');
  if (!said || said.toLowerCase() === 'not found in the knowledge base') return plain;
  return `Not found in the knowledge base (${said}).`;
}

/** The numbered sources under an answer, marking those no citation uses. */
function printSources(ask: Pick<AskQuery['ask'], 'abstained' | 'citations' | 'sources'>): void {
  if (ask.sources.length > 0) {
    const cited = new Set(ask.citations.map((c) => c.marker));
    writeLine();
    writeLine(ask.abstained ? 'Closest sources:' : 'Sources:');
    for (const source of ask.sources) {
      writeLine(`  [${source.n}] ${describeDocument(source.document)}${cited.has(source.n) ? '' : '  (not cited)'}`);
      writeLine(`      ${snippet(source.chunk.text)}`);
    }
  }
}

/**
 * `kbql ask --stream`: the askStream subscription. Human output writes each AnswerDelta as it arrives, then the sources
 * as `kbql ask` prints them; `--json` writes one JSON object per event per line (`{"type":"AnswerDelta","text":…}`),
 * ending with the Completed (or Failed) event. A Failed event exits 1 with its code, as a failed `ask` does.
 */
export async function runAskStream(
  client: KbqlClient,
  question: string,
  options: RetrievalOptions & { timeoutMs: number },
): Promise<number> {
  const variables = { collection: options.collection, question, mode: options.mode, topK: options.topK ?? null };
  // The whole answer must arrive within the request timeout, as for `kbql ask`.
  const signal = AbortSignal.timeout(options.timeoutMs);
  let streamed = '';
  let completed = false;
  for await (const { askStream: event } of client.subscribe(AskStreamDocument, variables, signal)) {
    const { __typename: type, ...fields } = event;
    if (options.json) process.stdout.write(`${JSON.stringify({ type, ...fields })}\n`);
    if (event.__typename === 'Failed') throw new CliError(`${event.code}: ${event.message}`, EXIT.ERROR, event.code);
    if (event.__typename === 'AnswerDelta' && !options.json) {
      process.stdout.write(event.text);
      streamed += event.text;
    }
    if (event.__typename === 'Completed') {
      completed = true;
      if (options.json) break;
      const ask = event.answer;
      if (streamed.length > 0) writeLine();
      if (ask.abstained || ask.answer === null) {
        if (streamed.length === 0) writeLine(abstentionLine(ask.abstentionReason));
      } else if (streamed.length === 0) {
        writeLine(ask.answer);
      } else if (ask.unsupportedMarkers.length > 0) {
        // The deltas are the raw text; the verified answer dropped markers no source supports.
        writeLine(`(unsupported markers removed: ${ask.unsupportedMarkers.map((m) => `[${m}]`).join(' ')}; verified answer:)`);
        writeLine(ask.answer);
      }
      printSources(ask);
    }
  }
  if (!completed) {
    if (signal.aborted) throw new CliError(`no complete answer from ${client.url} within ${options.timeoutMs} ms`, EXIT.ERROR, 'TIMEOUT');
    throw new CliError(`the answer stream from ${client.url} ended without a Completed event`, EXIT.ERROR);
  }
  return EXIT.OK;
}

export interface SearchOptions extends RetrievalOptions {
  alpha?: number;
  offset?: number;
}

/** `kbql search`: ranked hits with scores and a snippet of each chunk. */
export async function runSearch(client: KbqlClient, query: string, options: SearchOptions): Promise<number> {
  const { search } = await client.request(SearchDocument, {
    collection: options.collection,
    query,
    mode: options.mode,
    topK: options.topK ?? null,
    alpha: options.alpha ?? null,
    offset: options.offset ?? null,
  });
  if (options.json) {
    writeJson(search);
    return EXIT.OK;
  }
  if (search.hits.length === 0) {
    writeLine('No hits.');
    return EXIT.OK;
  }
  const first = (options.offset ?? 0) + 1;
  search.hits.forEach((hit, i) => {
    writeLine(`${String(first + i).padStart(3)}. ${hit.score.toFixed(3)}  ${describeDocument(hit.document)} #${hit.chunk.index}`);
    writeLine(`      ${snippet(hit.chunk.text)}`);
  });
  writeLine(`${search.hits.length} hit${search.hits.length === 1 ? '' : 's'} (${search.mode}, ${Math.round(search.tookMs)} ms)`);
  return EXIT.OK;
}
