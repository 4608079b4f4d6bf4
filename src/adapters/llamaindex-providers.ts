/**
 * LlamaIndex's provider packages, loaded on first use. Loading either one builds LlamaIndex's global settings and its
 * tokenizer: about 70–80 MB of heap and 0.7 s of start-up that the offline defaults (hash embedder, extractive
 * answers) never use — and every garbage collection on the event loop pays for a larger heap. Types come from the
 * static `import type`s; only the modules' code waits.
 */
/* eslint-disable @typescript-eslint/no-require-imports */

export const llamaindexOpenAi = () => require('@llamaindex/openai') as typeof import('@llamaindex/openai');

export const llamaindexOllama = () => require('@llamaindex/ollama') as typeof import('@llamaindex/ollama');
