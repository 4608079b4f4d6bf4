import { AppError, badInput } from '../../errors';
import { embedderFingerprint, sameEmbedder } from '../../ports/embedder.port';
import type { CollectionRecord, EmbedderInfo } from '../../ports/knowledge-store.port';
import type { TextVectors } from '../ingestion/cached-embedder';

/** One configured embedder as the services see it: its name, identity and the cached, batched way to call it. */
export interface CatalogEntry {
  /** The configured name (`default` for the KBQL_EMBEDDER one). */
  name: string;
  /** `hash`, `openai` or `ollama`. */
  provider: string;
  /** The provider's model; null for the offline hash embedder. */
  model: string | null;
  info: EmbedderInfo;
  /** See {@link embedderFingerprint}. */
  fingerprint: string;
  vectors: TextVectors;
}

/**
 * The embedders configured by name (KBQL_EMBEDDER as `default`, plus KBQL_EMBEDDERS). A collection records the
 * identity of its active embedder (name + dimensions), not the configured name: any configured embedder with the
 * same identity serves it, so renaming an entry in the config never strands a collection.
 */
export class EmbedderCatalog {
  readonly #entries: readonly CatalogEntry[];

  /** `entries[0]` is the default embedder. */
  constructor(entries: readonly CatalogEntry[]) {
    if (entries.length === 0) throw new RangeError('EmbedderCatalog needs at least the default embedder');
    this.#entries = entries;
  }

  get default(): CatalogEntry {
    return this.#entries[0]!;
  }

  list(): readonly CatalogEntry[] {
    return this.#entries;
  }

  /** The embedder configured as `name`; BAD_USER_INPUT (reason UNKNOWN_EMBEDDER) for another name. */
  byName(name: string): CatalogEntry {
    const entry = this.#entries.find((e) => e.name === name);
    if (!entry) {
      throw badInput(`No embedder is configured as "${name}"; the embedders query lists them.`, {
        field: 'embedder',
        reason: 'UNKNOWN_EMBEDDER',
        known: this.#entries.map((e) => e.name),
      });
    }
    return entry;
  }

  /** The configured embedder that makes vectors of `info`'s identity; null when none does. */
  forInfo(info: EmbedderInfo): CatalogEntry | null {
    return this.#entries.find((e) => sameEmbedder(e.info, info)) ?? null;
  }

  /**
   * The embedder of `collection`'s active vectors; CONFLICT (reason EMBEDDER_MISMATCH) when this server has none
   * with that identity: vectors of two embedders are not comparable.
   */
  require(collection: CollectionRecord): CatalogEntry {
    const entry = this.forInfo(collection.embedder);
    if (entry) return entry;
    const current = this.default.info;
    throw new AppError(
      'CONFLICT',
      `Collection "${collection.name}" was built with embedder ${collection.embedder.name} (${collection.embedder.dimensions} dims) ` +
        `but this server has no embedder of that identity (its default is ${current.name}, ${current.dimensions} dims); vectors ` +
        'from two embedders are not comparable. Configure the original embedder (KBQL_EMBEDDERS), or re-create the collection and ingest again.',
      {
        reason: 'EMBEDDER_MISMATCH',
        collectionEmbedder: collection.embedder.name,
        collectionDimensions: collection.embedder.dimensions,
        collectionFingerprint: embedderFingerprint(collection.embedder),
        serverEmbedder: current.name,
        serverDimensions: current.dimensions,
      },
    );
  }
}
