import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/**
 * Every environment variable kbql reads, declared once, validated once (all problems reported together) and
 * frozen. Nothing else in `src/` reads `process.env`. README's configuration table lists the same variables;
 * `test/unit/config.test.ts` fails when the two drift apart.
 */

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const num = (min: number, max: number) => z.coerce.number().min(min).max(max);
const url = z.url({ protocol: /^https?$/ });
const REDIS_URL_HINT =
  'not a valid redis:// or rediss:// URL; if it holds a password with /, #, ? or @ (as openssl rand -base64 makes), ' +
  'leave the password out of the URL and set REDIS_PASSWORD, or percent-encode it (/ → %2F, # → %23, ? → %3F)';
/** Where /metrics goes with NODE_ENV=production and KBQL_METRICS_PORT unset (the OpenTelemetry Prometheus port). */
export const DEFAULT_PRODUCTION_METRICS_PORT = 9464;
/** Variables whose value is never repeated in an error message. */
const SECRET_VARIABLES = new Set(['REDIS_URL', 'REDIS_PASSWORD', 'KBQL_JWT_SECRET', 'WEAVIATE_API_KEY', 'OPENAI_API_KEY']);

/** Variable name → schema, default and one-line description (the README table is checked against this). */
export const CONFIG_VARIABLES = {
  NODE_ENV: {
    schema: z.enum(['development', 'production', 'test']),
    default: 'development',
    doc: 'development shows stack traces and Sandbox; production masks unexpected errors and disables the landing page',
  },
  HOST: { schema: z.string().min(1), default: '127.0.0.1', doc: 'interface to listen on (0.0.0.0 in containers)' },
  PORT: { schema: int(0, 65535), default: '4000', doc: 'HTTP port; 0 picks a free one' },
  KBQL_DATA_DIR: { schema: z.string().min(1), default: './data', doc: 'directory of the embedded store (created if missing)' },
  KBQL_STORE: {
    schema: z.enum(['embedded', 'weaviate']),
    default: 'embedded',
    doc: 'knowledge store: embedded (SQLite file in KBQL_DATA_DIR) or weaviate',
  },
  KBQL_VECTOR_INDEX: {
    schema: z.enum(['auto', 'exact']),
    default: 'auto',
    doc: 'vector index of the embedded store: auto = an approximate (HNSW) index per collection saved in KBQL_DATA_DIR/ann, exact scan under 5,000 chunks and for selective filters (docs/ann-index.md); exact = scan every vector',
  },
  WEAVIATE_URL: { schema: url, default: '', doc: 'Weaviate REST URL, e.g. http://localhost:8080; required when KBQL_STORE=weaviate' },
  WEAVIATE_GRPC_PORT: { schema: int(1, 65535), default: '50051', doc: 'Weaviate gRPC port (searches and imports go over gRPC)' },
  WEAVIATE_GRPC_HOST: { schema: z.string().min(1), default: '', doc: 'Weaviate gRPC host; default the host of WEAVIATE_URL' },
  WEAVIATE_API_KEY: { schema: z.string().min(1), default: '', doc: 'Weaviate API key, if the server requires one' },
  KBQL_WEAVIATE_PREFIX: {
    schema: z.string().regex(/^[A-Z][A-Za-z0-9]{0,30}$/),
    default: 'Kbql',
    doc: 'prefix of the Weaviate collections kbql creates (one deployment per prefix)',
  },
  KBQL_WEAVIATE_MULTI_TENANT: { schema: bool, default: 'false', doc: 'create Weaviate collections with multi-tenancy on' },
  KBQL_WEAVIATE_TENANT: {
    schema: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    default: '',
    doc: 'the Weaviate tenant this deployment serves; required when multi-tenant',
  },
  KBQL_WEAVIATE_BIND_TENANTS: {
    schema: bool,
    default: 'false',
    doc: "with KBQL_WEAVIATE_MULTI_TENANT: each kbql tenant's chunks (text, vectors, metadata) live in a Weaviate tenant of their own, named after it and created on demand; collection and document records stay in KBQL_WEAVIATE_TENANT",
  },
  KBQL_WEAVIATE_INIT_TIMEOUT_MS: {
    schema: int(100, 600_000),
    default: '10000',
    doc: 'how long start-up waits for Weaviate before failing',
  },
  KBQL_EMBEDDER: {
    schema: z.enum(['hash', 'openai', 'ollama']),
    default: 'hash',
    doc: 'hash = offline hashed n-gram embedder (no download, no key); openai = any OpenAI-compatible endpoint (OpenAI, vLLM, TEI, LocalAI); ollama',
  },
  KBQL_EMBEDDING_MODEL: { schema: z.string().min(1), default: '', doc: 'embedding model name for openai/ollama' },
  KBQL_EMBEDDING_DIMENSIONS: { schema: int(8, 8192), default: '', doc: 'vector size; required for openai/ollama, default 1024 for hash' },
  KBQL_EMBEDDING_BATCH_SIZE: {
    schema: int(1, 4096),
    default: '',
    doc: "texts per provider call (the provider's limit); default 2048 for hash, 256 for openai, 64 for ollama",
  },
  KBQL_EMBEDDERS: {
    schema: z.string().min(2),
    default: '',
    doc: 'more embedders by name, as JSON: {"<name>": {"provider": "hash"|"openai"|"ollama", "model", "dimensions", "url", "batchSize"}}; the KBQL_EMBEDDER/KBQL_EMBEDDING_* variables define the one named default (docs/reembedding.md)',
  },
  KBQL_REEMBED_GRACE_SECONDS: {
    schema: int(0, 31_536_000),
    default: '86400',
    doc: 'how long the old vectors of a re-embedded collection are kept for rollbackEmbedding before they are dropped',
  },
  KBQL_EMBEDDING_BATCH_WINDOW_MS: {
    schema: int(0, 1000),
    default: '2',
    doc: 'how long the shared embedding batcher gathers texts from concurrent requests into one provider call',
  },
  KBQL_SYNTHESIZER: {
    schema: z.enum(['extractive', 'openai', 'ollama']),
    default: 'extractive',
    doc: 'extractive = offline sentence extraction with citations; openai/ollama = LLM answers with [n] citations',
  },
  KBQL_LLM_MODEL: { schema: z.string().min(1), default: '', doc: 'chat model for openai/ollama synthesis' },
  OPENAI_BASE_URL: { schema: url, default: 'https://api.openai.com/v1', doc: 'base URL of the OpenAI-compatible API' },
  OPENAI_API_KEY: { schema: z.string().min(1), default: '', doc: 'API key for the OpenAI-compatible API (optional for local servers)' },
  OLLAMA_HOST: { schema: url, default: 'http://127.0.0.1:11434', doc: 'Ollama server URL' },
  KBQL_PROVIDER_TIMEOUT_MS: { schema: int(100, 600_000), default: '30000', doc: 'timeout of one embedding or LLM call' },
  KBQL_LLM_RETRIES: {
    schema: int(0, 10),
    default: '2',
    doc: 'retries of an LLM call on transient failures (HTTP 408/429/5xx, connection refused or reset), with exponential backoff; a streamed answer is retried only before its first token',
  },
  KBQL_LLM_BREAKER_THRESHOLD: {
    schema: int(1, 1000),
    default: '5',
    doc: 'consecutive failed LLM calls (transient errors or timeouts) that open the circuit: answers then fail fast with UPSTREAM_UNAVAILABLE',
  },
  KBQL_LLM_BREAKER_HALF_OPEN_MS: {
    schema: int(100, 3_600_000),
    default: '30000',
    doc: 'how long an open LLM circuit fails fast before one trial call',
  },
  KBQL_ANSWER_MIN_RELEVANCE: {
    schema: num(0, 1),
    default: '',
    doc: "least share (IDF-weighted) of the question's terms the best source sentence must cover to answer at all; default extractive 0.25 (a floor under its calibrated answerability score), LLM 0.35 (see README, answer quality)",
  },
  KBQL_ANSWER_MIN_KEY_COVERAGE: {
    schema: num(0, 1),
    default: '',
    doc: "least share of the question's key terms the extractive answer sentence and its neighbours must state, as a hard check on top of the answerability score (which already weighs it); default 0 = off",
  },
  KBQL_ANSWER_MIN_ANSWERABILITY: {
    schema: num(0, 1),
    default: '',
    doc: 'least answerability score (the calibrated logistic model of the extractive synthesizer) of the best sentence to answer rather than abstain; default 0.425 (fitted on SQuAD 2 questions, see README, answer quality); lower answers more and abstains less; 0 = off',
  },
  KBQL_ABSTAIN_MIN_SIMILARITY: {
    schema: num(0, 1),
    default: '',
    doc: 'least cosine similarity of the best retrieved chunk (VECTOR/HYBRID) to answer at all; default calibrated per embedder (hash: see README), 0 for openai/ollama (uncalibrated: set it for your model)',
  },
  KBQL_STORE_TIMEOUT_MS: { schema: int(100, 600_000), default: '10000', doc: 'timeout of one store operation' },
  REDIS_URL: {
    schema: z.url({ protocol: /^rediss?$/, error: REDIS_URL_HINT }),
    default: '',
    doc: 'Redis shared by all replicas for the caches (embeddings, search/ask results, persisted queries), rate limits, jobs and their events, e.g. redis://redis:6379; a password in it must be percent-encoded (better: REDIS_PASSWORD); unset: an in-process cache per replica',
  },
  REDIS_PASSWORD: {
    schema: z.string().min(1),
    default: '',
    doc: 'password of REDIS_URL, taken as it is (any characters, e.g. from openssl rand -base64 48) and used by every Redis client kbql makes; give it here or in REDIS_URL, not both',
  },
  KBQL_CACHE_PREFIX: {
    schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
    default: 'kbql',
    doc: 'prefix of every cache key in Redis (deployments sharing a Redis need different ones)',
  },
  KBQL_CACHE_TIMEOUT_MS: {
    schema: int(1, 10_000),
    default: '50',
    doc: 'longest one cache call may take; past it (or with Redis down) the request goes on without the cache, counted as a bypass',
  },
  KBQL_CACHE_EMBEDDING_TTL_SECONDS: {
    schema: int(0, 31_536_000),
    default: '2592000',
    doc: 'how long an embedding stays cached (key: embedder name, dimensions, text hash); 0 = no embedding cache',
  },
  KBQL_CACHE_RESULT_TTL_SECONDS: {
    schema: int(0, 2_592_000),
    default: '300',
    doc: 'how long a search/ask result stays cached (key: collection version, arguments, access scope; every write invalidates); 0 = no result cache',
  },
  KBQL_CACHE_MEMORY_MB: { schema: int(1, 65_536), default: '64', doc: 'size of the in-process cache used when REDIS_URL is unset' },
  KBQL_DOCUMENT_CACHE_SIZE: {
    schema: int(0, 100_000),
    default: '1000',
    doc: 'parsed and validated GraphQL operations kept in process (a repeated operation skips parsing and validation); 0 = none',
  },
  KBQL_DEFAULT_CHUNK_SIZE: { schema: int(32, 8192), default: '256', doc: 'default chunk size of new collections, in tokens' },
  KBQL_DEFAULT_CHUNK_OVERLAP: { schema: int(0, 4096), default: '32', doc: 'default chunk overlap of new collections, in tokens' },
  KBQL_HYBRID_ALPHA: {
    schema: num(0, 1),
    default: '0.25',
    doc: 'default weight of the vector side in HYBRID search (1 = vector only). With the offline embedder SciFact cannot tell 0 to 0.3 apart (cross-validation picks 0.05, within noise); 0.25 keeps two more SQuAD 2 answers than 0.05 (docs/benchmarks.md)',
  },
  KBQL_DEFAULT_TOP_K: { schema: int(1, 200), default: '10', doc: 'hits returned by search when topK is not given' },
  KBQL_ASK_TOP_K: { schema: int(1, 200), default: '5', doc: 'sources retrieved by ask when topK is not given' },
  KBQL_MAX_TOP_K: { schema: int(1, 200), default: '100', doc: 'largest topK a caller may ask for (at most 200)' },
  KBQL_MAX_BODY_BYTES: { schema: int(1024, 1024 ** 3), default: String(16 * 1024 * 1024), doc: 'largest HTTP request body (413 above)' },
  KBQL_MAX_DOCUMENT_BYTES: { schema: int(16, 1024 ** 3), default: String(2 * 1024 * 1024), doc: 'largest single document content' },
  KBQL_MAX_DOCUMENTS_PER_REQUEST: { schema: int(1, 100_000), default: '500', doc: 'most documents in one ingestDocuments call' },
  KBQL_MAX_QUERY_CHARS: { schema: int(1, 100_000), default: '2000', doc: 'longest search query or question' },
  KBQL_JOB_QUEUE: {
    schema: z.enum(['auto', 'memory', 'redis']),
    default: 'auto',
    doc: 'where ingestion jobs live: memory = an in-process queue with job state in SQLite in KBQL_DATA_DIR (one replica); redis = BullMQ and job state in REDIS_URL (replicas share the work, each document processed by one); auto = redis when REDIS_URL is set',
  },
  KBQL_INGEST_CONCURRENCY: {
    schema: int(1, 64),
    default: '8',
    doc: 'documents of ingestion jobs processed at once by each replica (more in flight lets the embedding batcher fill larger provider calls: 1,000 SciFact documents ran at 0.58× the synchronous path with 1, 0.75× with 2, 0.93× with 8)',
  },
  KBQL_JOB_LOCK_MS: {
    schema: int(1000, 600_000),
    default: '30000',
    doc: 'with KBQL_JOB_QUEUE=redis: how long a replica holds a document without renewing its lock; the documents of a replica that died go to the others after about this long',
  },
  KBQL_MAX_DOCUMENTS_PER_JOB: { schema: int(1, 1_000_000), default: '10000', doc: 'most documents plus uploads in one startIngestion' },
  KBQL_MAX_QUEUED_DOCUMENTS_PER_TENANT: {
    schema: int(1, 100_000_000),
    default: '50000',
    doc: "most documents one tenant may have queued or in progress across its ingestion jobs (both job backends count them); a startIngestion that would go over fails with RATE_LIMITED and extensions.retryAfter (30 s), so one tenant's backlog cannot starve the others",
  },
  KBQL_MAX_UPLOAD_BYTES: {
    schema: int(1, 1024 ** 3),
    default: String(25 * 1024 * 1024),
    doc: 'largest file POST /v1/uploads accepts (413 PAYLOAD_TOO_LARGE above)',
  },
  KBQL_UPLOAD_TTL_SECONDS: {
    schema: int(60, 2_592_000),
    default: '86400',
    doc: 'how long an upload waits for a startIngestion before it is deleted',
  },
  KBQL_PARSE_TIMEOUT_MS: {
    schema: int(100, 600_000),
    default: '30000',
    doc: 'longest the extraction of one PDF or DOCX may take (in a worker thread, terminated past it: that document FAILED with PARSE_TIMEOUT)',
  },
  KBQL_WORKERS: {
    schema: int(1, 256),
    default: '',
    doc: "worker threads that parse, chunk and (with the hash embedder) embed documents and queries, off the event loop; unset: the machine's available parallelism",
  },
  KBQL_WORKER_QUEUE: {
    schema: int(1, 100_000),
    default: '256',
    doc: 'tasks of synchronous calls (ingestDocuments, previewChunks, query embedding) that may wait for a worker thread; beyond it they fail at once with SERVER_BUSY (jobs wait instead)',
  },
  KBQL_WORKER_QUEUE_TIMEOUT_MS: {
    schema: int(1, 600_000),
    default: '10000',
    doc: 'longest a synchronous call waits for a free worker thread before it fails with SERVER_BUSY (retryAfter 1 s); jobs wait without limit',
  },
  KBQL_CHUNK_TIMEOUT_MS: {
    schema: int(100, 600_000),
    default: '30000',
    doc: 'longest parsing or chunking one text document may take in its worker thread; past it the thread is terminated and replaced and the document FAILED with PARSE_TIMEOUT or CHUNK_TIMEOUT',
  },
  KBQL_WORKER_HEAP_MB: {
    schema: int(64, 65_536),
    default: '512',
    doc: 'V8 heap limit of one worker thread, in MiB (a document that needs more fails alone; the thread is replaced)',
  },
  KBQL_MAX_EXTRACTED_BYTES: {
    schema: int(1024, 1024 ** 3),
    default: String(8 * 1024 * 1024),
    doc: 'most bytes of text (UTF-8) one PDF or DOCX may yield; past it extraction stops (a PDF at that page) and the document FAILED with TEXT_TOO_LARGE. Text within it must still fit KBQL_MAX_DOCUMENT_BYTES to be indexed (PAYLOAD_TOO_LARGE otherwise), so it must not be smaller',
  },
  KBQL_MAX_ARCHIVE_INFLATED_BYTES: {
    schema: int(1024, 4 * 1024 ** 3 - 1),
    default: String(64 * 1024 * 1024),
    doc: 'most bytes the ZIP entries of a DOCX may inflate to, as declared and as actually counted while inflating (before the XML reader sees them); above, or an entry inflating past its declared size (zip bomb): FAILED with ARCHIVE_TOO_LARGE',
  },
  KBQL_MAX_ARCHIVE_ENTRIES: {
    schema: int(1, 65_534),
    default: '2000',
    doc: 'most entries in the ZIP container of a DOCX (ARCHIVE_TOO_LARGE above)',
  },
  KBQL_MAX_PDF_PAGES: {
    schema: int(1, 1_000_000),
    default: '2000',
    doc: 'most pages of a PDF, read from the document before any text: above, FAILED with TOO_MANY_PAGES',
  },
  KBQL_JOB_RETENTION_DAYS: {
    schema: int(0, 3650),
    default: '7',
    doc: 'finished ingestion jobs (COMPLETED, COMPLETED_WITH_ERRORS, CANCELLED) are deleted with their per-document records this many days after they end, by an hourly sweep; 0 keeps them forever (the indexed documents always stay)',
  },
  KBQL_AUTH_MODE: {
    schema: z.enum(['none', 'jwt']),
    default: '',
    doc: 'none = no authentication, every caller is an ADMIN of tenant "default" (local development only; logged as a warning); jwt = Bearer JWTs required; unset: jwt when NODE_ENV=production, else none',
  },
  KBQL_JWT_SECRET: {
    schema: z.string().min(32),
    default: '',
    doc: 'HS256 secret (at least 32 characters) that signs the tokens; give this or KBQL_JWT_JWKS_URL when KBQL_AUTH_MODE=jwt',
  },
  KBQL_JWT_JWKS_URL: {
    schema: url,
    default: '',
    doc: 'JWKS URL of the identity provider (keys cached, refetched on an unknown kid); give this or KBQL_JWT_SECRET',
  },
  KBQL_JWT_ALGORITHMS: {
    schema: z.string().regex(/^(?:HS|RS|PS|ES)(?:256|384|512)(?:,(?:HS|RS|PS|ES)(?:256|384|512))*$|^EdDSA$/),
    default: '',
    doc: 'accepted signature algorithms, comma-separated (anything else is refused); default HS256 with a secret, RS256,ES256 with JWKS; HS* only with a secret, never with JWKS',
  },
  KBQL_JWT_ISSUER: { schema: z.string().min(1), default: '', doc: 'required `iss` of tokens; unset: not checked' },
  KBQL_JWT_AUDIENCE: { schema: z.string().min(1), default: '', doc: 'required `aud` of tokens; unset: not checked' },
  KBQL_JWT_CLOCK_SKEW_SECONDS: { schema: int(0, 300), default: '30', doc: 'clock difference tolerated on `exp` and `nbf`' },
  KBQL_JWT_ROLE_CLAIM: {
    schema: z.string().min(1),
    default: 'kbql_role',
    doc: 'claim holding the role: READER, WRITER or ADMIN (a token without a valid one is refused)',
  },
  KBQL_JWT_TENANT_CLAIM: {
    schema: z.string().min(1),
    default: 'kbql_tenant',
    doc: 'claim holding the tenant (a token without one is refused)',
  },
  KBQL_JWT_CACHE_SECONDS: {
    schema: int(0, 3600),
    default: '60',
    doc: 'how long a verified JWT is remembered (LRU by token hash, never past its `exp`) so repeated requests skip signature checks; failures are never remembered; 0 = off',
  },
  KBQL_API_KEY_CACHE_SECONDS: {
    schema: int(0, 3600),
    default: '30',
    doc: 'how long a verified service API key is trusted without reading the key store again; a revocation takes effect at once on the replica that made it, on others within this period; 0 = off',
  },
  KBQL_RESOLVER_TIMEOUT_MS: {
    schema: int(100, 3_600_000),
    default: '30000',
    doc: 'longest any resolver that calls the store, embedder or synthesizer may run before the field fails with UPSTREAM_TIMEOUT',
  },
  KBQL_CORS_ORIGINS: {
    schema: z.string().regex(/^(?:\*|https?:\/\/[A-Za-z0-9.\-[\]:]+)(?:,(?:https?:\/\/[A-Za-z0-9.\-[\]:]+))*$/),
    default: '',
    doc: 'browser origins allowed to call /graphql cross-origin, comma-separated (e.g. https://app.example.com), or * (any origin; only with NODE_ENV=development or test); unset: https://studio.apollographql.com plus http(s)://localhost, 127.0.0.1 and [::1] on any port with NODE_ENV=development or test, no cross-origin access otherwise (see docs/front-door.md)',
  },
  KBQL_CORS_CREDENTIALS: {
    schema: bool,
    default: 'false',
    doc: 'let allowed origins send cookies and HTTP auth (Access-Control-Allow-Credentials); kbql itself reads none: bearer tokens and API keys need no credentials mode',
  },
  KBQL_MAX_WS_CONNECTIONS_PER_CALLER: {
    schema: int(1, 100_000),
    default: '10',
    doc: 'open WebSocket connections one caller (principal, or client IP when anonymous) may hold per replica; one more is closed with 4429 RATE_LIMITED',
  },
  KBQL_TRUSTED_PROXIES: {
    schema: z.string().regex(/^[0-9A-Fa-f.:]+(?:,[0-9A-Fa-f.:]+)*$/),
    default: '',
    doc: 'comma-separated addresses of reverse proxies whose X-Forwarded-For is believed (for the client IP that rate-limits anonymous callers); unset: none',
  },
  KBQL_RATE_LIMIT: {
    schema: bool,
    default: '',
    doc: 'enforce @rateLimit (counters in REDIS_URL when set, shared by replicas; in memory otherwise or while Redis is down); unset: on, except NODE_ENV=test, and NODE_ENV=development with KBQL_AUTH_MODE=none (said at start-up)',
  },
  KBQL_RATE_LIMIT_MAX: {
    schema: int(1, 1_000_000),
    default: '',
    doc: 'replaces the max of every @rateLimit field (the schema says 60/min for ask and ingestDocuments, 120/min for search); unset: the schema values',
  },
  KBQL_RATE_LIMIT_WINDOW_SECONDS: {
    schema: int(1, 86_400),
    default: '',
    doc: 'replaces the window of every @rateLimit field; unset: the schema values',
  },
  KBQL_RATE_LIMIT_TIMEOUT_MS: {
    schema: int(1, 10_000),
    default: '50',
    doc: 'longest one rate-limit Redis call may take before the in-memory limiter decides',
  },
  KBQL_MAX_QUERY_DEPTH: { schema: int(2, 100), default: '12', doc: 'deepest selection nesting of an operation (QUERY_TOO_DEEP above)' },
  KBQL_MAX_QUERY_COST: {
    schema: int(10, 10_000_000),
    default: '10000',
    doc: 'highest estimated cost of an operation (QUERY_TOO_COMPLEX above): 1 per field, search 10 and ask 50, lists and search/ask results multiplied by first/topK',
  },
  KBQL_MAX_ALIASES: { schema: int(1, 10_000), default: '30', doc: 'most aliased fields in an operation (QUERY_TOO_COMPLEX above)' },
  KBQL_MAX_QUERY_TOKENS: {
    schema: int(100, 1_000_000),
    default: '5000',
    doc: 'most lexical tokens in an operation document (parsing stops there; GRAPHQL_PARSE_FAILED)',
  },
  KBQL_LOG_LEVEL: {
    schema: z.enum(['silent', 'error', 'warn', 'info', 'debug']),
    default: 'info',
    doc: 'log level (logs go to stderr as JSON lines)',
  },
  KBQL_METRICS_PORT: {
    schema: z.union([z.literal('main'), int(0, 65535)]),
    default: '',
    doc: 'serve GET /metrics on this port only (the main port then answers 404 for it), so it can be kept from the public entry point; main = on the main port; unset: 9464 with NODE_ENV=production, the main port otherwise',
  },
  OTEL_TRACES_EXPORTER: {
    schema: z.enum(['otlp', 'console', 'none']),
    default: '',
    doc: 'otlp = OpenTelemetry traces over OTLP/HTTP, console = to stdout, none = off; unset: otlp when an OTLP endpoint is set, else off',
  },
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    schema: url,
    default: '',
    doc: 'OTLP/HTTP collector base URL, e.g. http://otel-collector:4318 (traces go to /v1/traces); the other standard OTEL_* variables are read by the SDK',
  },
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {
    schema: url,
    default: '',
    doc: 'full OTLP/HTTP traces URL, overriding OTEL_EXPORTER_OTLP_ENDPOINT for traces',
  },
  OTEL_SERVICE_NAME: { schema: z.string().min(1), default: 'kbql', doc: 'service.name of the traces' },
} as const satisfies Record<string, { schema: z.ZodType; default: string; doc: string }>;

type Vars = typeof CONFIG_VARIABLES;
type Raw = { [K in keyof Vars]: z.output<Vars[K]['schema']> | undefined };

export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly store:
    | { readonly kind: 'embedded'; readonly timeoutMs: number; readonly vectorIndex: 'auto' | 'exact' }
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
        /** Chunks in a Weaviate tenant per kbql tenant (needs multiTenant). */
        readonly bindTenants: boolean;
      };
  /** The embedders by name: `default` (the KBQL_EMBEDDER variables) first, then those of KBQL_EMBEDDERS. */
  readonly embedders: readonly NamedEmbedderConfig[];
  /** Re-embedding: how long the old vectors stay for a rollback, in seconds. */
  readonly reembed: { readonly graceSeconds: number };
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
  /** Answer quality knobs: abstention thresholds (null = the calibrated default) and the LLM's retries and breaker. */
  readonly answers: {
    readonly minRelevance: number | null;
    readonly minKeyCoverage: number | null;
    readonly minAnswerability: number | null;
    readonly minSimilarity: number | null;
    readonly llmRetries: number;
    readonly llmBreakerThreshold: number;
    readonly llmBreakerHalfOpenMs: number;
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
  readonly auth: {
    /** none: every caller is DEVELOPMENT_PRINCIPAL; jwt: Bearer tokens. */
    readonly mode: 'none' | 'jwt';
    /** Set exactly when mode is jwt. */
    readonly jwt: {
      readonly secret: string | null;
      readonly jwksUrl: string | null;
      readonly algorithms: readonly string[];
      readonly issuer: string | null;
      readonly audience: string | null;
      readonly clockSkewSeconds: number;
      readonly roleClaim: string;
      readonly tenantClaim: string;
    } | null;
    /** Proxy addresses whose X-Forwarded-For is trusted. */
    readonly trustedProxies: readonly string[];
    /** How long a verified JWT is remembered, in seconds; 0 = off. */
    readonly tokenCacheSeconds: number;
    /** How long a verified API key is trusted without a store read, in seconds; 0 = off. */
    readonly apiKeyCacheSeconds: number;
  };
  readonly rateLimit: {
    readonly enabled: boolean;
    /** Why `enabled` has its value (said at start-up). */
    readonly reason: string;
    readonly maxOverride: number | null;
    readonly windowSecondsOverride: number | null;
    readonly timeoutMs: number;
  };
  /** Cross-origin access to /graphql (browsers). */
  readonly cors: {
    /** Exact origins allowed (scheme://host[:port]). */
    readonly origins: readonly string[];
    /** Any origin (`*`; never in production). */
    readonly anyOrigin: boolean;
    /** http(s)://localhost, 127.0.0.1 and [::1] on any port. */
    readonly localhost: boolean;
    readonly credentials: boolean;
  };
  /** Open WebSocket connections per caller and replica. */
  readonly maxWsConnectionsPerCaller: number;
  readonly graphql: {
    /** Introspection and field suggestions: only with NODE_ENV explicitly development or test. */
    readonly introspection: boolean;
    /** Unmasked internal errors with stack traces: only with NODE_ENV explicitly development. */
    readonly exposeInternalErrors: boolean;
    readonly maxDepth: number;
    readonly maxCost: number;
    readonly maxAliases: number;
    readonly maxTokens: number;
    /** Bound of every resolver that calls out (store, embedder, synthesizer), in ms. */
    readonly resolverTimeoutMs: number;
  };
  readonly jobs: {
    /** memory: in-process queue + SQLite job state in dataDir; redis: BullMQ + job state in cache.redisUrl. */
    readonly queue: 'memory' | 'redis';
    readonly concurrency: number;
    /** BullMQ lock duration (Redis mode), in ms. */
    readonly lockMs: number;
    readonly maxDocumentsPerJob: number;
    /** Open (queued or in progress) documents one tenant may have across its jobs. */
    readonly maxQueuedDocumentsPerTenant: number;
    readonly parseTimeoutMs: number;
    /** Bounds of one uploaded file's extraction (bytes, bytes, entries, pages). */
    readonly extraction: {
      readonly maxExtractedBytes: number;
      readonly maxArchiveInflatedBytes: number;
      readonly maxArchiveEntries: number;
      readonly maxPdfPages: number;
    };
    /** Days a finished job is kept after it ends; 0: forever. */
    readonly retentionDays: number;
  };
  /** The worker threads of parsing, chunking and local embedding. */
  readonly workers: {
    readonly size: number;
    readonly maxQueue: number;
    readonly queueTimeoutMs: number;
    /** Wall time of one parse or chunk task of a text document, in ms. */
    readonly taskTimeoutMs: number;
    readonly heapMb: number;
  };
  readonly uploads: {
    readonly maxBytes: number;
    readonly ttlSeconds: number;
  };
  readonly batching: {
    /** How long the shared embedding batcher waits for more texts before calling the provider, in ms. */
    readonly windowMs: number;
  };
  readonly cache: {
    /** null: an in-process cache. */
    readonly redisUrl: string | null;
    readonly prefix: string;
    readonly timeoutMs: number;
    /** 0 = off. */
    readonly embeddingTtlSeconds: number;
    /** 0 = off. */
    readonly resultTtlSeconds: number;
    readonly memoryMaxBytes: number;
    /** Parsed and validated operations kept by Apollo's document store; 0 = none. */
    readonly documentCacheSize: number;
  };
  readonly metrics: {
    /** A separate port for GET /metrics (then not served on the main port); null = the main port. */
    readonly port: number | null;
  };
  readonly tracing: {
    /** Where traces go; null = tracing off (no SDK is set up). Endpoint, headers, sampler: the SDK reads OTEL_*. */
    readonly exporter: 'otlp' | 'console' | null;
    readonly serviceName: string;
  };
}

/** One configured embedder: its name (`default` for the KBQL_EMBEDDER one) and its provider settings. */
export type NamedEmbedderConfig = Config['embedder'] & { readonly name: string };

/** Names of embedders in KBQL_EMBEDDERS. */
export const EMBEDDER_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;

const embedderEntry = z.strictObject({
  provider: z.enum(['hash', 'openai', 'ollama']),
  model: z.string().min(1).optional(),
  dimensions: z.number().int().min(8).max(8192).optional(),
  url: url.optional(),
  batchSize: z.number().int().min(1).max(4096).optional(),
});

/** KBQL_EMBEDDERS parsed into named embedder configs; problems are pushed, not thrown. */
function parseEmbedders(
  text: string | undefined,
  base: { timeoutMs: number; openaiUrl: string; ollamaUrl: string; apiKey: string | null },
  problems: string[],
): NamedEmbedderConfig[] {
  if (text === undefined) return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    problems.push('KBQL_EMBEDDERS: not valid JSON (expected {"<name>": {"provider": …}})');
    return [];
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    problems.push('KBQL_EMBEDDERS: expected a JSON object of name → embedder');
    return [];
  }
  const out: NamedEmbedderConfig[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (!EMBEDDER_NAME_PATTERN.test(name) || name === 'default') {
      problems.push(`KBQL_EMBEDDERS: the name "${name}" must match ${EMBEDDER_NAME_PATTERN.source} and not be "default"`);
      continue;
    }
    const parsed = embedderEntry.safeParse(value);
    if (!parsed.success) {
      problems.push(`KBQL_EMBEDDERS.${name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
      continue;
    }
    const e = parsed.data;
    if (e.provider === 'hash') {
      out.push({ name, kind: 'hash', dimensions: e.dimensions ?? 1024, batchSize: e.batchSize ?? 2048, timeoutMs: base.timeoutMs });
      continue;
    }
    if (!e.model || !e.dimensions) {
      problems.push(`KBQL_EMBEDDERS.${name}: "model" and "dimensions" are required for provider ${e.provider}`);
      continue;
    }
    out.push({
      name,
      kind: e.provider,
      model: e.model,
      dimensions: e.dimensions,
      batchSize: e.batchSize ?? (e.provider === 'openai' ? 256 : 64),
      timeoutMs: base.timeoutMs,
      baseUrl: e.url ?? (e.provider === 'openai' ? base.openaiUrl : base.ollamaUrl),
      apiKey: e.provider === 'openai' ? base.apiKey : null,
    });
  }
  return out;
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
    else {
      const shown = SECRET_VARIABLES.has(name) ? '(value not shown)' : JSON.stringify(value);
      problems.push(`${name}=${shown}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    }
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
  const embedders: NamedEmbedderConfig[] = [
    { ...embedder, name: 'default' },
    ...parseEmbedders(
      v.KBQL_EMBEDDERS,
      { timeoutMs, openaiUrl: v.OPENAI_BASE_URL!, ollamaUrl: v.OLLAMA_HOST!, apiKey: v.OPENAI_API_KEY ?? null },
      problems,
    ),
  ];
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
          bindTenants: v.KBQL_WEAVIATE_BIND_TENANTS ?? false,
        }
      : { kind: 'embedded', timeoutMs: v.KBQL_STORE_TIMEOUT_MS!, vectorIndex: v.KBQL_VECTOR_INDEX! };
  if (v.KBQL_WEAVIATE_BIND_TENANTS && !v.KBQL_WEAVIATE_MULTI_TENANT)
    problems.push('KBQL_WEAVIATE_BIND_TENANTS needs KBQL_WEAVIATE_MULTI_TENANT=true');

  const chunkSize = v.KBQL_DEFAULT_CHUNK_SIZE!;
  const chunkOverlap = v.KBQL_DEFAULT_CHUNK_OVERLAP!;
  if (chunkSize !== undefined && chunkOverlap !== undefined && chunkOverlap >= chunkSize) {
    problems.push(`KBQL_DEFAULT_CHUNK_OVERLAP (${chunkOverlap}) must be smaller than KBQL_DEFAULT_CHUNK_SIZE (${chunkSize})`);
  }
  for (const name of ['KBQL_DEFAULT_TOP_K', 'KBQL_ASK_TOP_K'] as const) {
    if ((v[name] ?? 0) > (v.KBQL_MAX_TOP_K ?? Infinity)) problems.push(`${name} must not exceed KBQL_MAX_TOP_K`);
  }
  const env_ = v.NODE_ENV!;
  const authMode = v.KBQL_AUTH_MODE ?? (env_ === 'production' ? 'jwt' : 'none');
  let jwt: Config['auth']['jwt'] = null;
  if (authMode === 'jwt') {
    const secret = v.KBQL_JWT_SECRET ?? null;
    const jwksUrl = v.KBQL_JWT_JWKS_URL ?? null;
    if ((secret === null) === (jwksUrl === null)) {
      problems.push(
        `give exactly one of KBQL_JWT_SECRET or KBQL_JWT_JWKS_URL when KBQL_AUTH_MODE=jwt${v.KBQL_AUTH_MODE ? '' : ' (the default with NODE_ENV=production; KBQL_AUTH_MODE=none turns authentication off)'}`,
      );
    }
    const algorithms = (v.KBQL_JWT_ALGORITHMS ?? (secret ? 'HS256' : 'RS256,ES256')).split(',');
    const symmetric = algorithms.filter((a) => a.startsWith('HS'));
    if (secret && symmetric.length !== algorithms.length)
      problems.push('KBQL_JWT_ALGORITHMS: only HS256/HS384/HS512 go with KBQL_JWT_SECRET');
    if (jwksUrl && symmetric.length > 0)
      problems.push('KBQL_JWT_ALGORITHMS: HS* algorithms never go with KBQL_JWT_JWKS_URL (a public key is not a secret)');
    jwt = {
      secret,
      jwksUrl,
      algorithms,
      issuer: v.KBQL_JWT_ISSUER ?? null,
      audience: v.KBQL_JWT_AUDIENCE ?? null,
      clockSkewSeconds: v.KBQL_JWT_CLOCK_SKEW_SECONDS!,
      roleClaim: v.KBQL_JWT_ROLE_CLAIM!,
      tenantClaim: v.KBQL_JWT_TENANT_CLAIM!,
    };
  }
  if (v.KBQL_JOB_QUEUE === 'redis' && !v.REDIS_URL) problems.push('KBQL_JOB_QUEUE=redis needs REDIS_URL');
  const redisUrl = redisUrlWithPassword(v.REDIS_URL, v.REDIS_PASSWORD, problems);
  if ((v.KBQL_MAX_EXTRACTED_BYTES ?? 0) < (v.KBQL_MAX_DOCUMENT_BYTES ?? 0)) {
    problems.push(
      `KBQL_MAX_EXTRACTED_BYTES (${v.KBQL_MAX_EXTRACTED_BYTES}) must not be smaller than KBQL_MAX_DOCUMENT_BYTES (${v.KBQL_MAX_DOCUMENT_BYTES}): a file's text could never reach the document limit`,
    );
  }
  const devExplicit = env.NODE_ENV === 'development' || env.NODE_ENV === 'test';
  const corsList = v.KBQL_CORS_ORIGINS?.split(',') ?? null;
  if (corsList?.includes('*') && !devExplicit)
    problems.push('KBQL_CORS_ORIGINS=* is refused outside NODE_ENV=development/test: list the origins');
  if (corsList?.includes('*') && v.KBQL_CORS_CREDENTIALS)
    problems.push('KBQL_CORS_CREDENTIALS=true needs listed origins, not KBQL_CORS_ORIGINS=* (browsers refuse credentials with *)');
  // NODE_ENV unset counts as production, as for introspection: rate limits off only when asked for development.
  const rateLimitReason =
    v.KBQL_RATE_LIMIT !== undefined
      ? `KBQL_RATE_LIMIT=${v.KBQL_RATE_LIMIT}`
      : env.NODE_ENV === 'test'
        ? 'NODE_ENV=test'
        : env.NODE_ENV === 'development' && authMode === 'none'
          ? 'NODE_ENV=development with authentication off (KBQL_AUTH_MODE=none); KBQL_RATE_LIMIT=true turns them on'
          : 'the default with authentication on or outside development';
  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze<Config>({
    env: v.NODE_ENV!,
    host: v.HOST!,
    port: v.PORT!,
    dataDir: path.resolve(v.KBQL_DATA_DIR!),
    store,
    embedder,
    embedders,
    reembed: { graceSeconds: v.KBQL_REEMBED_GRACE_SECONDS! },
    synthesizer,
    answers: {
      minRelevance: v.KBQL_ANSWER_MIN_RELEVANCE ?? null,
      minKeyCoverage: v.KBQL_ANSWER_MIN_KEY_COVERAGE ?? null,
      minAnswerability: v.KBQL_ANSWER_MIN_ANSWERABILITY ?? null,
      minSimilarity: v.KBQL_ABSTAIN_MIN_SIMILARITY ?? null,
      llmRetries: v.KBQL_LLM_RETRIES!,
      llmBreakerThreshold: v.KBQL_LLM_BREAKER_THRESHOLD!,
      llmBreakerHalfOpenMs: v.KBQL_LLM_BREAKER_HALF_OPEN_MS!,
    },
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
    auth: {
      mode: authMode,
      jwt,
      trustedProxies: v.KBQL_TRUSTED_PROXIES ? v.KBQL_TRUSTED_PROXIES.split(',') : [],
      tokenCacheSeconds: v.KBQL_JWT_CACHE_SECONDS!,
      apiKeyCacheSeconds: v.KBQL_API_KEY_CACHE_SECONDS!,
    },
    rateLimit: {
      enabled: v.KBQL_RATE_LIMIT ?? !(env.NODE_ENV === 'test' || (env.NODE_ENV === 'development' && authMode === 'none')),
      reason: rateLimitReason,
      maxOverride: v.KBQL_RATE_LIMIT_MAX ?? null,
      windowSecondsOverride: v.KBQL_RATE_LIMIT_WINDOW_SECONDS ?? null,
      timeoutMs: v.KBQL_RATE_LIMIT_TIMEOUT_MS!,
    },
    cors: {
      // Development defaults (Sandbox on Studio, local front-ends) only with NODE_ENV explicitly development or test.
      origins: corsList?.filter((o) => o !== '*') ?? (devExplicit ? ['https://studio.apollographql.com'] : []),
      anyOrigin: corsList?.includes('*') ?? false,
      localhost: corsList === null && devExplicit,
      credentials: v.KBQL_CORS_CREDENTIALS!,
    },
    maxWsConnectionsPerCaller: v.KBQL_MAX_WS_CONNECTIONS_PER_CALLER!,
    graphql: {
      // NODE_ENV unset counts as production here: introspection and suggestions only when asked for explicitly.
      introspection: env.NODE_ENV === 'development' || env.NODE_ENV === 'test',
      exposeInternalErrors: env.NODE_ENV === 'development',
      maxDepth: v.KBQL_MAX_QUERY_DEPTH!,
      maxCost: v.KBQL_MAX_QUERY_COST!,
      maxAliases: v.KBQL_MAX_ALIASES!,
      maxTokens: v.KBQL_MAX_QUERY_TOKENS!,
      resolverTimeoutMs: v.KBQL_RESOLVER_TIMEOUT_MS!,
    },
    jobs: {
      queue: v.KBQL_JOB_QUEUE === 'redis' || (v.KBQL_JOB_QUEUE !== 'memory' && redisUrl) ? 'redis' : 'memory',
      concurrency: v.KBQL_INGEST_CONCURRENCY!,
      lockMs: v.KBQL_JOB_LOCK_MS!,
      maxDocumentsPerJob: v.KBQL_MAX_DOCUMENTS_PER_JOB!,
      maxQueuedDocumentsPerTenant: v.KBQL_MAX_QUEUED_DOCUMENTS_PER_TENANT!,
      parseTimeoutMs: v.KBQL_PARSE_TIMEOUT_MS!,
      extraction: {
        maxExtractedBytes: v.KBQL_MAX_EXTRACTED_BYTES!,
        maxArchiveInflatedBytes: v.KBQL_MAX_ARCHIVE_INFLATED_BYTES!,
        maxArchiveEntries: v.KBQL_MAX_ARCHIVE_ENTRIES!,
        maxPdfPages: v.KBQL_MAX_PDF_PAGES!,
      },
      retentionDays: v.KBQL_JOB_RETENTION_DAYS!,
    },
    workers: {
      size: v.KBQL_WORKERS ?? availableParallelism(),
      maxQueue: v.KBQL_WORKER_QUEUE!,
      queueTimeoutMs: v.KBQL_WORKER_QUEUE_TIMEOUT_MS!,
      taskTimeoutMs: v.KBQL_CHUNK_TIMEOUT_MS!,
      heapMb: v.KBQL_WORKER_HEAP_MB!,
    },
    uploads: { maxBytes: v.KBQL_MAX_UPLOAD_BYTES!, ttlSeconds: v.KBQL_UPLOAD_TTL_SECONDS! },
    batching: { windowMs: v.KBQL_EMBEDDING_BATCH_WINDOW_MS! },
    cache: {
      redisUrl,
      prefix: v.KBQL_CACHE_PREFIX!,
      timeoutMs: v.KBQL_CACHE_TIMEOUT_MS!,
      embeddingTtlSeconds: v.KBQL_CACHE_EMBEDDING_TTL_SECONDS!,
      resultTtlSeconds: v.KBQL_CACHE_RESULT_TTL_SECONDS!,
      memoryMaxBytes: v.KBQL_CACHE_MEMORY_MB! * 1024 * 1024,
      documentCacheSize: v.KBQL_DOCUMENT_CACHE_SIZE!,
    },
    // Metrics are anonymous: in production they get a port of their own unless asked for on the main one.
    metrics: {
      port:
        v.KBQL_METRICS_PORT === 'main'
          ? null
          : (v.KBQL_METRICS_PORT ?? (v.NODE_ENV === 'production' ? DEFAULT_PRODUCTION_METRICS_PORT : null)),
    },
    tracing: {
      exporter:
        v.OTEL_TRACES_EXPORTER === 'none'
          ? null
          : (v.OTEL_TRACES_EXPORTER ?? (v.OTEL_EXPORTER_OTLP_ENDPOINT || v.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'otlp' : null)),
      serviceName: v.OTEL_SERVICE_NAME!,
    },
  });
}

/**
 * REDIS_URL with REDIS_PASSWORD percent-encoded into it: every Redis client kbql makes (cache, rate limits, API
 * keys, jobs/BullMQ, events) takes this one URL and decodes the password again, so it may hold any character.
 */
function redisUrlWithPassword(redisUrl: string | undefined, password: string | undefined, problems: string[]): string | null {
  if (!redisUrl) {
    if (password)
      problems.push('REDIS_PASSWORD is set but REDIS_URL is not: give the Redis address in REDIS_URL (e.g. redis://redis:6379)');
    return null;
  }
  if (!password) return redisUrl;
  const parsed = new URL(redisUrl);
  if (parsed.password) {
    problems.push('REDIS_PASSWORD is set and REDIS_URL holds a password too: leave the password out of REDIS_URL');
    return null;
  }
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
