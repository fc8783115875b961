import type { Logger } from '../../shared/log.js';
import { SHARD_END, type Lease, type LeaseStore } from './kinesis-lease-table.js';

export interface LeaseCoordinatorOptions {
  workerId: string;
  /** A lease whose counter has not moved for this long is expired, and any worker may take it. */
  leaseTimeMs: number;
  log?: Logger;
  /** The clock; a fake one in unit tests. */
  now?: () => number;
}

interface Held {
  lease: Lease;
  /** Local time just before the last successful renewal or take. */
  renewedAt: number;
}

/** What a coordinator's round did, for metrics and logs. */
export interface RoundResult {
  taken: string[];
  lost: string[];
}

/**
 * One worker's side of the lease protocol of the Kinesis Client Library. Each round it renews
 * the leases it holds (a renewal that fails means another worker took it), reads the table,
 * and takes leases until it holds its share (shards / workers, rounded up): first unowned
 * and expired ones, else one stolen from the most loaded worker. A lease is expired when its
 * counter has not moved for the lease time by this worker's own clock, so workers never
 * compare clocks. A worker reads a shard only while its last renewal is younger than the
 * lease time: one that was paused stops before anyone could have taken the lease over.
 */
export class LeaseCoordinator {
  readonly workerId: string;
  private readonly now: () => number;
  private readonly held = new Map<string, Held>();
  /** Every lease as last read, with the local time its counter was last seen to move. */
  private readonly seen = new Map<string, { lease: Lease; movedAt: number }>();

  constructor(
    private readonly table: LeaseStore,
    private readonly opts: LeaseCoordinatorOptions,
  ) {
    this.workerId = opts.workerId;
    this.now = opts.now ?? Date.now;
  }

  /** Creates the leases of shards the table does not have yet (another worker may win: that is fine). */
  async addShards(shards: { shardId: string; parents: string[] }[]): Promise<void> {
    for (const s of shards) if (!this.seen.has(s.shardId)) await this.table.create(s.shardId, s.parents);
  }

  /** Renews, reads the table, takes what this worker's share calls for. */
  async round(): Promise<RoundResult> {
    const before = [...this.held.keys()];
    await this.renewAll();
    const taken: string[] = [];
    const started = this.now();
    const leases = await this.table.list();
    this.observe(leases, started);
    const lost = before.filter((id) => !this.held.has(id));
    for (const lease of this.toTake(leases, started)) {
      const got = await this.table.take(lease, this.workerId);
      if (!got) continue;
      this.held.set(got.shardId, { lease: got, renewedAt: started });
      this.seen.set(got.shardId, { lease: got, movedAt: started });
      taken.push(got.shardId);
      this.opts.log?.info({ shard: got.shardId, from: lease.owner ?? null, worker: this.workerId }, 'kinesis lease taken');
    }
    return { taken, lost };
  }

  /** The shards this worker may read now: held, and renewed within the lease time. */
  readable(): Lease[] {
    const now = this.now();
    return [...this.held.values()].filter((h) => now - h.renewedAt < this.opts.leaseTimeMs).map((h) => h.lease);
  }

  /** Every shard's lease as last read (with this worker's own writes applied). */
  leases(): Lease[] {
    return [...this.seen.values()].map((s) => s.lease);
  }

  /** Whether a shard was read to its end and handled, by whichever worker held it. */
  finished(shardId: string): boolean {
    return this.seen.get(shardId)?.lease.checkpoint === SHARD_END;
  }

  /**
   * Moves a held shard's checkpoint. False when the lease is gone: another worker holds it,
   * and the checkpoint stays where that worker puts it.
   */
  async checkpoint(shardId: string, sequence: string, arrivedAt: number): Promise<boolean> {
    const h = this.held.get(shardId);
    if (!h) return false;
    if (!(await this.table.checkpoint(shardId, this.workerId, sequence, arrivedAt))) {
      this.drop(shardId, 'checkpoint refused');
      return false;
    }
    h.lease = { ...h.lease, checkpoint: sequence, checkpointArrivedAt: arrivedAt };
    const s = this.seen.get(shardId);
    if (s) s.lease = { ...s.lease, checkpoint: sequence, checkpointArrivedAt: arrivedAt };
    return true;
  }

  /** Gives a held lease up: a finished shard's, which nobody needs to hold any more. */
  async release(shardId: string): Promise<void> {
    const h = this.held.get(shardId);
    if (!h) return;
    this.held.delete(shardId);
    await this.table.release(h.lease, this.workerId);
  }

  /** Gives every held lease up, so other workers take them at once rather than after the lease time. */
  async releaseAll(): Promise<void> {
    for (const { lease } of this.held.values()) await this.table.release(lease, this.workerId).catch(() => undefined);
    this.held.clear();
  }

  private async renewAll(): Promise<void> {
    for (const [shardId, h] of [...this.held]) {
      const started = this.now();
      const renewed = await this.table.renew(h.lease, this.workerId);
      if (!renewed) {
        this.drop(shardId, 'renewal refused');
        continue;
      }
      h.lease = renewed;
      h.renewedAt = started;
    }
  }

  private drop(shardId: string, why: string): void {
    if (this.held.delete(shardId)) this.opts.log?.warn({ shard: shardId, worker: this.workerId, why }, 'kinesis lease lost');
  }

  private observe(leases: Lease[], at: number): void {
    const listed = new Set(leases.map((l) => l.shardId));
    for (const id of this.seen.keys()) if (!listed.has(id)) this.seen.delete(id);
    for (const lease of leases) {
      const before = this.seen.get(lease.shardId);
      const moved = !before || before.lease.counter !== lease.counter;
      this.seen.set(lease.shardId, { lease, movedAt: moved ? at : before.movedAt });
      // The table says someone else holds it now (a steal this worker has not renewed into yet).
      if (lease.owner !== this.workerId && this.held.has(lease.shardId)) this.drop(lease.shardId, 'owned by another worker');
    }
  }

  /**
   * The leases to try to take this round: at most this worker's share, and at most one stolen.
   * A lease the table says this worker owns but this process does not hold was its earlier
   * incarnation's (the same worker id, restarted): it counts as another worker's until it
   * expires, and is then free like any other. Counted as this worker's own, it would never be
   * read again once the other workers hold their share.
   */
  private toTake(leases: Lease[], now: number): Lease[] {
    const open = leases.filter((l) => l.checkpoint !== SHARD_END);
    const expired = (l: Lease) => l.owner === undefined || now - (this.seen.get(l.shardId)?.movedAt ?? now) >= this.opts.leaseTimeMs;
    const holder = (l: Lease) => (l.owner === this.workerId && !this.held.has(l.shardId) ? EARLIER_INCARNATION : l.owner!);
    const load = new Map<string, Lease[]>([[this.workerId, []]]);
    for (const l of open) if (l.owner !== undefined && !expired(l)) load.set(holder(l), [...(load.get(holder(l)) ?? []), l]);
    const share = Math.ceil(open.length / load.size);
    const want = share - (load.get(this.workerId)?.length ?? 0);
    if (want <= 0) return [];
    const free = open.filter((l) => !this.held.has(l.shardId) && expired(l)).sort(byShard);
    if (free.length > 0) return free.slice(0, want);
    // Nothing free: steal one from the most loaded worker, if it holds more than its share.
    const [busiest] = [...load.entries()].filter(([w]) => w !== this.workerId).sort((a, b) => b[1].length - a[1].length);
    if (!busiest || busiest[1].length <= share) return [];
    return [busiest[1].sort(byShard).at(-1)!];
  }
}

const byShard = (a: Lease, b: Lease) => a.shardId.localeCompare(b.shardId);
/** Stands for the worker that held a lease under this worker's id before this process started. */
const EARLIER_INCARNATION = '\0earlier incarnation';
