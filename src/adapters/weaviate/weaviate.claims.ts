/**
 * Collection-name claims that Weaviate itself keeps unique, across replicas.
 *
 * Weaviate has no conditional object write: its REST object create checks that the id is free, then writes, with no
 * lock between the two (server `usecases/objects/add.go`), so a claim object with a name-derived id lets two racing
 * creates both win. Creating a *collection* is different: it goes through the schema's Raft log and the apply step
 * refuses a name that exists (`cluster/schema` `addClass`), one create at a time on the leader. So a name's claim is a
 * collection of its own, `<prefix>Name_<40 hex of SHA-256(Weaviate tenant, kbql tenant, name)>` (no properties, no
 * vectors), whose description records the claiming collection id, a random token and the time.
 *
 * Stale claims (a crash between claiming and writing the record, or before releasing) are taken over only when the
 * holder's record does not carry the name and the claim is older than `graceMs`: a claimer must finish within half
 * of it ({@link WeaviateNameClaims.confirm}), so an in-progress claim is never mistaken for a stale one. Removing a
 * claim (release or take-over) first creates `<prefix>NameRelease_<token>`, again unique by Raft, so exactly one
 * party deletes a given claim; the marker goes once the claim is gone. A crash between the two leaves the marker and
 * the name stuck (never shared): delete that collection by hand.
 */
import { createHash, randomUUID } from 'node:crypto';
import { AppError } from '../../errors';
import type { CollectionSpec } from './weaviate.client';
import { isAlreadyExists } from './weaviate.resilience';
import type { WeaviateSession } from './weaviate.session';

/** What a claim collection's description holds. */
export interface NameClaim {
  collectionId: string;
  token: string;
  /** Epoch milliseconds when it was claimed. */
  claimedAt: number;
}

/** Whether the collection `collectionId` exists and carries `name` in `tenant` (reads the registry). */
export type HolderCheck = (tenant: string, name: string, collectionId: string) => Promise<boolean>;

export class WeaviateNameClaims {
  constructor(
    private readonly session: WeaviateSession,
    private readonly holds: HolderCheck,
  ) {}

  private get graceMs(): number {
    return this.session.core.options.claimGraceMs;
  }

  /** The Weaviate collection that is the claim of `name` in kbql tenant `tenant`. */
  claimCollection(tenant: string, name: string): string {
    const key = `${this.session.tenant ?? ''}\u0000${tenant}\u0000${name}`;
    return `${this.session.core.options.collectionPrefix}Name_${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
  }

  /** The current claim of a name, or null. */
  async read(tenant: string, name: string): Promise<NameClaim | null> {
    return this.readClass(this.claimCollection(tenant, name));
  }

  /** Claims `name` for `collectionId`: CONFLICT when a live collection (or a create in progress) holds it. */
  async acquire(tenant: string, name: string, collectionId: string): Promise<NameClaim> {
    const cls = this.claimCollection(tenant, name);
    const mine: NameClaim = { collectionId, token: randomUUID(), claimedAt: Date.now() };
    for (let round = 0; round < 3; round++) {
      if (await this.create(cls, mine)) return mine;
      const holder = await this.readClass(cls);
      if (!holder) continue; // released meanwhile
      if (holder.token === mine.token) return mine; // our own create, retried after a lost answer
      const fresh = Date.now() - holder.claimedAt < this.graceMs;
      if (holder.collectionId !== collectionId && (fresh || (await this.holds(tenant, name, holder.collectionId)))) {
        throw conflict(name);
      }
      // Stale (or an old claim of this very collection): remove it, then claim afresh.
      await this.remove(cls, holder.token);
    }
    throw conflict(name);
  }

  /**
   * After the claimer wrote its record: the claim must still be its own, and taken less than half the grace period
   * ago (later, another replica may already have judged it stale). Throws otherwise; the caller undoes its work.
   */
  async confirm(tenant: string, name: string, claim: NameClaim): Promise<void> {
    const holder = await this.read(tenant, name);
    if (holder?.token !== claim.token) throw conflict(name);
    const took = Date.now() - claim.claimedAt;
    if (took > this.graceMs / 2) {
      throw new AppError(
        'UPSTREAM_TIMEOUT',
        `Claiming the collection name "${name}" took ${took} ms (limit ${this.graceMs / 2} ms); nothing was changed, retry.`,
        { dependency: 'weaviate', operation: 'claim collection name', timeoutMs: this.graceMs / 2 },
      );
    }
  }

  /** Releases the claim of `name` if `collectionId` holds it. */
  async release(tenant: string, name: string, collectionId: string): Promise<void> {
    const cls = this.claimCollection(tenant, name);
    const holder = await this.readClass(cls);
    if (holder?.collectionId === collectionId) await this.remove(cls, holder.token);
  }

  /** Deletes the claim collection if it still carries `token`, as the one party holding its release marker. */
  private async remove(cls: string, token: string): Promise<void> {
    const marker = `${this.session.core.options.collectionPrefix}NameRelease_${token.replace(/-/g, '')}`;
    if (!(await this.create(marker, { collectionId: '', token, claimedAt: Date.now() }))) return; // another party is on it
    try {
      if ((await this.readClass(cls))?.token === token) {
        await this.session.call('release collection name', (c) => c.deleteCollection(cls), { write: true });
      }
    } finally {
      await this.session.call('release collection name', (c) => c.deleteCollection(marker), { write: true });
    }
  }

  /** Creates a claim-like collection; false when one of that name exists. */
  private async create(name: string, claim: NameClaim): Promise<boolean> {
    const spec: CollectionSpec = {
      name,
      description: JSON.stringify(claim),
      properties: [],
      vectors: 'none',
      multiTenant: false,
      invertedIndex: { bm25K1: 1.2, bm25B: 0.75, indexNullState: false },
    };
    try {
      await this.session.call('claim collection name', (c) => c.createCollection(spec), { write: true });
      return true;
    } catch (error) {
      if (isAlreadyExists(error)) return false;
      throw error;
    }
  }

  private async readClass(cls: string): Promise<NameClaim | null> {
    const description = await this.session.call('read collection name claim', (c) => c.collectionDescription(cls));
    if (description === null) return null;
    try {
      const parsed = JSON.parse(description) as Partial<NameClaim>;
      if (typeof parsed.collectionId === 'string' && typeof parsed.token === 'string' && typeof parsed.claimedAt === 'number') {
        return { collectionId: parsed.collectionId, token: parsed.token, claimedAt: parsed.claimedAt };
      }
    } catch {
      // not a claim kbql wrote: treated as absent below
    }
    return null;
  }
}

export const conflict = (name: string): AppError =>
  new AppError('CONFLICT', `A collection named "${name}" already exists.`, { field: 'name', name });
