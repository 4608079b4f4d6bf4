import type { Registry } from 'prom-client';
import type { Logger } from '../logger';
import type { ReadinessCheck } from '../observability/readiness';
import type { AnswerSynthesizer } from '../ports/answer-synthesizer.port';
import type { ApiKeyStore } from '../ports/api-key-store.port';
import type { Embedder } from '../ports/embedder.port';
import type { Filter, KnowledgeStore } from '../ports/knowledge-store.port';

/** Parts a test (or an embedding program) may supply instead of the ones the config selects. */
export interface AppOverrides {
  store?: KnowledgeStore;
  embedder?: Embedder;
  synthesizer?: AnswerSynthesizer;
  logger?: Logger;
  /** Where metrics are registered (default: a fresh registry per app). */
  metricsRegistry?: Registry;
  /** Where service API keys are kept (default: see `createApiKeyStore`). */
  apiKeyStore?: ApiKeyStore;
  /** Readiness checks reported by /readyz next to the ones the config implies (store, providers). */
  readiness?: ReadinessCheck[];
  /**
   * The documents each access scope may see, as a filter added to its searches (see `KbqlContext.scope`); none by
   * default (access is decided per collection, by tenant).
   */
  accessFilter?: (scope: string) => Filter | undefined;
}
