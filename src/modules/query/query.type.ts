import { Field, Float, InputType, Int, ObjectType, createUnionType } from 'type-graphql';
import { SearchModeEnum } from '../../graphql/enums';
import { JSONScalar } from '../../graphql/scalars';
import { Collection } from '../collections/collection.type';
import { Chunk, Document } from '../documents/document.type';

@InputType({
  description:
    'A metadata filter: either `and` / `or` of filters, or one condition — a `field` (documentId, externalId, source, title, or metadata.<key>) and exactly one operator.',
})
export class FilterInput {
  @Field(() => [FilterInput], { nullable: true }) and?: FilterInput[] | null;
  @Field(() => [FilterInput], { nullable: true }) or?: FilterInput[] | null;
  @Field(() => String, { nullable: true }) field?: string | null;
  @Field(() => JSONScalar, { nullable: true }) eq?: unknown;
  @Field(() => JSONScalar, { nullable: true, description: 'Also matches documents without the field.' }) ne?: unknown;
  @Field(() => JSONScalar, { nullable: true }) gt?: unknown;
  @Field(() => JSONScalar, { nullable: true }) gte?: unknown;
  @Field(() => JSONScalar, { nullable: true }) lt?: unknown;
  @Field(() => JSONScalar, { nullable: true }) lte?: unknown;
  @Field(() => [JSONScalar], { nullable: true }) in?: unknown[] | null;
  @Field(() => JSONScalar, { nullable: true, description: 'Array element equality, or substring of a string.' }) contains?: unknown;
}

// Output types on the search/ask path use `simpleResolvers`: their plain fields are read straight off the object, without
// type-graphql's per-field middleware wrapper (measured in bench/http-throughput). Fields with a @FieldResolver keep
// theirs; a field that needs middleware or @Authorized must say `simple: false`.
@ObjectType({ simpleResolvers: true, description: 'A ranked chunk.' })
export class SearchHit {
  @Field(() => Chunk) chunk!: Chunk;
  @Field(() => Document) document!: Document;
  @Field(() => Float, { description: 'The ranking score of the mode used (fused for HYBRID).' }) score!: number;
  @Field(() => Float, { nullable: true, description: 'Cosine similarity to the query.' }) vectorScore!: number | null;
  @Field(() => Float, { nullable: true, description: 'BM25 score, when the chunk matched lexically.' }) keywordScore!: number | null;
}

@ObjectType({ simpleResolvers: true })
export class SearchPayload {
  @Field(() => Collection) collection!: Collection;
  @Field(() => SearchModeEnum) mode!: SearchModeEnum;
  @Field(() => Float) alpha!: number;
  @Field(() => [SearchHit]) hits!: SearchHit[];
  @Field(() => Float) tookMs!: number;
}

@ObjectType({ simpleResolvers: true, description: 'A sentence of a chunk, with its offsets in the chunk text.' })
export class Highlight {
  @Field() text!: string;
  @Field(() => Int, { description: 'Offset in the chunk text (add chunk.startOffset, when not -1, for the document offset).' })
  startOffset!: number;
  @Field(() => Int) endOffset!: number;
}

@ObjectType({ simpleResolvers: true, description: 'A retrieved chunk offered as evidence; `n` is its citation number in the answer.' })
export class Source extends SearchHit {
  @Field(() => Int) n!: number;
  @Field(() => Highlight, {
    nullable: true,
    description:
      'The chunk sentence to look at: the one supporting the answer when the source is cited, else the one closest to the question.',
  })
  highlight!: Highlight | null;
}

@ObjectType({ simpleResolvers: true, description: 'Tokens a model used for an answer.' })
export class TokenUsage {
  @Field(() => Int) promptTokens!: number;
  @Field(() => Int) completionTokens!: number;
  @Field(() => Int) totalTokens!: number;
}

@ObjectType({ simpleResolvers: true, description: 'A `[n]` marker of the answer and the source it refers to.' })
export class Citation {
  @Field(() => Int) marker!: number;
  @Field({ description: 'The answer sentence that carries the marker.' }) sentence!: string;
  @Field({ description: 'Whether the cited source supports the sentence.' }) supported!: boolean;
  @Field(() => Source) source!: Source;
}

@ObjectType({ simpleResolvers: true, description: 'An answer grounded in the collection, or an abstention.' })
export class Answer {
  @Field(() => Collection) collection!: Collection;
  @Field(() => String, { nullable: true, description: 'Null when abstained.' }) answer!: string | null;
  @Field({ description: 'True when nothing relevant enough was found ("not found in the knowledge base").' }) abstained!: boolean;
  @Field(() => String, { nullable: true }) abstentionReason!: string | null;
  @Field(() => [Citation]) citations!: Citation[];
  @Field(() => [Source], { description: 'Retrieved chunks, best first.' }) sources!: Source[];
  @Field(() => [Int], { description: 'Markers dropped from the answer because no source supported them.' }) unsupportedMarkers!: number[];
  @Field({ description: 'The synthesizer that wrote the answer.' }) synthesizer!: string;
  @Field(() => TokenUsage, { nullable: true, description: 'Null without a model call (extractive, abstained before asking, or cached).' })
  usage!: TokenUsage | null;
  @Field(() => Float) retrievalMs!: number;
  @Field(() => Float) tookMs!: number;
}

// askStream's events. Each payload carries `kind` (see AskEvent in query.service.ts), which picks its type.

@ObjectType({ simpleResolvers: true, description: 'askStream: retrieval finished; the sources the answer may cite.' })
export class RetrievalDone {
  @Field(() => [Source], { description: 'Best first.' }) sources!: Source[];
  @Field(() => Float) latencyMs!: number;
}

@ObjectType({
  simpleResolvers: true,
  description:
    'askStream: the next piece of answer text (a sentence for the extractive synthesizer, a token for an LLM). Deltas are the raw text as produced: Completed.answer is the verified answer.',
})
export class AnswerDelta {
  @Field() text!: string;
}

@ObjectType({ simpleResolvers: true, description: 'Where the time of a streamed answer went, in milliseconds since the request started.' })
export class AnswerTimings {
  @Field(() => Float) retrievalMs!: number;
  @Field(() => Float, { nullable: true, description: 'Until the first AnswerDelta; null when there was none.' }) firstDeltaMs!:
    number | null;
  @Field(() => Float) synthesisMs!: number;
  @Field(() => Float) totalMs!: number;
}

@ObjectType({ simpleResolvers: true, description: 'askStream: the final, verified answer (or abstention); the stream ends after it.' })
export class Completed {
  @Field(() => Answer) answer!: Answer;
  @Field(() => TokenUsage, { nullable: true }) usage!: TokenUsage | null;
  @Field(() => AnswerTimings) timings!: AnswerTimings;
}

@ObjectType({
  simpleResolvers: true,
  description: 'askStream: the answer failed; the stream ends after it. `code` is an error code of the error table.',
})
export class Failed {
  @Field() code!: string;
  @Field() message!: string;
}

const EVENT_TYPES = {
  retrievalDone: RetrievalDone,
  answerDelta: AnswerDelta,
  citation: Citation,
  completed: Completed,
  failed: Failed,
} as const;

export const AskStreamEvent = createUnionType({
  name: 'AskStreamEvent',
  description: 'One event of askStream, in order: RetrievalDone, AnswerDelta*, Citation*, then Completed or Failed.',
  types: () => [RetrievalDone, AnswerDelta, Citation, Completed, Failed] as const,
  resolveType: (value) => EVENT_TYPES[(value as { kind?: string }).kind as keyof typeof EVENT_TYPES]?.name,
});
