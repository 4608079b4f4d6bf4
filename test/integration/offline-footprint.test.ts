import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OpenAIEmbedder } from '../../src/adapters/embedders/openai.embedder';
import { createTestApp } from '../helpers/test-app';

/** Modules whose loading builds LlamaIndex's global settings and a second cl100k tokenizer (~70–80 MB of heap). */
const PROVIDER_MODULES = /node_modules\/@llamaindex\/(openai|ollama|core\/global)\//;
const loadedProviderModules = () => Object.keys(require.cache).filter((file) => PROVIDER_MODULES.test(file));

describe('the offline defaults keep the event loop thread light', () => {
  it('an app on the embedded defaults, having answered a search, never loaded an LLM provider package', async () => {
    const t = await createTestApp();
    try {
      await t.execute('mutation { createCollection(input: { name: "notes" }) { id } }');
      await t.execute(
        'mutation { ingestDocuments(collection: "notes", documents: [{ id: "a", content: "The coffee machine is cleaned every Friday." }]) { indexed } }',
      );
      const result = await t.execute<{ search: { hits: unknown[] } }>(
        '{ search(collection: "notes", query: "coffee machine", topK: 3) { hits { score } } }',
      );
      assert.equal(result.errors, undefined);
      assert.equal(result.data?.search.hits.length, 1);
      assert.deepEqual(loadedProviderModules(), []);
    } finally {
      await t.close();
    }
    // A provider that is configured loads them when it is built: the laziness is not a missing feature.
    new OpenAIEmbedder({ model: 'text-embedding-3-small', dimensions: 8, baseURL: 'http://127.0.0.1:9/v1' });
    assert.ok(loadedProviderModules().length > 0);
  });

  it('every worker entry lowers its thread priority before it loads anything else', () => {
    for (const file of ['../../src/adapters/workers/ingest.worker.js', '../../src/adapters/embedded/ann-builder.worker.js']) {
      const compiled = readFileSync(join(__dirname, file), 'utf8');
      const firstRequire = /require\("([^"]+)"\)/.exec(compiled)?.[1];
      assert.match(firstRequire ?? '', /lowered-priority$/, `${file} first loads ${firstRequire}`);
    }
  });
});
