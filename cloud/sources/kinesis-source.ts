import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  type GetShardIteratorCommandInput,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { awsClientConfig, type AwsOptions } from '../../shared/aws-client-config.js';
import { backoffDelay } from '../../shared/backoff.js';
import { decodeStreamRecord } from '../../shared/contract/stream-record.js';
import { STREAMS } from '../../shared/contract/topics.js';
import type { Logger } from '../../shared/log.js';
import { KinesisCheckpoints, type Checkpoint } from './kinesis-checkpoints.js';
import type { SourcedRecord, TelemetrySource } from './source.js';

export interface KinesisSourceOptions extends AwsOptions {
  streamName?: string;
  /** SQLite file of this consumer's checkpoints (one file per consumer). */
  checkpointPath: string;
  /** On start, each shard is re-read from this long before its checkpoint to rebuild open windows. */
  rebuildMs: number;
  /** Pause before reading a caught-up shard again. */
  idleReadMs?: number;
  /** How often the shard list is refreshed to see closed shards and their children. */
  listShardsMs?: number;
  /** Where skipped records and read errors that `poll` does not throw are reported. */
  log?: Logger;
}

/** A record with the Kinesis position it came from; `offset` counts records in delivery order. */
export interface KinesisRecord extends SourcedRecord {
  shardId: string;
  sequenceNumber: string;
}

export type ShardPhase = 'waiting' | 'reading' | 'ended';

export interface ShardStatus {
  shardId: string;
  parents: string[];
  phase: ShardPhase;
}

interface ShardState {
  id: string;
  parents: string[];
  /** Set once the shard is closed (split or merged): nothing is written to it after this. */
  endingSeq?: bigint;
  iterator?: string;
  lastRead?: string;
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
 * Reads a Kinesis stream shard by shard, with its checkpoints in SQLite. A vehicle's
 * records are in one shard at a time, so order per vehicle holds as long as a shard made
 * by a split or merge is read only after its parents are read to their end.
 */
export class KinesisSource implements TelemetrySource {
  readonly name = 'kinesis';
  readonly streamName: string;
  /** Records that did not decode; they are skipped and their position committed with the next. */
  readonly counters = { invalid: 0 };
  private readonly client: KinesisClient;
  private readonly store: KinesisCheckpoints;
  private readonly checkpoints: Map<string, Checkpoint>;
  private readonly shards = new Map<string, ShardState>();
  private listedAt = -Infinity;
  private offset = 0;
  private delivered: Position[] = [];

  constructor(private readonly opts: KinesisSourceOptions) {
    this.streamName = opts.streamName ?? STREAMS.telemetry;
    this.client = new KinesisClient(awsClientConfig(opts));
    this.store = new KinesisCheckpoints(opts.checkpointPath);
    this.checkpoints = this.store.of(this.streamName);
  }

  async poll(max: number): Promise<KinesisRecord[]> {
    if (Date.now() - this.listedAt >= (this.opts.listShardsMs ?? 10_000)) await this.listShards();
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
    const done = end === -1 ? this.delivered.splice(0) : this.delivered.splice(0, end);
    const last = new Map<string, Position>();
    for (const p of done) last.set(p.shardId, p);
    const moved = new Map<string, Checkpoint>();
    for (const p of last.values()) {
      const current = this.checkpoints.get(p.shardId);
      // Re-read rebuild records come before the checkpoint: they must not move it back.
      if (current && BigInt(p.sequence) <= BigInt(current.sequence)) continue;
      moved.set(p.shardId, { sequence: p.sequence, arrivedAt: p.arrivedAt });
    }
    this.store.save(this.streamName, moved);
    for (const [shard, c] of moved) this.checkpoints.set(shard, c);
  }

  /** Each shard and where its reading stands, for health and tests. */
  status(): ShardStatus[] {
    const readable = new Set(this.readable());
    return [...this.shards.values()].map((s) => ({
      shardId: s.id,
      parents: s.parents,
      phase: s.ended ? 'ended' : readable.has(s) ? 'reading' : 'waiting',
    }));
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.store.close();
  }

  private async listShards(): Promise<void> {
    const listed: Shard[] = [];
    let token: string | undefined;
    do {
      // ListShards takes either the stream or a token, never both.
      const out = await this.client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: this.streamName }));
      listed.push(...(out.Shards ?? []));
      token = out.NextToken;
    } while (token);
    const ids = new Set(listed.map((s) => s.ShardId!));
    // A shard past the retention period is gone; a parent that is gone counts as read.
    for (const id of this.shards.keys()) if (!ids.has(id)) this.shards.delete(id);
    for (const s of listed) {
      const id = s.ShardId!;
      let state = this.shards.get(id);
      if (!state) {
        const checkpoint = this.checkpoints.get(id);
        state = {
          id,
          parents: [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => p !== undefined),
          rebuildThrough: checkpoint && this.opts.rebuildMs > 0 ? BigInt(checkpoint.sequence) : undefined,
          ended: false,
          nextReadAt: 0,
          failures: 0,
        };
        this.shards.set(id, state);
      }
      const ending = s.SequenceNumberRange?.EndingSequenceNumber;
      state.endingSeq = ending === undefined ? undefined : BigInt(ending);
    }
    this.listedAt = Date.now();
  }

  private readable(): ShardState[] {
    return [...this.shards.values()]
      .filter((s) => !s.ended && s.parents.every((p) => this.shards.get(p)?.ended ?? true))
      .sort((a, b) => a.id.localeCompare(b.id));
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
        records.push({ ...record, offset, rebuild, shardId: shard.id, sequenceNumber: sequence });
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
    const behind = records.length === limit || (out.MillisBehindLatest ?? 0) > 0;
    shard.nextReadAt = now + (behind ? MIN_READ_SPACING_MS : (this.opts.idleReadMs ?? 1_000));
    return records;
  }

  private async openIterator(shard: ShardState): Promise<string> {
    const checkpoint = this.checkpoints.get(shard.id);
    let start: Pick<GetShardIteratorCommandInput, 'ShardIteratorType' | 'StartingSequenceNumber' | 'Timestamp'>;
    if (shard.lastRead !== undefined) {
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
    return out.ShardIterator!;
  }
}
