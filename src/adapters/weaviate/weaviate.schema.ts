/** The Weaviate collections kbql creates: their properties, vector and BM25 settings. */
import type { PropertySpec } from './weaviate.client';
import { BUILTIN_PROPERTIES } from './weaviate.filters';

export const VECTOR = 'default';
export const BM25 = { k1: 1.2, b: 0.75 } as const;

const text = (name: string, index: 'word' | 'field' | 'none'): PropertySpec => ({
  name,
  dataType: 'text',
  tokenization: index === 'word' ? 'word' : 'field',
  indexFilterable: index === 'field',
  indexSearchable: index === 'word',
});
const int = (name: string, filterable: boolean): PropertySpec => ({ name, dataType: 'int', indexFilterable: filterable, indexSearchable: false });
const num = (name: string): PropertySpec => ({ name, dataType: 'number', indexFilterable: false, indexSearchable: false });
const builtinSpecs = Object.values(BUILTIN_PROPERTIES).map((name) => text(name, 'field'));

export const REGISTRY_PROPERTIES: PropertySpec[] = [
  text('kind', 'field'),
  text('collectionId', 'field'),
  text('ownerTenant', 'field'),
  text('name', 'none'),
  text('descriptionJson', 'none'),
  text('chunkingJson', 'none'),
  text('embedderName', 'none'),
  int('embedderDimensions', false),
  int('version', false),
  num('createdAtMs'),
  num('updatedAtMs'),
  text('createdKey', 'field'),
  text('className', 'none'),
  // Sharing: the grants as JSON, and the grantee tenants alone (filterable) for "collections shared with me".
  text('sharesJson', 'none'),
  { name: 'sharedTenants', dataType: 'text[]', tokenization: 'field', indexFilterable: true, indexSearchable: false },
];

export const DOCUMENT_PROPERTIES: PropertySpec[] = [
  text('collectionId', 'field'),
  text('externalId', 'none'),
  text('title', 'none'),
  text('source', 'none'),
  text('contentType', 'none'),
  text('contentHash', 'none'),
  int('charCount', false),
  int('chunkCount', true),
  num('createdAtMs'),
  num('updatedAtMs'),
  text('createdKey', 'field'),
  text('metadataJson', 'none'),
  ...builtinSpecs,
];

export const CHUNK_PROPERTIES: PropertySpec[] = [
  text('text', 'word'),
  text('documentId', 'field'),
  int('chunkIndex', true),
  int('startOffset', false),
  int('endOffset', false),
  text('contentHash', 'field'),
  text('externalId', 'none'),
  text('title', 'none'),
  text('source', 'none'),
  text('metadataJson', 'none'),
  ...builtinSpecs,
];
