import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { AppError, badInput, notFound } from '../../errors';
import type { UploadRecord, UploadStore } from '../../ports/job-store.port';
import { hasRole, type Access, type Principal } from '../../ports/principal.port';

export interface UploadLimits {
  /** Largest upload in bytes (413 PAYLOAD_TOO_LARGE above). */
  maxBytes: number;
  /** How long an upload waits for a job before it is deleted, in seconds. */
  ttlSeconds: number;
}

const FILENAME = /^[^\u0000-\u001f\u007f/\\]{1,255}$/;

/**
 * Files uploaded with `POST /v1/uploads`, kept until they expire, handed to `startIngestion` by id. An upload belongs
 * to the caller's tenant: another tenant's upload id is NOT_FOUND.
 */
export class UploadService {
  constructor(private readonly deps: { store: UploadStore; limits: UploadLimits; now?: () => Date }) {}

  get limits(): UploadLimits {
    return this.deps.limits;
  }

  /** Stores a file for `principal` (WRITER or ADMIN: uploads only feed ingestion). */
  async accept(principal: Principal | null, data: Buffer, rawFilename: string | null, mediaType: string | null): Promise<UploadRecord> {
    if (!principal) throw new AppError('UNAUTHENTICATED');
    if (!hasRole(principal, 'WRITER')) throw new AppError('FORBIDDEN', 'Uploading needs the WRITER role.', { requires: 'WRITER' });
    const filename = normaliseFilename(rawFilename);
    if (data.length > this.deps.limits.maxBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `The file is ${data.length} bytes; the limit is ${this.deps.limits.maxBytes}.`, {
        bytes: data.length,
        maxBytes: this.deps.limits.maxBytes,
      });
    }
    const now = this.deps.now?.() ?? new Date();
    const record: UploadRecord = {
      id: `upl_${randomBytes(16).toString('base64url')}`,
      tenant: principal.tenant,
      filename,
      mediaType: mediaType?.slice(0, 200) ?? null,
      bytes: data.length,
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.deps.limits.ttlSeconds * 1000),
    };
    await this.deps.store.put(record, data);
    return record;
  }

  /** The upload's record and bytes; NOT_FOUND when unknown, expired or another tenant's. */
  async load(id: string, access: Access): Promise<{ record: UploadRecord; data: Buffer }> {
    const found = await this.deps.store.get(id);
    if (!found || found.record.tenant !== access.tenant) throw notFound('Upload', id);
    return found;
  }

  sweep(): Promise<number> {
    return this.deps.store.sweep(this.deps.now?.() ?? new Date());
  }
}

/** The name a client sent (percent-encoded UTF-8 allowed), without any directory part. */
export function normaliseFilename(raw: string | null): string {
  if (!raw) throw badInput('Name the file in the X-Kbql-Filename header (percent-encoded UTF-8 is fine).', { header: 'x-kbql-filename' });
  let name = raw;
  try {
    name = decodeURIComponent(raw);
  } catch {
    // not percent-encoded: take it as it is
  }
  name = basename(name.replace(/\\/g, '/')).trim();
  if (!FILENAME.test(name) || name === '.' || name === '..') {
    throw badInput('A file name has 1 to 255 characters and no control characters or slashes.', { header: 'x-kbql-filename' });
  }
  return name;
}
