import { OpenAIEmbedding } from '@llamaindex/openai';
import { ProviderEmbedder } from './provider.embedder';

export interface OpenAIEmbedderOptions {
  /** Base URL of an OpenAI-compatible API (OpenAI, vLLM, TEI, LocalAI), e.g. `http://127.0.0.1:8000/v1`. */
  baseURL: string;
  /** Optional for local servers. */
  apiKey?: string;
  model: string;
  /** Vector size the model returns. */
  dimensions: number;
  /** Timeout of one call, in ms. */
  timeoutMs: number;
  /**
   * Texts per call.
   * @default 256
   */
  maxBatchSize?: number;
  /**
   * Ask the server for `dimensions` (only models that support shortening, e.g. text-embedding-3-*).
   * @default false
   */
  requestDimensions?: boolean;
}

/** Embeddings from an OpenAI-compatible endpoint through LlamaIndex's `OpenAIEmbedding`. */
export class OpenAIEmbedder extends ProviderEmbedder {
  private readonly client: OpenAIEmbedding;

  constructor(options: OpenAIEmbedderOptions) {
    super({
      provider: 'openai',
      model: options.model,
      dimensions: options.dimensions,
      timeoutMs: options.timeoutMs,
      maxBatchSize: options.maxBatchSize ?? 256,
    });
    this.client = new OpenAIEmbedding({
      model: options.model,
      // Local servers need no key, but the OpenAI client refuses to start without one.
      apiKey: options.apiKey ?? 'not-needed',
      baseURL: options.baseURL,
      dimensions: options.requestDimensions ? options.dimensions : undefined,
      timeout: options.timeoutMs,
      maxRetries: 0,
      additionalSessionOptions: { baseURL: options.baseURL },
    });
    this.client.embedBatchSize = this.maxBatchSize;
  }

  protected request(texts: string[]): Promise<number[][]> {
    return this.client.getTextEmbeddings(texts);
  }
}
