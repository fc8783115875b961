import { Counter, Gauge, type Registry } from 'prom-client';
import type { AwsOptions } from '../../shared/aws-client-config.js';
import type { Logger } from '../../shared/log.js';
import { sleep } from '../../shared/sleep.js';
import type { AssignmentHealth, ListedShard, ShardAssignment } from './kinesis-assignment.js';
import type { Checkpoint } from './kinesis-checkpoints.js';
import { LeaseCoordinator } from './kinesis-lease-coordinator.js';
import { DynamoLeaseTable, SHARD_END } from './kinesis-lease-table.js';

export interface LeaseAssignmentOptions extends AwsOptions {
  tableName: string;
  workerId: string;
  leaseTimeMs: number;
  log?: Logger;
  registry?: Registry;
}

/** Rounds per lease time: a worker renews twice more before a missed renewal could expire its lease. */
const ROUNDS_PER_LEASE_TIME = 3;

/**
 * Several detectors share a stream's shards through leases in a DynamoDB table (the KCL's
 * scheme, see kinesis-lease-coordinator.ts). Renewals and takes run on a timer of their own,
 * so a detector busy storing a large batch still renews in time. A finished shard's lease
 * is checkpointed SHARD_END and released: that is what lets another worker read its children.
 */
export class LeaseShardAssignment implements ShardAssignment {
  private readonly table: DynamoLeaseTable;
  private readonly coordinator: LeaseCoordinator;
  private readonly stopping = new AbortController();
  private starting?: Promise<void>;
  private loop?: Promise<void>;
  /** While lease rounds fail: the last error, and since when. */
  private roundFailure?: { error: string; since: number };
  private readonly metrics;

  constructor(private readonly opts: LeaseAssignmentOptions) {
    this.table = new DynamoLeaseTable(opts);
    this.coordinator = new LeaseCoordinator(this.table, { workerId: opts.workerId, leaseTimeMs: opts.leaseTimeMs, log: opts.log });
    const r = opts.registry ? [opts.registry] : [];
    const coordinator = this.coordinator;
    this.metrics = {
      held: new Gauge({
        name: 'fleet_detector_kinesis_leases_held',
        help: 'Shard leases this detector holds and may read',
        registers: r,
        collect(this: Gauge) {
          this.set(coordinator.readable().length);
        },
      }),
      taken: new Counter({
        name: 'fleet_detector_kinesis_lease_takeovers_total',
        help: 'Shard leases this detector took: unowned, expired or stolen to balance the load',
        registers: r,
      }),
      lost: new Counter({
        name: 'fleet_detector_kinesis_leases_lost_total',
        help: 'Shard leases another detector took from this one',
        registers: r,
      }),
    };
  }

  async addShards(shards: ListedShard[]): Promise<void> {
    await this.start();
    await this.coordinator.addShards(shards);
  }

  owned(): Map<string, Checkpoint | undefined> {
    return new Map(
      this.coordinator
        .readable()
        .filter((l) => l.checkpoint !== SHARD_END)
        .map((l) => [
          l.shardId,
          l.checkpoint === undefined ? undefined : { sequence: l.checkpoint, arrivedAt: l.checkpointArrivedAt ?? 0 },
        ]),
    );
  }

  finished(shardId: string): boolean {
    return this.coordinator.finished(shardId);
  }

  async save(checkpoints: Map<string, Checkpoint>): Promise<string[]> {
    const refused: string[] = [];
    for (const [shard, c] of checkpoints) if (!(await this.coordinator.checkpoint(shard, c.sequence, c.arrivedAt))) refused.push(shard);
    return refused;
  }

  async finish(shardId: string): Promise<void> {
    if (await this.coordinator.checkpoint(shardId, SHARD_END, Date.now())) await this.coordinator.release(shardId);
  }

  /** Unhealthy while lease rounds fail: the detector then reads less and less, and soon nothing. */
  health(): AssignmentHealth {
    const shardsHeld = this.coordinator.readable().length;
    const f = this.roundFailure;
    return f
      ? { ok: false, shardsHeld, detail: `lease table ${this.opts.tableName}: ${f.error}`, since: f.since }
      : { ok: true, shardsHeld };
  }

  async close(): Promise<void> {
    this.stopping.abort();
    await this.starting?.catch(() => undefined);
    await this.loop;
    await this.coordinator.releaseAll();
    this.table.close();
  }

  private start(): Promise<void> {
    this.starting ??= this.table.ensureTable().then(
      () => {
        this.loop = this.run();
      },
      (err: Error) => {
        this.starting = undefined;
        throw new Error(`lease table ${this.opts.tableName}: ${err.name}: ${err.message}`);
      },
    );
    return this.starting;
  }

  private async run(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        const { taken, lost } = await this.coordinator.round();
        this.metrics.taken.inc(taken.length);
        this.metrics.lost.inc(lost.length);
        this.roundFailure = undefined;
      } catch (err) {
        const e = err as Error;
        this.roundFailure = { error: `${e.name}: ${e.message}`, since: this.roundFailure?.since ?? Date.now() };
        this.opts.log?.warn({ table: this.opts.tableName, err: `${e.name}: ${e.message}` }, 'kinesis lease round failed, retrying');
      }
      await sleep(this.opts.leaseTimeMs / ROUNDS_PER_LEASE_TIME, this.stopping.signal);
    }
  }
}
