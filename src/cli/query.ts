import { AskDocument, SearchDocument, type SearchMode } from '../generated/graphql';
import type { KbqlClient } from './client';
import { EXIT } from './client';
import { describeDocument, snippet, writeJson, writeLine } from './output';

export interface RetrievalOptions {
  collection: string;
  mode: SearchMode;
  topK?: number;
  json: boolean;
}

/** `kbql ask`: the answer, then its sources numbered as the `[n]` markers cite them. */
export async function runAsk(client: KbqlClient, question: string, options: RetrievalOptions): Promise<number> {
  const { ask } = await client.request(AskDocument, { collection: options.collection, question, mode: options.mode, topK: options.topK ?? null });
  if (options.json) {
    writeJson(ask);
    return EXIT.OK;
  }
  if (ask.abstained || ask.answer === null) {
    writeLine('Not found in the knowledge base.');
    if (ask.abstentionReason) writeLine(`(${ask.abstentionReason})`);
  } else {
    writeLine(ask.answer);
  }
  if (ask.sources.length > 0) {
    const cited = new Set(ask.citations.map((c) => c.marker));
    writeLine();
    writeLine(ask.abstained ? 'Closest sources:' : 'Sources:');
    for (const source of ask.sources) {
      writeLine(`  [${source.n}] ${describeDocument(source.document)}${cited.has(source.n) ? '' : '  (not cited)'}`);
      writeLine(`      ${snippet(source.chunk.text)}`);
    }
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
