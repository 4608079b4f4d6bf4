import { OllamaEmbedding } from '@llamaindex/ollama';
import { ProviderEmbedder } from './provider.embedder';

export interface OllamaEmbedderOptions {
  /** Ollama server URL, e.g. `http://127.0.0.1:11434`. */
  host: string;
  model: string;
  /** Vector size the model returns. */
  dimensions: number;
  /** Timeout of one batch, in ms. */
  timeoutMs: number;
  /**
   * Texts per batch (LlamaIndex's Ollama adapter sends them one request each, a few at a time).
   * @default 64
   */
  maxBatchSize?: number;
}

/** Ollama concurrency per batch: its embedding API takes one text per request. */
const PARALLEL_REQUESTS = 4;

/** Embeddings from an Ollama server through LlamaIndex's `OllamaEmbedding`. */
export class OllamaEmbedder extends ProviderEmbedder {
  private readonly client: OllamaEmbedding;

  constructor(options: OllamaEmbedderOptions) {
    super({
      provider: 'ollama',
      model: options.model,
      dimensions: options.dimensions,
      timeoutMs: options.timeoutMs,
      maxBatchSize: options.maxBatchSize ?? 64,
    });
    this.client = new OllamaEmbedding({ model: options.model, config: { host: options.host } });
  }

  protected async request(texts: string[]): Promise<number[][]> {
    const out: number[][] = new Array(texts.length);
    let next = 0;
    const worker = async () => {
      while (next < texts.length) {
        const i = next++;
        out[i] = await this.client.getTextEmbedding(texts[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_REQUESTS, texts.length) }, worker));
    return out;
  }
}
