import { registerEnumType } from 'type-graphql';

export enum SearchModeEnum {
  VECTOR = 'VECTOR',
  KEYWORD = 'KEYWORD',
  HYBRID = 'HYBRID',
}
registerEnumType(SearchModeEnum, {
  name: 'SearchMode',
  description: 'How search ranks chunks.',
  valuesConfig: {
    VECTOR: { description: 'Cosine similarity of embeddings.' },
    KEYWORD: { description: 'BM25 over chunk text.' },
    HYBRID: { description: 'Relative-score fusion of both: alpha * vector + (1 - alpha) * keyword, each normalised.' },
  },
});

export enum ContentTypeEnum {
  TEXT = 'TEXT',
  MARKDOWN = 'MARKDOWN',
  HTML = 'HTML',
}
registerEnumType(ContentTypeEnum, { name: 'ContentType', description: 'Format of a document’s content.' });

export enum ChunkingStrategyEnum {
  SENTENCE = 'SENTENCE',
  MARKDOWN = 'MARKDOWN',
  AUTO = 'AUTO',
}
registerEnumType(ChunkingStrategyEnum, {
  name: 'ChunkingStrategy',
  description: 'How documents are split into chunks.',
  valuesConfig: {
    SENTENCE: { description: 'Sentence-aware splitting to the chunk size.' },
    MARKDOWN: { description: 'Split by Markdown sections, then by sentences; headings prefix each chunk.' },
    AUTO: { description: 'MARKDOWN for Markdown documents, SENTENCE otherwise.' },
  },
});

export enum IngestStatusEnum {
  INDEXED = 'INDEXED',
  UNCHANGED = 'UNCHANGED',
  FAILED = 'FAILED',
}
registerEnumType(IngestStatusEnum, {
  name: 'IngestStatus',
  valuesConfig: {
    INDEXED: { description: 'New or changed: chunked, embedded and stored.' },
    UNCHANGED: { description: 'Same id and content as stored: nothing re-embedded (metadata refreshed).' },
    FAILED: { description: 'Not stored; see code and reason. Other documents are unaffected.' },
  },
});
