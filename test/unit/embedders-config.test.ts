import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('KBQL_EMBEDDERS', () => {
  it('keeps the single-embedder variables as the embedder named default', () => {
    const config = loadConfig({ KBQL_EMBEDDING_DIMENSIONS: '512' });
    assert.deepEqual(
      config.embedders.map((e) => [e.name, e.kind, e.dimensions]),
      [['default', 'hash', 512]],
    );
    assert.equal(config.reembed.graceSeconds, 86_400);
  });

  it('adds named embedders with provider defaults', () => {
    const config = loadConfig({
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
      OPENAI_API_KEY: 'k',
      KBQL_EMBEDDERS: JSON.stringify({
        small: { provider: 'hash', dimensions: 256 },
        oai: { provider: 'openai', model: 'text-embedding-3-small', dimensions: 1536 },
        local: { provider: 'ollama', model: 'nomic-embed-text', dimensions: 768, url: 'http://10.0.0.2:11434', batchSize: 16 },
      }),
    });
    const [, small, oai, local] = config.embedders;
    assert.deepEqual(small, { name: 'small', kind: 'hash', dimensions: 256, batchSize: 2048, timeoutMs: 30_000 });
    assert.equal(oai?.kind === 'openai' && oai.baseUrl, 'http://127.0.0.1:9/v1');
    assert.equal(oai?.kind === 'openai' && oai.apiKey, 'k');
    assert.equal(local?.kind === 'ollama' && `${local.baseUrl} ${local.batchSize}`, 'http://10.0.0.2:11434 16');
  });

  it('reports every bad entry together', () => {
    const problems = problemsOf({
      KBQL_EMBEDDERS: JSON.stringify({
        default: { provider: 'hash' },
        Bad: { provider: 'hash' },
        oai: { provider: 'openai' },
        odd: { provider: 'hash', colour: 'red' },
      }),
    });
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.match(problems.join('\n'), /"default"/);
    assert.match(problems.join('\n'), /"Bad"/);
    assert.match(problems.join('\n'), /KBQL_EMBEDDERS\.oai: "model" and "dimensions" are required/);
    assert.match(problems.join('\n'), /KBQL_EMBEDDERS\.odd/);
    assert.match(problemsOf({ KBQL_EMBEDDERS: '{not json' }).join(''), /not valid JSON/);
    assert.match(problemsOf({ KBQL_EMBEDDERS: '[1]' }).join(''), /JSON object/);
  });
});
