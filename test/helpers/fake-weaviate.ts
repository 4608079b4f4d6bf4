import type { FilterValue } from 'weaviate-client';
import type {
  AggregateOptions,
  BatchResult,
  Bm25Options,
  CollectionSpec,
  ConnectFn,
  ConnectOptions,
  DeleteManyResult,
  FetchOptions,
  HybridOptions,
  NearVectorOptions,
  PropertySpec,
  WeaviateClientLike,
  WeaviateCollectionLike,
  WObject,
  WriteObject,
} from '../../src/adapters/weaviate/weaviate.client';
import { clientErrors, clientGrpcAttempts } from '../../src/adapters/weaviate/weaviate.client-internals';

/**
 * An in-memory Weaviate behind the store's narrow client interface, faithful where the store's correctness
 * depends on it (checked against Weaviate 1.35.3's server source and weaviate-client 3.12.1's code):
 * - typed schema: writes and filters on unknown properties or with values of the wrong type fail like Weaviate's;
 *   property names are unique regardless of case; creating a collection is atomic (the schema's Raft log), so of two
 *   racing creates of one name exactly one succeeds;
 * - filters: Equal / NotEqual (a deny list: objects without the property match) / range / Like (`*`, `?`, no
 *   escape, `.` not matching a line break) / ContainsAny|All|None (scalars too) / IsNull / And / Or / Not; `field`
 *   tokenization trims whitespace; int values are accepted on number properties;
 * - batch insert is an upsert reporting per-object errors (wrong vector length, injected errors) without throwing;
 *   REST insert refuses an existing id, but checks, then writes, with nothing in between (usecases/objects/add.go):
 *   {@link FakeWeaviate.pauseNextInsert} holds one insert between the two; batch delete deletes at most
 *   {@link FakeWeaviate.deleteCap} objects a call and reports every match in `matches` (only `successful` is capped);
 * - nearVector: exact cosine distance in float32; bm25: BM25F (k1 1.2, b 0.75, `en` stopwords dropped from the
 *   query, duplicate terms boosted), scores in float32; hybrid: Weaviate's relativeScoreFusion (candidates per side
 *   max(100, limit), alpha 0 / 1 skip a side, float32 arithmetic, its explainScore text);
 * - equal scores come back in descending id order (Weaviate's tie order is its own, not the port's);
 * - multi-tenancy: a multi-tenant collection refuses calls without an existing tenant, a single-tenant one calls with;
 * - failures take the shapes the real client gives them: REST calls throw its REST errors (`fetch failed` with an
 *   ECONNREFUSED cause, `WeaviateUnexpectedStatusCodeError`, `WeaviateUnauthenticatedError` for 401,
 *   `WeaviateInsufficientPermissionsError` for 403); gRPC calls throw its `WeaviateQueryError` (search, aggregate),
 *   `WeaviateBatchError` (batch insert) or `WeaviateDeleteManyError` (batch delete) around nice-grpc's
 *   "<path> <STATUS>: <details>" text, never an HTTP status; connecting wraps the cause in `WeaviateStartUpError`.
 *   The client retries UNAVAILABLE on search, aggregate and batch insert itself (its `retryOptions`): such a call
 *   counts 1 + `retryMaxAttempts` server requests ({@link FakeWeaviate.requests}).
 * Failure injection: {@link FakeWeaviate.fail} and {@link FakeWeaviate.failObjects} (per-object batch errors). Every
 * call is recorded in {@link FakeWeaviate.calls}.
 */

/**
 * `down`: connection refused (REST) / UNAVAILABLE (gRPC); `serverError`: HTTP 500 / INTERNAL; `rejected`: HTTP 422 /
 * UNKNOWN (what Weaviate's gRPC handlers answer for a request they refuse); `unauthenticated`: HTTP 401 /
 * UNAUTHENTICATED; `forbidden`: HTTP 403 / PERMISSION_DENIED; `hang`: never answers.
 */
export type FailureMode = 'hang' | 'down' | 'serverError' | 'rejected' | 'unauthenticated' | 'forbidden';

export interface FailureRule {
  /** Method name (`connect`, `isReady`, `insertMany`, `nearVector` …); all methods when omitted. */
  method?: string;
  /** Only calls on this Weaviate collection (substring match). */
  collection?: string;
  /** How many calls fail; then the rule is spent. @default Infinity */
  times?: number;
  mode: FailureMode;
}

export interface RecordedCall {
  method: string;
  collection?: string;
  tenant?: string;
  args: unknown[];
}

interface StoredObject {
  id: string;
  properties: Record<string, unknown>;
  vector?: number[];
}

interface FakeCollection {
  spec: CollectionSpec;
  properties: Map<string, PropertySpec>;
  /** Tenant name ('' when single-tenant) → objects by id. */
  shards: Map<string, Map<string, StoredObject>>;
  dimensions?: number;
}

/** The gRPC calls behind the interface's methods: the RPC, the client's error class, and whether it retries them. */
const GRPC_METHODS: Record<string, { rpc: string; error: 'query' | 'batch' | 'deleteMany'; clientRetries: boolean }> = {
  fetchObjects: { rpc: 'Search', error: 'query', clientRetries: true },
  nearVector: { rpc: 'Search', error: 'query', clientRetries: true },
  bm25: { rpc: 'Search', error: 'query', clientRetries: true },
  hybrid: { rpc: 'Search', error: 'query', clientRetries: true },
  aggregate: { rpc: 'Aggregate', error: 'query', clientRetries: true },
  insertMany: { rpc: 'BatchObjects', error: 'batch', clientRetries: true },
  deleteMany: { rpc: 'BatchDelete', error: 'deleteMany', clientRetries: false },
};

const GRPC_STATUS: Record<Exclude<FailureMode, 'hang'>, string> = {
  down: 'UNAVAILABLE',
  serverError: 'INTERNAL',
  rejected: 'UNKNOWN',
  unauthenticated: 'UNAUTHENTICATED',
  forbidden: 'PERMISSION_DENIED',
};

const DETAILS: Record<Exclude<FailureMode, 'hang'>, string> = {
  down: 'No connection established. Last error: connect ECONNREFUSED 10.0.0.5:50051',
  serverError: 'injected server error',
  rejected: 'injected validation error',
  unauthenticated: 'anonymous access not enabled, please provide an auth scheme such as OIDC',
  forbidden: "forbidden: user 'kbql' has insufficient permissions to read_data",
};

/** What Weaviate refused, before it takes the shape of the transport the call used. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** The error the real client throws for a REST answer with this status. */
export function restError(status: number, detail: string): Error {
  if (status === 401) return new clientErrors.WeaviateUnauthenticatedError(JSON.stringify({ code: 401, message: detail }));
  const body = JSON.stringify({ error: [{ message: detail }] });
  if (status === 403) return new clientErrors.WeaviateInsufficientPermissionsError(403, body);
  return new clientErrors.WeaviateUnexpectedStatusCodeError(status, body);
}

/** The error the real client throws when the gRPC call behind `method` ends with `status`. */
export function grpcError(method: string, status: string, detail: string): Error {
  const grpc = GRPC_METHODS[method];
  if (!grpc) throw new Error(`${method} is not a gRPC call`);
  const text = `/weaviate.v1.Weaviate/${grpc.rpc} ${status}: ${detail}`;
  if (grpc.error === 'batch') return new clientErrors.WeaviateBatchError(text);
  if (grpc.error === 'deleteMany') return new clientErrors.WeaviateDeleteManyError(text);
  return new clientErrors.WeaviateQueryError(text, 'gRPC');
}

const HYBRID_CANDIDATES = 100;
const QUERY_MAXIMUM_RESULTS = 10_000;
const STOPWORDS = new Set(
  'a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with'.split(
    ' ',
  ),
);

export class FakeWeaviate implements WeaviateClientLike {
  /** Objects one deleteMany call removes at most (Weaviate: QUERY_MAXIMUM_RESULTS). */
  deleteCap = 3;
  /** The description of each collection (a claim's holder lives there). */
  private readonly descriptions = new Map<string, string>();
  private readonly requestCounts = new Map<string, number>();
  private insertPause: { reached: () => void; resume: Promise<void> } | null = null;
  ready = true;
  closed = false;
  readonly calls: RecordedCall[] = [];
  readonly connects: ConnectOptions[] = [];
  private rules: FailureRule[] = [];
  private objectFailure: ((collection: string, object: WriteObject) => string | null) | null = null;
  private readonly collections = new Map<string, FakeCollection>();

  /** A connect function handing out this fake (after failure rules for `connect`). */
  readonly connect: ConnectFn = async (options) => {
    this.connects.push(options);
    await this.enter('connect', []);
    this.closed = false;
    return this;
  };

  /** Adds a failure rule (checked in order). */
  fail(rule: FailureRule): this {
    this.rules.push({ ...rule });
    return this;
  }

  clearFailures(): void {
    this.rules = [];
  }

  /** Per-object batch errors: return a message to reject that object. */
  failObjects(fn: ((collection: string, object: WriteObject) => string | null) | null): void {
    this.objectFailure = fn;
  }

  /**
   * Holds the next REST insert between Weaviate's "id exists?" check and its write, as a slow request or a busy
   * replica would. `reached` settles when an insert is held; `resume()` lets it write (overwriting).
   */
  pauseNextInsert(): { reached: Promise<void>; resume: () => void } {
    let reached!: () => void;
    let resume!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const resumeP = new Promise<void>((r) => (resume = r));
    this.insertPause = { reached, resume: resumeP };
    return { reached: reachedP, resume };
  }

  /** Requests that reached Weaviate for one method, the client's own retries included. */
  requests(method: string): number {
    return this.requestCounts.get(method) ?? 0;
  }

  /** Replaces a collection's description (as a crashed or older claimer may have left it). */
  setDescription(name: string, description: string): void {
    if (!this.collections.has(name)) throw new Error(`no collection ${name}`);
    this.descriptions.set(name, description);
  }

  /** Calls of one method recorded so far. */
  count(method: string, collection?: string): number {
    return this.calls.filter((c) => c.method === method && (collection === undefined || c.collection?.includes(collection))).length;
  }

  collectionNames(): string[] {
    return [...this.collections.keys()];
  }

  /** The stored objects of one collection (one tenant of it). */
  objects(collection: string, tenant = ''): StoredObject[] {
    return [...(this.collections.get(collection)?.shards.get(tenant)?.values() ?? [])];
  }

  specOf(collection: string): CollectionSpec | undefined {
    return this.collections.get(collection)?.spec;
  }

  // ---------------------------------------------------------------- WeaviateClientLike

  async isReady(): Promise<boolean> {
    await this.enter('isReady', []);
    return this.ready;
  }

  async close(): Promise<void> {
    this.calls.push({ method: 'close', args: [] });
    this.closed = true;
  }

  async collectionExists(name: string): Promise<boolean> {
    await this.enter('collectionExists', [name], name);
    return this.collections.has(name);
  }

  async createCollection(spec: CollectionSpec): Promise<void> {
    return this.rest(async () => {
      await this.enter('createCollection', [spec], spec.name);
      if (!/^[A-Z][_0-9A-Za-z]*$/.test(spec.name)) throw new Refusal(422, `'${spec.name}' is not a valid class name`);
      if (this.collections.has(spec.name)) throw new Refusal(422, `class name "${spec.name}" already exists`);
      const properties = new Map<string, PropertySpec>();
      for (const p of spec.properties) {
        checkPropertyName(p.name);
        if ([...properties.keys()].some((n) => n.toLowerCase() === p.name.toLowerCase())) {
          throw new Refusal(422, `class "${spec.name}": conflict for property "${p.name}": already in use or provided multiple times`);
        }
        properties.set(p.name, { ...p });
      }
      const shards = new Map<string, Map<string, StoredObject>>();
      if (!spec.multiTenant) shards.set('', new Map());
      this.collections.set(spec.name, { spec: structuredClone(spec), properties, shards });
      this.descriptions.set(spec.name, spec.description);
    });
  }

  async deleteCollection(name: string): Promise<void> {
    return this.rest(async () => {
      await this.enter('deleteCollection', [name], name);
      this.collections.delete(name);
      this.descriptions.delete(name);
    });
  }

  async collectionDescription(name: string): Promise<string | null> {
    await this.enter('collectionDescription', [name], name);
    return this.collections.has(name) ? (this.descriptions.get(name) ?? '') : null;
  }

  async listProperties(name: string): Promise<PropertySpec[]> {
    return this.rest(async () => {
      await this.enter('listProperties', [name], name);
      return [...this.require(name).properties.values()].map((p) => ({ ...p }));
    });
  }

  async addProperty(name: string, property: PropertySpec): Promise<void> {
    return this.rest(async () => {
      await this.enter('addProperty', [name, property], name);
      const col = this.require(name);
      checkPropertyName(property.name);
      // Weaviate compares property names case-insensitively.
      if ([...col.properties.keys()].some((n) => n.toLowerCase() === property.name.toLowerCase())) {
        throw new Refusal(422, `class "${name}": conflict for property "${property.name}": already in use or provided multiple times`);
      }
      col.properties.set(property.name, { ...property });
    });
  }

  async ensureTenant(name: string, tenant: string): Promise<void> {
    return this.rest(async () => {
      await this.enter('ensureTenant', [name, tenant], name, tenant);
      const col = this.require(name);
      if (!col.spec.multiTenant) throw new Refusal(422, `multi-tenancy is not enabled for class "${name}"`);
      if (!col.shards.has(tenant)) col.shards.set(tenant, new Map());
    });
  }

  collection(name: string, tenant?: string): WeaviateCollectionLike {
    const shard = (): { col: FakeCollection; objects: Map<string, StoredObject> } => {
      const col = this.require(name);
      if (col.spec.multiTenant && tenant === undefined) {
        throw new Refusal(422, `class ${name} has multi-tenancy enabled, but request was without tenant`);
      }
      if (!col.spec.multiTenant && tenant !== undefined) {
        throw new Refusal(422, `class ${name} has multi-tenancy disabled, but request was with tenant`);
      }
      const objects = col.shards.get(tenant ?? '');
      if (!objects) throw new Refusal(422, `tenant not found: "${tenant}"`);
      return { col, objects };
    };
    const enter = (method: string, args: unknown[]) => this.enter(method, args, name, tenant);
    const handle: WeaviateCollectionLike = {
      insert: async (object) => {
        await enter('insert', [object]);
        const { col, objects } = shard();
        if (objects.has(object.id)) throw new Refusal(422, `id '${object.id}' already exists`);
        const error = validateObject(col, object);
        if (error) throw new Refusal(422, error);
        // Weaviate checks, then writes (PutObject is an upsert): nothing stops another insert in between.
        const pause = this.insertPause;
        this.insertPause = null;
        if (pause) {
          pause.reached();
          await pause.resume;
        } else {
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        shard().objects.set(object.id, store(object));
      },
      insertMany: async (batch) => {
        await enter('insertMany', [batch]);
        const { col, objects } = shard();
        const errors: BatchResult['errors'] = {};
        batch.forEach((object, index) => {
          const error = this.objectFailure?.(name, object) ?? validateObject(col, object);
          if (error) {
            errors[index] = { message: error };
            return;
          }
          if (object.vector && col.dimensions === undefined) col.dimensions = object.vector.length;
          objects.set(object.id, store(object));
        });
        return { errors };
      },
      deleteMany: async (filters) => {
        await enter('deleteMany', [filters]);
        const { col, objects } = shard();
        const matched = [...objects.values()].filter((o) => evaluate(filters, o, col)).sort(byId);
        const deleted = matched.slice(0, this.deleteCap);
        for (const o of deleted) objects.delete(o.id);
        return { matches: matched.length, successful: deleted.length, failed: 0 } satisfies DeleteManyResult;
      },
      fetchObjects: async (options: FetchOptions) => {
        await enter('fetchObjects', [options]);
        const { col, objects } = shard();
        checkWindow(options.offset ?? 0, options.limit);
        let list = [...objects.values()].filter((o) => !options.filters || evaluate(options.filters, o, col));
        list.sort(byId);
        if (options.sort && options.sort.length > 0) {
          for (const s of options.sort)
            if (!col.properties.has(s.property)) throw new Refusal(422, `no such prop with name '${s.property}' found in class '${name}'`);
          list.sort((a, b) => {
            for (const s of options.sort!) {
              const order = compareValues(a.properties[s.property], b.properties[s.property]);
              if (order !== 0) return s.ascending ? order : -order;
            }
            return 0;
          });
        }
        list = list.slice(options.offset ?? 0, (options.offset ?? 0) + options.limit);
        return list.map((o) => toWObject(o, options.returnProperties, options.includeVector));
      },
      nearVector: async (vector, options: NearVectorOptions) => {
        await enter('nearVector', [vector, options]);
        const { col, objects } = shard();
        checkWindow(options.offset, options.limit);
        return vectorSearch(col, objects, vector, options.filters, options.offset + options.limit)
          .slice(options.offset)
          .map((r) => ({ ...toWObject(r.object, options.returnProperties), metadata: { distance: r.distance } }));
      },
      bm25: async (query, options: Bm25Options) => {
        await enter('bm25', [query, options]);
        const { col, objects } = shard();
        checkWindow(options.offset, options.limit);
        return keywordSearch(col, objects, query, options.queryProperties, options.filters, options.offset + options.limit)
          .slice(options.offset)
          .map((r) => ({ ...toWObject(r.object, options.returnProperties), metadata: { score: r.score } }));
      },
      hybrid: async (query, options: HybridOptions) => {
        await enter('hybrid', [query, options]);
        const { col, objects } = shard();
        checkWindow(options.offset, options.limit);
        if (options.fusionType !== 'RelativeScore') throw new Error('the fake implements relativeScoreFusion only');
        const candidates = Math.max(HYBRID_CANDIDATES, options.limit);
        type Side = { name: string; weight: number; results: { object: StoredObject; value: number }[] };
        const sides: Side[] = [];
        if (options.alpha > 0) {
          const results = vectorSearch(col, objects, options.vector, options.filters, candidates).map((r) => ({
            object: r.object,
            value: Math.fround(1 - r.distance),
          }));
          sides.push({ name: 'vector,hybridVector', weight: options.alpha, results });
        }
        if (1 - options.alpha > 0) {
          const results = keywordSearch(col, objects, query, options.queryProperties, options.filters, candidates).map((r) => ({
            object: r.object,
            value: r.score,
          }));
          sides.push({ name: 'keyword,bm25', weight: 1 - options.alpha, results });
        }
        const fused = new Map<string, { object: StoredObject; score: number; secondary: number; explain: string }>();
        for (const side of sides) {
          const values = side.results.map((r) => r.value);
          const max = Math.max(...values);
          const min = Math.min(...values);
          const weight = Math.fround(side.weight);
          for (const r of side.results) {
            let score = weight;
            if (max !== min) score = Math.fround(score * Math.fround(Math.fround(r.value - min) / Math.fround(max - min)));
            let line = `Hybrid (Result Set ${side.name}) Document ${r.object.id}: original score ${goFloat(r.value)}, normalized score: ${goFloat(score)}`;
            const previous = fused.get(r.object.id);
            if (previous) {
              score = Math.fround(score + previous.score);
              line += ` - ${previous.explain}`;
            }
            fused.set(r.object.id, { object: r.object, score, secondary: r.value, explain: `\n${line}` });
          }
        }
        const sorted = [...fused.values()].sort((a, b) => {
          const d = b.score - a.score;
          if (d * d >= 1e-14) return d;
          const d2 = b.secondary - a.secondary;
          if (d2 * d2 >= 1e-14) return d2;
          return a.object.id > b.object.id ? -1 : a.object.id < b.object.id ? 1 : 0;
        });
        return sorted
          .slice(0, options.offset + options.limit)
          .slice(options.offset)
          .map((r) => ({
            ...toWObject(r.object, options.returnProperties),
            metadata: { score: r.score, explainScore: r.explain },
          }));
      },
      aggregate: async (options: AggregateOptions) => {
        await enter('aggregate', [options]);
        const { col, objects } = shard();
        const matched = [...objects.values()].filter((o) => !options.filters || evaluate(options.filters, o, col));
        let sum: number | null = null;
        if (options.sumOf !== undefined) {
          if (col.properties.get(options.sumOf)?.dataType !== 'int') throw new Refusal(422, `cannot sum ${options.sumOf}`);
          sum = matched.reduce(
            (total, o) => total + (typeof o.properties[options.sumOf!] === 'number' ? (o.properties[options.sumOf!] as number) : 0),
            0,
          );
        }
        return { totalCount: matched.length, sum };
      },
    };
    // A refusal takes the shape of the call's transport (REST insert; gRPC for the rest).
    for (const [method, fn] of Object.entries(handle) as [keyof WeaviateCollectionLike, (...a: unknown[]) => Promise<unknown>][]) {
      (handle as unknown as Record<string, unknown>)[method] = (...args: unknown[]) =>
        fn(...args).catch((error: unknown) => {
          if (!(error instanceof Refusal)) throw error;
          throw GRPC_METHODS[method] ? grpcError(method, 'UNKNOWN', error.detail) : restError(error.status, error.detail);
        });
    }
    return handle;
  }

  // ---------------------------------------------------------------- internals

  /** Runs a REST method: a refusal becomes the client's REST error. */
  private async rest<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof Refusal) throw restError(error.status, error.detail);
      throw error;
    }
  }

  private require(name: string): FakeCollection {
    const col = this.collections.get(name);
    if (!col) throw new Refusal(404, `class "${name}" not found`);
    return col;
  }

  /** Records a call and its server request(s), then applies the first matching failure rule. */
  private async enter(method: string, args: unknown[], collection?: string, tenant?: string): Promise<void> {
    this.calls.push({ method, collection, tenant, args });
    const grpc = GRPC_METHODS[method];
    const rule = this.rules.find(
      (r) => (r.method === undefined || r.method === method) && (r.collection === undefined || (collection ?? '').includes(r.collection)),
    );
    const retried = rule?.mode === 'down' && grpc?.clientRetries === true ? clientGrpcAttempts() : 1;
    this.requestCounts.set(method, this.requests(method) + retried);
    if (!rule) return;
    if (rule.times !== undefined && --rule.times <= 0) this.rules.splice(this.rules.indexOf(rule), 1);
    if (rule.mode === 'hang') return new Promise<void>(() => undefined);
    if (method === 'connect') {
      // connectToCustom wraps whatever failed (its REST meta call, the gRPC health check) in WeaviateStartUpError.
      const cause = rule.mode === 'down' ? new TypeError('fetch failed') : restError(restStatus(rule.mode), DETAILS[rule.mode]);
      throw new clientErrors.WeaviateStartUpError(`Weaviate failed to startup with message: ${cause.message}`);
    }
    if (grpc) throw grpcError(method, GRPC_STATUS[rule.mode], DETAILS[rule.mode]);
    if (rule.mode === 'down') {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:8080'), { code: 'ECONNREFUSED' }),
      });
    }
    throw restError(restStatus(rule.mode), DETAILS[rule.mode]);
  }
}

function restStatus(mode: Exclude<FailureMode, 'hang' | 'down'>): number {
  return { serverError: 500, rejected: 422, unauthenticated: 401, forbidden: 403 }[mode];
}

/** A fresh fake and its connect function. */
export function createFakeWeaviate(): FakeWeaviate {
  return new FakeWeaviate();
}

// ------------------------------------------------------------------ schema and values

function checkPropertyName(name: string): void {
  if (!/^[_A-Za-z][_0-9A-Za-z]{0,229}$/.test(name)) throw new Refusal(422, `'${name}' is not a valid property name`);
  // Weaviate lower-cases the first letter; a name that does not survive that would be read back under another name.
  if (name[0] !== name[0]!.toLowerCase()) throw new Error(`the fake expects property names that start in lower case, got ${name}`);
}

function checkWindow(offset: number, limit: number): void {
  if (!Number.isInteger(limit) || limit <= 0) throw new Error(`the fake expects a positive limit, got ${limit}`);
  if (offset + limit > QUERY_MAXIMUM_RESULTS) throw new Refusal(422, 'query maximum results exceeded');
}

function store(object: WriteObject): StoredObject {
  return {
    id: object.id,
    properties: structuredClone(object.properties),
    vector: object.vector ? [...object.vector].map(Math.fround) : undefined,
  };
}

function validateObject(col: FakeCollection, object: WriteObject): string | null {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(object.id)) return `invalid uuid '${object.id}'`;
  for (const [name, value] of Object.entries(object.properties)) {
    if (value === undefined || value === null) continue;
    const spec = col.properties.get(name);
    if (!spec) return `no such prop with name '${name}' found in class '${col.spec.name}' in the schema`;
    if (!valueFits(spec.dataType, value)) return `invalid ${spec.dataType} property '${name}' on class '${col.spec.name}'`;
  }
  if (object.vector) {
    if (col.spec.vectors === 'none') return `class '${col.spec.name}' has no vector index for kbql vectors`;
    if (col.dimensions !== undefined && object.vector.length !== col.dimensions) {
      return `new node has a vector with length ${object.vector.length}. Existing nodes have vectors with length ${col.dimensions}`;
    }
  }
  return null;
}

function valueFits(dataType: PropertySpec['dataType'], value: unknown): boolean {
  const scalar = (t: string, v: unknown): boolean =>
    t === 'text'
      ? typeof v === 'string'
      : t === 'int'
        ? Number.isSafeInteger(v)
        : t === 'number'
          ? typeof v === 'number' && Number.isFinite(v)
          : typeof v === 'boolean';
  if (dataType.endsWith('[]')) return Array.isArray(value) && value.every((v) => scalar(dataType.slice(0, -2), v));
  return scalar(dataType, value);
}

function toWObject(object: StoredObject, returnProperties?: string[], includeVector?: boolean): WObject {
  const properties: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(object.properties)) {
    if (!returnProperties || returnProperties.includes(k)) properties[k] = structuredClone(v);
  }
  return { uuid: object.id, properties, vector: includeVector && object.vector ? [...object.vector] : undefined };
}

const byId = (a: StoredObject, b: StoredObject): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function compareValues(a: unknown, b: unknown): number {
  if (a === undefined || a === null) return b === undefined || b === null ? 0 : -1;
  if (b === undefined || b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- sort keys are scalar properties (text, number, date, boolean).
  return Buffer.compare(Buffer.from(String(a), 'utf8'), Buffer.from(String(b), 'utf8'));
}

// ------------------------------------------------------------------ filters, Weaviate's semantics

function evaluate(filter: FilterValue, object: StoredObject, col: FakeCollection): boolean {
  switch (filter.operator) {
    case 'And':
      return (filter.filters ?? []).every((f) => evaluate(f, object, col));
    case 'Or':
      return (filter.filters ?? []).some((f) => evaluate(f, object, col));
    case 'Not':
      if ((filter.filters ?? []).length !== 1) throw new Refusal(422, 'Not takes one operand');
      return !evaluate(filter.filters![0]!, object, col);
    default:
      break;
  }
  const property = filter.target?.property;
  if (!property) throw new Refusal(422, 'filter without a property target');
  const value: unknown = filter.value;
  if (property === '_id') {
    switch (filter.operator) {
      case 'Equal':
        return object.id === value;
      case 'NotEqual':
        return object.id !== value;
      case 'ContainsAny':
        return Array.isArray(value) && value.includes(object.id);
      default:
        throw new Refusal(422, `operator ${filter.operator} is not supported on _id`);
    }
  }
  const spec = col.properties.get(property);
  if (!spec) throw new Refusal(422, `no such prop with name '${property}' found in class '${col.spec.name}' in the schema`);
  const base = spec.dataType.replace('[]', '') as 'text' | 'int' | 'number' | 'boolean';
  const tokenize = (v: string): string => (spec.tokenization === 'word' ? v.toLowerCase() : v.trim());

  if (filter.operator === 'IsNull') {
    if (typeof value !== 'boolean') throw new Refusal(422, 'IsNull takes a boolean');
    const stored = object.properties[property];
    return (stored === undefined || stored === null) === value;
  }
  const isContains = filter.operator === 'ContainsAny' || filter.operator === 'ContainsAll' || filter.operator === 'ContainsNone';
  const values = isContains ? (Array.isArray(value) ? value : null) : [value];
  if (!values || values.length === 0) throw new Refusal(422, `${filter.operator} takes a non-empty array`);
  for (const v of values) checkFilterValue(base, v, property);
  if (filter.operator === 'Like' && base !== 'text') throw new Refusal(422, 'Like works on text properties only');
  if (
    spec.tokenization === 'word' &&
    filter.operator !== 'Like' &&
    !isContains &&
    filter.operator !== 'Equal' &&
    filter.operator !== 'NotEqual'
  ) {
    throw new Refusal(422, 'the fake only supports field-tokenized text in range filters');
  }

  const raw = object.properties[property];
  const stored: unknown[] = raw === undefined || raw === null ? [] : Array.isArray(raw) ? raw : [raw];
  const same = (s: unknown, v: unknown): boolean => (base === 'text' ? tokenize(String(s)) === tokenize(String(v)) : s === v);
  const order = (s: unknown, v: unknown): number =>
    base === 'text' ? compareValues(tokenize(String(s)), tokenize(String(v))) : (s as number) - (v as number);
  const v0 = values[0];
  switch (filter.operator) {
    case 'Equal':
      return stored.some((s) => same(s, v0));
    case 'NotEqual':
      return !stored.some((s) => same(s, v0));
    case 'GreaterThan':
      return stored.some((s) => order(s, v0) > 0);
    case 'GreaterThanEqual':
      return stored.some((s) => order(s, v0) >= 0);
    case 'LessThan':
      return stored.some((s) => order(s, v0) < 0);
    case 'LessThanEqual':
      return stored.some((s) => order(s, v0) <= 0);
    case 'Like': {
      const pattern = likeRegExp(tokenize(String(v0)));
      return stored.some((s) => pattern.test(tokenize(String(s))));
    }
    case 'ContainsAny':
      return values.some((v) => stored.some((s) => same(s, v)));
    case 'ContainsAll':
      return values.every((v) => stored.some((s) => same(s, v)));
    case 'ContainsNone':
      return !values.some((v) => stored.some((s) => same(s, v)));
    default:
      throw new Refusal(422, `operator ${filter.operator} is not supported by the fake`);
  }
}

function checkFilterValue(base: 'text' | 'int' | 'number' | 'boolean', value: unknown, property: string): void {
  const ok =
    base === 'text'
      ? typeof value === 'string'
      : base === 'boolean'
        ? typeof value === 'boolean'
        : base === 'int'
          ? Number.isSafeInteger(value)
          : typeof value === 'number' && Number.isFinite(value); // Weaviate turns valueInt into a float on number
  if (!ok) throw new Refusal(422, `data type filter cannot use ${typeof value} on property '${property}' of type ${base}`);
}

/** Weaviate's Like: regexp-quote everything, then `?` → `.` and `*` → `.*`, anchored; `.` does not match `\n`. */
function likeRegExp(pattern: string): RegExp {
  const quoted = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '\u0000' : c === '?' ? '\u0001' : `\\${c}`));
  return new RegExp(`^${quoted.replace(/\u0000/g, '.*').replace(/\u0001/g, '.')}$`, 'u');
}

// ------------------------------------------------------------------ ranking

function vectorSearch(
  col: FakeCollection,
  objects: Map<string, StoredObject>,
  query: number[],
  filters: FilterValue | undefined,
  limit: number,
): { object: StoredObject; distance: number }[] {
  if (col.spec.vectors === 'none') throw new Refusal(422, 'no vector index');
  if (col.dimensions !== undefined && query.length !== col.dimensions) {
    throw new Refusal(422, `vector search: vector lengths don't match: ${query.length} vs ${col.dimensions}`);
  }
  const q = query.map(Math.fround);
  const qNorm = Math.hypot(...q);
  return [...objects.values()]
    .filter((o) => o.vector && (!filters || evaluate(filters, o, col)))
    .map((o) => {
      let dot = 0;
      for (let i = 0; i < q.length; i++) dot += q[i]! * o.vector![i]!;
      const denominator = qNorm * Math.hypot(...o.vector!);
      return { object: o, distance: Math.fround(1 - (denominator > 0 ? dot / denominator : 0)) };
    })
    .sort((a, b) => a.distance - b.distance || (a.object.id > b.object.id ? -1 : a.object.id < b.object.id ? 1 : 0))
    .slice(0, limit);
}

const words = (text: string): string[] => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

function keywordSearch(
  col: FakeCollection,
  objects: Map<string, StoredObject>,
  query: string,
  queryProperties: string[],
  filters: FilterValue | undefined,
  limit: number,
): { object: StoredObject; score: number }[] {
  for (const p of queryProperties) {
    const spec = col.properties.get(p);
    if (!spec || !spec.indexSearchable) throw new Refusal(422, `property '${p}' is not searchable`);
  }
  const terms = new Map<string, number>();
  for (const t of words(query)) if (!STOPWORDS.has(t)) terms.set(t, (terms.get(t) ?? 0) + 1);
  if (terms.size === 0) return [];
  const all = [...objects.values()];
  const docs = all.map((o) => ({
    object: o,
    tokens: queryProperties.flatMap((p) => (typeof o.properties[p] === 'string' ? words(o.properties[p]) : [])),
  }));
  const n = docs.length;
  const avgLength = docs.reduce((sum, d) => sum + d.tokens.length, 0) / Math.max(1, n);
  const k1 = col.spec.invertedIndex.bm25K1;
  const b = col.spec.invertedIndex.bm25B;
  const idf = new Map<string, number>();
  for (const term of terms.keys()) {
    const containing = docs.filter((d) => d.tokens.includes(term)).length;
    idf.set(term, Math.log(1 + (n - containing + 0.5) / (containing + 0.5)));
  }
  return docs
    .filter((d) => !filters || evaluate(filters, d.object, col))
    .map((d) => {
      let score = 0;
      for (const [term, boost] of terms) {
        const tf = d.tokens.filter((t) => t === term).length;
        if (tf === 0) continue;
        score += boost * idf.get(term)! * ((tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * d.tokens.length) / avgLength)));
      }
      return { object: d.object, score: Math.fround(score) };
    })
    .filter((r) => r.score > 0)
    .sort((a, b2) => b2.score - a.score || (a.object.id > b2.object.id ? -1 : a.object.id < b2.object.id ? 1 : 0))
    .slice(0, limit);
}

/** Go's `%v` of a float32: the shortest decimal that reads back as the same float32. */
function goFloat(value: number): string {
  for (let digits = 1; digits <= 9; digits++) {
    const text = value.toPrecision(digits);
    if (Math.fround(Number(text)) === value) return String(Number(text));
  }
  return String(value);
}
