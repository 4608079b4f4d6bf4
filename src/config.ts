import path from 'node:path';
import { z } from 'zod';

/**
 * Every environment variable kbql reads, declared once, validated once (all problems reported together) and
 * frozen. Nothing else in `src/` reads `process.env`. README's configuration table lists the same variables;
 * `test/unit/config.test.ts` fails when the two drift apart.
 */

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const num = (min: number, max: number) => z.coerce.number().min(min).max(max);
const url = z.url({ protocol: /^https?$/ });

/** Variable name → schema, default and one-line description (the README table is checked against this). */
export const CONFIG_VARIABLES = {
  NODE_ENV: { schema: z.enum(['development', 'production', 'test']), default: 'development', doc: 'development shows stack traces and Sandbox; production masks unexpected errors and disables the landing page' },
  HOST: { schema: z.string().min(1), default: '127.0.0.1', doc: 'interface to listen on (0.0.0.0 in containers)' },
  PORT: { schema: int(0, 65535), default: '4000', doc: 'HTTP port; 0 picks a free one' },
  KBQL_DATA_DIR: { schema: z.string().min(1), default: './data', doc: 'directory of the embedded store (created if missing)' },
  KBQL_STORE: { schema: z.enum(['embedded', 'weaviate']), default: 'embedded', doc: 'knowledge store: embedded (SQLite file in KBQL_DATA_DIR) or weaviate' },
  WEAVIATE_URL: { schema: url, default: '', doc: 'Weaviate REST URL, e.g. http://localhost:8080; required when KBQL_STORE=weaviate' },
  WEAVIATE_GRPC_PORT: { schema: int(1, 65535), default: '50051', doc: 'Weaviate gRPC port (searches and imports go over gRPC)' },
  WEAVIATE_GRPC_HOST: { schema: z.string().min(1), default: '', doc: 'Weaviate gRPC host; default the host of WEAVIATE_URL' },
  WEAVIATE_API_KEY: { schema: z.string().min(1), default: '', doc: 'Weaviate API key, if the server requires one' },
  KBQL_WEAVIATE_PREFIX: { schema: z.string().regex(/^[A-Z][A-Za-z0-9]{0,30}$/), default: 'Kbql', doc: 'prefix of the Weaviate collections kbql creates (one deployment per prefix)' },
  KBQL_WEAVIATE_MULTI_TENANT: { schema: bool, default: 'false', doc: 'create Weaviate collections with multi-tenancy on' },
  KBQL_WEAVIATE_TENANT: { schema: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), default: '', doc: 'the Weaviate tenant this deployment serves; required when multi-tenant' },
  KBQL_WEAVIATE_INIT_TIMEOUT_MS: { schema: int(100, 600_000), default: '10000', doc: 'how long start-up waits for Weaviate before failing' },
  KBQL_EMBEDDER: { schema: z.enum(['hash', 'openai', 'ollama']), default: 'hash', doc: 'hash = offline hashed n-gram embedder (no download, no key); openai = any OpenAI-compatible endpoint (OpenAI, vLLM, TEI, LocalAI); ollama' },
  KBQL_EMBEDDING_MODEL: { schema: z.string().min(1), default: '', doc: 'embedding model name for openai/ollama' },
  KBQL_EMBEDDING_DIMENSIONS: { schema: int(8, 8192), default: '', doc: 'vector size; required for openai/ollama, default 1024 for hash' },
  KBQL_EMBEDDING_BATCH_SIZE: { schema: int(1, 4096), default: '', doc: "texts per provider call (the provider's limit); default 2048 for hash, 256 for openai, 64 for ollama" },
  KBQL_SYNTHESIZER: { schema: z.enum(['extractive', 'openai', 'ollama']), default: 'extractive', doc: 'extractive = offline sentence extraction with citations; openai/ollama = LLM answers with [n] citations' },
  KBQL_LLM_MODEL: { schema: z.string().min(1), default: '', doc: 'chat model for openai/ollama synthesis' },
  OPENAI_BASE_URL: { schema: url, default: 'https://api.openai.com/v1', doc: 'base URL of the OpenAI-compatible API' },
  OPENAI_API_KEY: { schema: z.string().min(1), default: '', doc: 'API key for the OpenAI-compatible API (optional for local servers)' },
  OLLAMA_HOST: { schema: url, default: 'http://127.0.0.1:11434', doc: 'Ollama server URL' },
  KBQL_PROVIDER_TIMEOUT_MS: { schema: int(100, 600_000), default: '30000', doc: 'timeout of one embedding or LLM call' },
  KBQL_STORE_TIMEOUT_MS: { schema: int(100, 600_000), default: '10000', doc: 'timeout of one store operation' },
  KBQL_DEFAULT_CHUNK_SIZE: { schema: int(32, 8192), default: '256', doc: 'default chunk size of new collections, in tokens' },
  KBQL_DEFAULT_CHUNK_OVERLAP: { schema: int(0, 4096), default: '32', doc: 'default chunk overlap of new collections, in tokens' },
  KBQL_HYBRID_ALPHA: { schema: num(0, 1), default: '0.5', doc: 'default weight of the vector side in HYBRID search (1 = vector only)' },
  KBQL_DEFAULT_TOP_K: { schema: int(1, 200), default: '10', doc: 'hits returned by search when topK is not given' },
  KBQL_ASK_TOP_K: { schema: int(1, 200), default: '5', doc: 'sources retrieved by ask when topK is not given' },
  KBQL_MAX_TOP_K: { schema: int(1, 200), default: '100', doc: 'largest topK a caller may ask for (at most 200)' },
  KBQL_MAX_BODY_BYTES: { schema: int(1024, 1024 ** 3), default: String(16 * 1024 * 1024), doc: 'largest HTTP request body (413 above)' },
  KBQL_MAX_DOCUMENT_BYTES: { schema: int(16, 1024 ** 3), default: String(2 * 1024 * 1024), doc: 'largest single document content' },
  KBQL_MAX_DOCUMENTS_PER_REQUEST: { schema: int(1, 100_000), default: '500', doc: 'most documents in one ingestDocuments call' },
  KBQL_MAX_QUERY_CHARS: { schema: int(1, 100_000), default: '2000', doc: 'longest search query or question' },
  KBQL_LOG_LEVEL: { schema: z.enum(['silent', 'error', 'warn', 'info', 'debug']), default: 'info', doc: 'log level (logs go to stderr as JSON lines)' },
} as const satisfies Record<string, { schema: z.ZodType; default: string; doc: string }>;

type Vars = typeof CONFIG_VARIABLES;
type Raw = { [K in keyof Vars]: z.output<Vars[K]['schema']> | undefined };

export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly store:
    | { readonly kind: 'embedded'; readonly timeoutMs: number }
    | {
        readonly kind: 'weaviate';
        readonly timeoutMs: number;
        readonly initTimeoutMs: number;
        readonly url: string;
        readonly grpcPort: number;
        readonly grpcHost: string | null;
        readonly apiKey: string | null;
        readonly prefix: string;
        readonly multiTenant: boolean;
        readonly tenant: string | null;
      };
  readonly embedder:
    | { readonly kind: 'hash'; readonly dimensions: number; readonly batchSize: number; readonly timeoutMs: number }
    | {
        readonly kind: 'openai' | 'ollama';
        readonly model: string;
        readonly dimensions: number;
        readonly batchSize: number;
        readonly timeoutMs: number;
        readonly baseUrl: string;
        readonly apiKey: string | null;
      };
  readonly synthesizer:
    | { readonly kind: 'extractive' }
    | {
        readonly kind: 'openai' | 'ollama';
        readonly model: string;
        readonly timeoutMs: number;
        readonly baseUrl: string;
        readonly apiKey: string | null;
      };
  readonly defaults: {
    readonly chunkSize: number;
    readonly chunkOverlap: number;
    readonly hybridAlpha: number;
    readonly searchTopK: number;
    readonly askTopK: number;
  };
  readonly limits: {
    readonly maxTopK: number;
    readonly maxBodyBytes: number;
    readonly maxDocumentBytes: number;
    readonly maxDocumentsPerRequest: number;
    readonly maxQueryChars: number;
  };
  readonly logLevel: 'silent' | 'error' | 'warn' | 'info' | 'debug';
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Parses the environment (or `env` in tests); throws {@link ConfigError} listing every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const raw = {} as Record<string, unknown>;
  for (const [name, spec] of Object.entries(CONFIG_VARIABLES) as [keyof Vars, Vars[keyof Vars]][]) {
    const given = env[name];
    const value = given === undefined || given === '' ? spec.default : given;
    if (value === '') {
      raw[name] = undefined;
      continue;
    }
    const parsed = (spec.schema as z.ZodType).safeParse(value);
    if (parsed.success) raw[name] = parsed.data;
    else problems.push(`${name}=${JSON.stringify(value)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  const v = raw as Raw;
  const need = <T>(name: keyof Vars, value: T | undefined, why: string): T => {
    if (value === undefined) problems.push(`${name} is required ${why}`);
    return value as T;
  };

  const timeoutMs = v.KBQL_PROVIDER_TIMEOUT_MS!;
  const providerUrl = (kind: 'openai' | 'ollama') => (kind === 'openai' ? v.OPENAI_BASE_URL! : v.OLLAMA_HOST!);
  const embedderKind = v.KBQL_EMBEDDER!;
  const embedder: Config['embedder'] =
    embedderKind === 'hash'
      ? { kind: 'hash', dimensions: v.KBQL_EMBEDDING_DIMENSIONS ?? 1024, batchSize: v.KBQL_EMBEDDING_BATCH_SIZE ?? 2048, timeoutMs }
      : {
          kind: embedderKind,
          model: need('KBQL_EMBEDDING_MODEL', v.KBQL_EMBEDDING_MODEL, `when KBQL_EMBEDDER=${embedderKind}`),
          dimensions: need('KBQL_EMBEDDING_DIMENSIONS', v.KBQL_EMBEDDING_DIMENSIONS, `when KBQL_EMBEDDER=${embedderKind}`),
          batchSize: v.KBQL_EMBEDDING_BATCH_SIZE ?? (embedderKind === 'openai' ? 256 : 64),
          timeoutMs,
          baseUrl: providerUrl(embedderKind),
          apiKey: embedderKind === 'openai' ? (v.OPENAI_API_KEY ?? null) : null,
        };
  const synthKind = v.KBQL_SYNTHESIZER!;
  const synthesizer: Config['synthesizer'] =
    synthKind === 'extractive'
      ? { kind: 'extractive' }
      : {
          kind: synthKind,
          model: need('KBQL_LLM_MODEL', v.KBQL_LLM_MODEL, `when KBQL_SYNTHESIZER=${synthKind}`),
          timeoutMs,
          baseUrl: providerUrl(synthKind),
          apiKey: synthKind === 'openai' ? (v.OPENAI_API_KEY ?? null) : null,
        };

  const store: Config['store'] =
    v.KBQL_STORE === 'weaviate'
      ? {
          kind: 'weaviate',
          timeoutMs: v.KBQL_STORE_TIMEOUT_MS!,
          initTimeoutMs: v.KBQL_WEAVIATE_INIT_TIMEOUT_MS!,
          url: need('WEAVIATE_URL', v.WEAVIATE_URL, 'when KBQL_STORE=weaviate'),
          grpcPort: v.WEAVIATE_GRPC_PORT!,
          grpcHost: v.WEAVIATE_GRPC_HOST ?? null,
          apiKey: v.WEAVIATE_API_KEY ?? null,
          prefix: v.KBQL_WEAVIATE_PREFIX!,
          multiTenant: v.KBQL_WEAVIATE_MULTI_TENANT!,
          tenant: v.KBQL_WEAVIATE_MULTI_TENANT
            ? need('KBQL_WEAVIATE_TENANT', v.KBQL_WEAVIATE_TENANT, 'when KBQL_WEAVIATE_MULTI_TENANT=true')
            : null,
        }
      : { kind: 'embedded', timeoutMs: v.KBQL_STORE_TIMEOUT_MS! };

  const chunkSize = v.KBQL_DEFAULT_CHUNK_SIZE!;
  const chunkOverlap = v.KBQL_DEFAULT_CHUNK_OVERLAP!;
  if (chunkSize !== undefined && chunkOverlap !== undefined && chunkOverlap >= chunkSize) {
    problems.push(`KBQL_DEFAULT_CHUNK_OVERLAP (${chunkOverlap}) must be smaller than KBQL_DEFAULT_CHUNK_SIZE (${chunkSize})`);
  }
  for (const name of ['KBQL_DEFAULT_TOP_K', 'KBQL_ASK_TOP_K'] as const) {
    if ((v[name] ?? 0) > (v.KBQL_MAX_TOP_K ?? Infinity)) problems.push(`${name} must not exceed KBQL_MAX_TOP_K`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze<Config>({
    env: v.NODE_ENV!,
    host: v.HOST!,
    port: v.PORT!,
    dataDir: path.resolve(v.KBQL_DATA_DIR!),
    store,
    embedder,
    synthesizer,
    defaults: {
      chunkSize,
      chunkOverlap,
      hybridAlpha: v.KBQL_HYBRID_ALPHA!,
      searchTopK: v.KBQL_DEFAULT_TOP_K!,
      askTopK: v.KBQL_ASK_TOP_K!,
    },
    limits: {
      maxTopK: v.KBQL_MAX_TOP_K!,
      maxBodyBytes: v.KBQL_MAX_BODY_BYTES!,
      maxDocumentBytes: v.KBQL_MAX_DOCUMENT_BYTES!,
      maxDocumentsPerRequest: v.KBQL_MAX_DOCUMENTS_PER_REQUEST!,
      maxQueryChars: v.KBQL_MAX_QUERY_CHARS!,
    },
    logLevel: v.KBQL_LOG_LEVEL!,
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
