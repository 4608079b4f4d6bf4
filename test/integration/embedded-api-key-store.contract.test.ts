import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SqliteApiKeyStore } from '../../src/adapters/auth/sqlite.api-key-store';
import { defineApiKeyStoreContractSuite } from '../contract/api-key-store.contract';

defineApiKeyStoreContractSuite('sqlite', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kbql-keys-'));
  return { store: new SqliteApiKeyStore({ dataDir: dir }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});
