import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';
import { connectWeaviate } from '../../src/adapters/weaviate/weaviate.client';
import { WeaviateKnowledgeStore } from '../../src/adapters/weaviate/weaviate.knowledge-store';
import { defineKnowledgeStoreContractSuite } from '../contract/knowledge-store.contract';
import { FakeWeaviate } from '../helpers/fake-weaviate';

/**
 * The KnowledgeStore contract on WeaviateKnowledgeStore: always over the in-memory fake of the client boundary,
 * and against a real Weaviate (REST + gRPC) when WEAVIATE_URL is set (CI: .github/workflows/weaviate.yml).
 */

defineKnowledgeStoreContractSuite('weaviate (in-memory fake)', async () => {
  const fake = new FakeWeaviate();
  const store = new WeaviateKnowledgeStore(
    { url: 'http://weaviate.fake:8080', timeoutMs: 2_000, initTimeoutMs: 2_000, retries: 0 },
    { connect: fake.connect },
  );
  return { store, cleanup: () => store.close() };
});

defineKnowledgeStoreContractSuite('weaviate (in-memory fake, multi-tenant view)', async () => {
  const fake = new FakeWeaviate();
  const root = new WeaviateKnowledgeStore(
    { url: 'http://weaviate.fake:8080', multiTenant: true, timeoutMs: 2_000, initTimeoutMs: 2_000, retries: 0 },
    { connect: fake.connect },
  );
  return { store: root.withTenant('tenant-a'), cleanup: () => root.close() };
});

const url = process.env['WEAVIATE_URL'];
/**
 * The real-server run takes kbql's own tenancy variables, so CI runs it three ways (.github/workflows/weaviate.yml):
 * single-tenant, KBQL_WEAVIATE_MULTI_TENANT=true (with KBQL_WEAVIATE_TENANT), and with KBQL_WEAVIATE_BIND_TENANTS=true.
 */
const multiTenant = process.env['KBQL_WEAVIATE_MULTI_TENANT'] === 'true';
const bindTenants = process.env['KBQL_WEAVIATE_BIND_TENANTS'] === 'true';
const tenancy = multiTenant
  ? { multiTenant, tenant: process.env['KBQL_WEAVIATE_TENANT'] || 'kbql', bindTenants }
  : { multiTenant: false, bindTenants: false };
const mode = bindTenants ? 'multi-tenant, bound tenants' : multiTenant ? 'multi-tenant' : 'single-tenant';
if (url) {
  defineKnowledgeStoreContractSuite(`weaviate (real server, ${mode})`, async () => {
    // A fresh prefix per test keeps runs apart; cleanup drops what the test created.
    const prefix = `KbqlTest${randomUUID().replace(/-/g, '').slice(0, 10)}`;
    const grpcPort = process.env['WEAVIATE_GRPC_PORT'] ? Number(process.env['WEAVIATE_GRPC_PORT']) : 50051;
    const apiKey = process.env['WEAVIATE_API_KEY'] || undefined;
    const store = new WeaviateKnowledgeStore({
      url,
      grpcPort,
      apiKey,
      collectionPrefix: prefix,
      timeoutMs: 20_000,
      initTimeoutMs: 20_000,
      ...tenancy,
    });
    return {
      store,
      cleanup: async () => {
        await store.close();
        // The contract deletes the collections it created; the two base collections of this prefix go here.
        const parsed = new URL(url);
        const secure = parsed.protocol === 'https:';
        const client = await connectWeaviate({
          httpHost: parsed.hostname,
          httpPort: parsed.port ? Number(parsed.port) : secure ? 443 : 80,
          httpSecure: secure,
          httpPath: '',
          grpcHost: parsed.hostname,
          grpcPort,
          grpcSecure: secure,
          apiKey,
          timeouts: { initMs: 20_000, queryMs: 20_000, insertMs: 20_000 },
        });
        try {
          await client.deleteCollection(`${prefix}Registry`);
          await client.deleteCollection(`${prefix}Documents`);
        } finally {
          await client.close();
        }
      },
    };
  });
} else {
  describe(
    'KnowledgeStore contract: weaviate (real server)',
    {
      skip: 'WEAVIATE_URL not set: start Weaviate (see .github/workflows/weaviate.yml) and set WEAVIATE_URL=http://localhost:8080 to run it',
    },
    () => {},
  );
}
