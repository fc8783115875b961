import { GetRecordsCommand, GetShardIteratorCommand, KinesisClient, type GetShardIteratorCommandInput } from '@aws-sdk/client-kinesis';
import { Gauge, type Registry } from 'prom-client';
import { awsClientConfig, type AwsOptions } from '../../shared/aws-client-config.js';
import { backoffDelay } from '../../shared/backoff.js';
import { decodeStreamRecord } from '../../shared/contract/stream-record.js';
import { STREAMS } from '../../shared/contract/topics.js';
import { listShards } from '../../shared/kinesis-stream.js';
import type { Logger } from '../../shared/log.js';
import type { AssignmentHealth, ShardAssignment } from './kinesis-assignment.js';
import type { Checkpoint } from './kinesis-checkpoints.js';
import type { PositionedRecord, PositionedSource, SourcedRecord } from './source.js';

export interface KinesisSourceOptions extends AwsOptions {
  streamName?: string;
  /** Which shards this reader reads and where their checkpoints are kept. */
  assignment: ShardAssignment;
  /** On start, each shard is re-read from this long before its checkpoint to rebuild open windows. */
  rebuildMs: number;
  /** Pause before reading a caught-up shard again. */
  idleReadMs?: number;
  /** How often the shard list is refreshed to see closed shards and their children. */
  listShardsMs?: number;
  /** Where skipped records and read errors that `poll` does not throw are reported. */
  log?: Logger;
  /** Where the shard lag gauge is registered. */
  registry?: Registry;
}

/** A record with the Kinesis position it came from (also its lane and position); `offset` counts records in delivery order. */
export interface KinesisRecord extends PositionedRecord {
  shardId: string;
  sequenceNumber: string;
}

/** `elsewhere`: another reader holds the shard's lease. */
export type ShardPhase = 'waiting' | 'reading' | 'ended' | 'elsewhere';

export interface ShardStatus {
  shardId: string;
  parents: string[];
  phase: ShardPhase;
}

interface ShardState {
  id: string;
  parents: string[];
  /** This reader holds the shard (always, without leases), from `checkpoint` on. */
  held: boolean;
  checkpoint?: Checkpoint;
  /** Read to its end and every record handled: recorded with the assignment. */
  finished: boolean;
  /** Set once the shard is closed (split or merged): nothing is written to it after this. */
  endingSeq?: bigint;
  iterator?: string;
  lastRead?: string;
  /** Handed out and not handled: read again from this record. */
  resumeAt?: string;
  /** Records up to this sequence number were handled before the restart. */
  rebuildThrough?: bigint;
  ended: boolean;
  nextReadAt: number;
  failures: number;
}

interface Position extends Checkpoint {
  offset: number;
  shardId: string;
}

/** Kinesis allows five GetRecords calls per second per shard. */
const MIN_READ_SPACING_MS = 200;
const MAX_ERROR_BACKOFF_MS = 10_000;

/**
 * Reads a Kinesis stream shard by shard: every shard, or those whose leases this reader
 * holds (see kinesis-assignment.ts). A vehicle's records are in one shard at a time, so
 * order per vehicle holds as long as a shard made by a split or merge is read only after
 * its parents are read to their end and handled. A shard whose lease is lost is dropped at
 * once: records of it handed out but not committed are stored again by its new holder,
 * which dedupe makes harmless, and its checkpoint is no longer this reader's to move.
 */
export class KinesisSource implements PositionedSource {
  readonly name = 'kinesis';
  readonly streamName: string;
  /** Records that did not decode; they are skipped and their position committed with the next. */
  readonly counters = { invalid: 0 };
  private readonly client: KinesisClient;
  private readonly assignment: ShardAssignment;
  private readonly lag?: Gauge<'shard'>;
  private readonly shards = new Map<string, ShardState>();
  private listedAt = -Infinity;
  private offset = 0;
  private delivered: Position[] = [];

  constructor(private readonly opts: KinesisSourceOptions) {
    this.streamName = opts.streamName ?? STREAMS.telemetry;
    this.client = new KinesisClient(awsClientConfig(opts));
    this.assignment = opts.assignment;
    if (opts.registry)
      this.lag = new Gauge({
        name: 'fleet_detector_kinesis_shard_lag_ms',
        help: 'How far behind the newest record of each shard this detector reads (MillisBehindLatest)',
        labelNames: ['shard'] as const,
        registers: [opts.registry],
      });
  }

  async poll(max: number): Promise<KinesisRecord[]> {
    if (Date.now() - this.listedAt >= (this.opts.listShardsMs ?? 10_000)) await this.listShards();
    await this.followAssignment();
    const out: KinesisRecord[] = [];
    let failure: Error | undefined;
    for (const shard of this.readable()) {
      if (out.length >= max) break;
      if (shard.nextReadAt > Date.now()) continue;
      try {
        out.push(...(await this.read(shard, max - out.length)));
      } catch (err) {
        failure = err as Error;
      }
    }
    // Records already read must be handed over; an error alone is the caller's to log.
    if (out.length === 0 && failure) throw failure;
    return out;
  }

  async commit(record: SourcedRecord): Promise<void> {
    const end = this.delivered.findIndex((p) => p.offset > record.offset);
    await this.checkpoint(end === -1 ? this.delivered.splice(0) : this.delivered.splice(0, end));
  }

  async commitLane(record: PositionedRecord): Promise<void> {
    const inLane = (p: Position) => p.shardId === record.lane && p.offset <= record.offset;
    const done = this.delivered.filter(inLane);
    this.delivered = this.delivered.filter((p) => !inLane(p));
    await this.checkpoint(done);
  }

  /** Moves each held shard's checkpoint to the last of `done` in it; a shard whose lease is gone is let go. */
  private async checkpoint(done: Position[]): Promise<void> {
    const last = new Map<string, Position>();
    for (const p of done) last.set(p.shardId, p);
    const moved = new Map<string, Checkpoint>();
    for (const p of last.values()) {
      const state = this.shards.get(p.shardId);
      if (!state?.held) continue;
      const current = state.checkpoint;
      // Re-read rebuild records come before the checkpoint: they must not move it back.
      if (current && BigInt(p.sequence) <= BigInt(current.sequence)) continue;
      moved.set(p.shardId, { sequence: p.sequence, arrivedAt: p.arrivedAt });
    }
    const refused = new Set(await this.assignment.save(moved));
    for (const [shard, c] of moved) {
      const state = this.shards.get(shard);
      if (!state) continue;
      if (refused.has(shard)) this.letGo(state);
      else state.checkpoint = c;
    }
  }

  /**
   * The detector could not handle what it was handed (its store refused, say): each shard is
   * read again from its first record not committed, so nothing handed out is skipped.
   */
  rewind(): Promise<void> {
    const first = new Map<string, Position>();
    for (const p of this.delivered) if (!first.has(p.shardId)) first.set(p.shardId, p);
    this.delivered = [];
    for (const [id, p] of first) {
      const state = this.shards.get(id);
      if (state?.held)
        Object.assign(state, { iterator: undefined, lastRead: undefined, resumeAt: p.sequence, ended: false, nextReadAt: 0 });
    }
    return Promise.resolve();
  }

  /** For the health endpoint: the shards this reader holds, whether it can keep them, and each shard's phase. */
  health(): AssignmentHealth & { shards: ShardStatus[] } {
    return { ...this.assignment.health(), shards: this.status() };
  }

  /** Each shard and where its reading stands, for health and tests. */
  status(): ShardStatus[] {
    const readable = new Set(this.readable());
    return [...this.shards.values()].map((s) => ({
      shardId: s.id,
      parents: s.parents,
      phase: s.ended || s.finished ? 'ended' : readable.has(s) ? 'reading' : s.held ? 'waiting' : 'elsewhere',
    }));
  }

  async close(): Promise<void> {
    this.client.destroy();
    await this.assignment.close();
  }

  /**
   * Takes up the shards the assignment gave this reader, drops those it lost, and records
   * the shards read to their end whose records were all handled.
   */
  private async followAssignment(): Promise<void> {
    const owned = this.assignment.owned();
    for (const state of this.shards.values()) {
      if (state.held && state.ended && !state.finished && !this.delivered.some((p) => p.shardId === state.id)) {
        await this.assignment.finish(state.id);
        state.finished = true;
      }
      if (!state.held && owned.has(state.id)) this.takeUp(state, owned.get(state.id));
      else if (state.held && !state.finished && !owned.has(state.id)) this.letGo(state);
    }
  }

  private takeUp(state: ShardState, checkpoint: Checkpoint | undefined): void {
    Object.assign(state, {
      held: true,
      checkpoint,
      rebuildThrough: checkpoint && this.opts.rebuildMs > 0 ? BigInt(checkpoint.sequence) : undefined,
      iterator: undefined,
      lastRead: undefined,
      resumeAt: undefined,
      ended: false,
      nextReadAt: 0,
      failures: 0,
    });
  }

  /** Stops reading a shard another reader now holds; what was handed out of it is not this reader's to commit. */
  private letGo(state: ShardState): void {
    Object.assign(state, { held: false, iterator: undefined, lastRead: undefined, resumeAt: undefined, ended: false });
    this.delivered = this.delivered.filter((p) => p.shardId !== state.id);
    this.lag?.remove(state.id);
  }

  private async listShards(): Promise<void> {
    const listed = await listShards(this.client, this.streamName);
    const ids = new Set(listed.map((s) => s.ShardId!));
    // A shard past the retention period is gone; a parent that is gone counts as read.
    for (const id of this.shards.keys()) if (!ids.has(id)) this.shards.delete(id);
    for (const s of listed) {
      const id = s.ShardId!;
      let state = this.shards.get(id);
      if (!state) {
        state = {
          id,
          parents: [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => p !== undefined),
          held: false,
          finished: false,
          ended: false,
          nextReadAt: 0,
          failures: 0,
        };
        this.shards.set(id, state);
      }
      const ending = s.SequenceNumberRange?.EndingSequenceNumber;
      state.endingSeq = ending === undefined ? undefined : BigInt(ending);
    }
    await this.assignment.addShards([...this.shards.values()].map((s) => ({ shardId: s.id, parents: s.parents })));
    this.listedAt = Date.now();
  }

  private readable(): ShardState[] {
    return [...this.shards.values()]
      .filter((s) => s.held && !s.ended && s.parents.every((p) => this.parentDone(p)))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /** A parent read to its end here, finished by another reader, or gone past the retention period. */
  private parentDone(id: string): boolean {
    const parent = this.shards.get(id);
    return !parent || parent.ended || parent.finished || this.assignment.finished(id);
  }

  private async read(shard: ShardState, limit: number): Promise<KinesisRecord[]> {
    let out;
    try {
      shard.iterator ??= await this.openIterator(shard);
      out = await this.client.send(new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: limit }));
    } catch (err) {
      const e = err as Error;
      this.opts.log?.warn({ stream: this.streamName, shard: shard.id, err: `${e.name}: ${e.message}` }, 'kinesis read failed, retrying');
      // An iterator lives five minutes: a new one resumes after the last record read.
      if (e.name === 'ExpiredIteratorException') shard.iterator = undefined;
      else shard.nextReadAt = Date.now() + backoffDelay(shard.failures++, MIN_READ_SPACING_MS, MAX_ERROR_BACKOFF_MS);
      throw err;
    }
    shard.failures = 0;
    const now = Date.now();
    const records: KinesisRecord[] = [];
    for (const r of out.Records ?? []) {
      const sequence = r.SequenceNumber!;
      const offset = ++this.offset;
      const arrivedAt = r.ApproximateArrivalTimestamp?.getTime() ?? now;
      shard.lastRead = sequence;
      this.delivered.push({ offset, shardId: shard.id, sequence, arrivedAt });
      try {
        // A bare payload an IoT rule routed here has no receive time of its own: its arrival stands in.
        const record = decodeStreamRecord(r.Data ?? new Uint8Array(), { key: r.PartitionKey ?? '', receivedAt: arrivedAt });
        const rebuild = shard.rebuildThrough !== undefined && BigInt(sequence) <= shard.rebuildThrough;
        const size = r.Data?.length ?? 0;
        records.push({ ...record, offset, rebuild, shardId: shard.id, sequenceNumber: sequence, lane: shard.id, position: sequence, size });
      } catch (err) {
        this.counters.invalid++;
        this.opts.log?.warn(
          { stream: this.streamName, shard: shard.id, sequence, vehicle: r.PartitionKey, err: (err as Error).message },
          'kinesis record skipped',
        );
      }
    }
    shard.iterator = out.NextShardIterator ?? undefined;
    // Kinesis ends a closed shard with a null iterator; the sequence check also ends it for
    // emulators that keep returning one.
    const drained = shard.endingSeq !== undefined && BigInt(shard.lastRead ?? '0') >= shard.endingSeq;
    if (shard.iterator === undefined || drained) {
      shard.ended = true;
      this.listedAt = -Infinity;
    }
    this.lag?.set({ shard: shard.id }, out.MillisBehindLatest ?? 0);
    const behind = records.length === limit || (out.MillisBehindLatest ?? 0) > 0;
    shard.nextReadAt = now + (behind ? MIN_READ_SPACING_MS : (this.opts.idleReadMs ?? 1_000));
    return records;
  }

  private async openIterator(shard: ShardState): Promise<string> {
    const checkpoint = shard.checkpoint;
    let start: Pick<GetShardIteratorCommandInput, 'ShardIteratorType' | 'StartingSequenceNumber' | 'Timestamp'>;
    if (shard.resumeAt !== undefined) {
      start = { ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: shard.resumeAt };
    } else if (shard.lastRead !== undefined) {
      start = { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: shard.lastRead };
    } else if (checkpoint === undefined) {
      start = { ShardIteratorType: 'TRIM_HORIZON' };
    } else if (shard.rebuildThrough !== undefined) {
      start = { ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(checkpoint.arrivedAt - this.opts.rebuildMs) };
    } else {
      start = { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: checkpoint.sequence };
      shard.lastRead = checkpoint.sequence;
    }
    const out = await this.client.send(new GetShardIteratorCommand({ StreamName: this.streamName, ShardId: shard.id, ...start }));
    shard.resumeAt = undefined;
    return out.ShardIterator!;
  }
}
