import type { App } from '../src/app';
import { DEVELOPMENT_PRINCIPAL } from '../src/modules/auth/principal';
import { loadScifact } from './shared-data';

/** Creates collection `scifact` in `app` and ingests the first `documents` abstracts (title + text, BEIR style). */
export async function seedScifact(app: App, documents: number): Promise<void> {
  await app.services.collections.create({ name: 'scifact' }, DEVELOPMENT_PRINCIPAL);
  const corpus = loadScifact().corpus.slice(0, documents);
  for (let i = 0; i < corpus.length; i += 250) {
    await app.services.ingestion.ingest(
      'scifact',
      corpus.slice(i, i + 250).map((d) => ({ id: d.id, title: d.title, content: `${d.title}\n\n${d.text}`, contentType: 'TEXT' as const })),
      DEVELOPMENT_PRINCIPAL,
    );
  }
}
