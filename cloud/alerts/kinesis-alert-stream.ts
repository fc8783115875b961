import { GetRecordsCommand, GetShardIteratorCommand, KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { awsClientConfig, type AwsOptions } from '../../shared/aws-client-config.js';
import { backoffDelay } from '../../shared/backoff.js';
import { STREAMS } from '../../shared/contract/topics.js';
import type { Logger } from '../../shared/log.js';
import type { AlertEvent } from '../../shared/rules/engine.js';
import { ensureStream, listShards } from '../../shared/kinesis-stream.js';
import { sleep } from '../../shared/sleep.js';
import { KinesisCheckpoints } from '../sources/kinesis-checkpoints.js';
import { alertEventVehicle, decodeAlertEvent, encodeAlertEvent } from './alert-events.js';
import type { AlertStream } from './alert-stream.js';

export interface KinesisAlertStreamOptions extends AwsOptions {
  streamName?: string;
  /** SQLite file of the consumer's checkpoints; needed only by `consume`. */
  checkpointPath?: string;
  /** Pause before reading a caught-up shard again. */
  idleReadMs?: number;
}

/** Alerts are few: one shard carries a large fleet's (1,000 records/s). More can be added by resharding. */
const SHARDS_WHEN_CREATED = 1;
const WRITE_ATTEMPTS = 5;
/** PutRecords takes at most 500 records (an alert event is far below the 5 MiB per call). */
const MAX_RECORDS_PER_CALL = 500;
const CREATE_TIMEOUT_MS = 120_000;
/** Kinesis allows five GetRecords calls per second per shard. */
const MIN_READ_SPACING_MS = 200;
const MAX_ERROR_BACKOFF_MS = 10_000;
/** How often the shard list is refreshed to see a resharding's children. */
const LIST_SHARDS_MS = 10_000;

interface ShardState {
  id: string;
  parents: string[];
  iterator?: string;
  /** The last record handled: where a new iterator resumes. */
  lastRead?: string;
  ended: boolean;
}

/**
 * `fleet.alerts` on a Kinesis stream, keyed by vehicle. A write resolves once PutRecords
 * stored every event. The consumer reads every shard (a child only after its parents ended)
 * and checkpoints a shard in SQLite after `handle` resolved, so a crash redelivers rather
 * than skips. It holds no lease: run one dispatcher per stream.
 */
export class KinesisAlertStream implements AlertStream {
  readonly name = 'kinesis';
  readonly streamName: string;
  private readonly client: KinesisClient;
  private readonly shards = new Map<string, ShardState>();
  private checkpoints?: KinesisCheckpoints;
  private reading?: Promise<void>;
  /** Aborted on close: ends the waits of the read loop and of write retries. */
  private readonly stopping = new AbortController();
  private listedAt = -Infinity;

  constructor(
    private readonly opts: KinesisAlertStreamOptions,
    private readonly log: Logger,
  ) {
    this.streamName = opts.streamName ?? STREAMS.alerts;
    this.client = new KinesisClient(awsClientConfig(opts));
  }

  async start(): Promise<void> {
    await ensureStream(this.client, this.streamName, {
      shards: SHARDS_WHEN_CREATED,
      timeoutMs: CREATE_TIMEOUT_MS,
      signal: this.stopping.signal,
    });
  }

  /**
   * PutRecords calls by rounds, a round holding at most one event per vehicle: a failed
   * record is retried before the vehicle's next event is sent, so order per vehicle holds.
   */
  async write(events: AlertEvent[]): Promise<void> {
    const rounds: AlertEvent[][] = [];
    const depth = new Map<string, number>();
    for (const e of events) {
      const v = alertEventVehicle(e);
      const k = depth.get(v) ?? 0;
      depth.set(v, k + 1);
      (rounds[k] ??= []).push(e);
    }
    for (const round of rounds)
      for (let i = 0; i < round.length; i += MAX_RECORDS_PER_CALL) await this.put(round.slice(i, i + MAX_RECORDS_PER_CALL));
  }

  private async put(events: AlertEvent[]): Promise<void> {
    let pending = events;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) await sleep(backoffDelay(attempt - 1, 100, 2_000), this.stopping.signal);
      let failed: string | undefined;
      try {
        const out = await this.client.send(
          new PutRecordsCommand({
            StreamName: this.streamName,
            Records: pending.map((e) => ({ PartitionKey: alertEventVehicle(e), Data: Buffer.from(encodeAlertEvent(e)) })),
          }),
        );
        const results = out.Records ?? [];
        failed = results.find((r) => r.ErrorCode)?.ErrorMessage;
        pending = pending.filter((_, i) => results[i]?.SequenceNumber === undefined);
      } catch (err) {
        failed = `${(err as Error).name}: ${(err as Error).message}`;
      }
      if (pending.length > 0 && attempt + 1 >= WRITE_ATTEMPTS)
        throw new Error(`writing ${pending.length} alert events to Kinesis stream ${this.streamName}: ${failed ?? 'not stored'}`);
    }
  }

  async consume(handle: (events: AlertEvent[]) => Promise<void>): Promise<void> {
    if (this.opts.checkpointPath === undefined) throw new Error('consuming a Kinesis alert stream needs a checkpoint file');
    this.checkpoints = new KinesisCheckpoints(this.opts.checkpointPath);
    await this.listShards();
    this.reading = this.readLoop(handle);
  }

  async close(): Promise<void> {
    this.stopping.abort();
    await this.reading;
    this.client.destroy();
    this.checkpoints?.close();
  }

  private async readLoop(handle: (events: AlertEvent[]) => Promise<void>): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      let behind = false;
      try {
        if (Date.now() - this.listedAt >= LIST_SHARDS_MS) await this.listShards();
        for (const shard of this.readable()) behind = (await this.readShard(shard, handle)) || behind;
        failures = 0;
      } catch (err) {
        // The shard's next read opens a fresh iterator after the last record handled.
        for (const s of this.shards.values()) s.iterator = undefined;
        this.log.warn({ stream: this.streamName, err: (err as Error).message }, 'kinesis alert stream read failed, retrying');
        await sleep(backoffDelay(failures++, MIN_READ_SPACING_MS, MAX_ERROR_BACKOFF_MS), this.stopping.signal);
        continue;
      }
      await sleep(behind ? MIN_READ_SPACING_MS : (this.opts.idleReadMs ?? 500), this.stopping.signal);
    }
  }

  /** Reads one batch of a shard, hands it over and checkpoints it; true when more is waiting. */
  private async readShard(shard: ShardState, handle: (events: AlertEvent[]) => Promise<void>): Promise<boolean> {
    shard.iterator ??= (
      await this.client.send(
        new GetShardIteratorCommand({
          StreamName: this.streamName,
          ShardId: shard.id,
          ...(shard.lastRead === undefined
            ? { ShardIteratorType: 'TRIM_HORIZON' }
            : { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: shard.lastRead }),
        }),
      )
    ).ShardIterator;
    const out = await this.client.send(new GetRecordsCommand({ ShardIterator: shard.iterator }));
    const records = out.Records ?? [];
    const events: AlertEvent[] = [];
    for (const r of records) {
      try {
        events.push(decodeAlertEvent(r.Data ?? new Uint8Array()));
      } catch (err) {
        this.log.warn({ stream: this.streamName, vehicle: r.PartitionKey, err: (err as Error).message }, 'alert event refused');
      }
    }
    if (events.length > 0) await handle(events);
    const last = records.at(-1);
    if (last?.SequenceNumber !== undefined) {
      shard.lastRead = last.SequenceNumber;
      const arrivedAt = last.ApproximateArrivalTimestamp?.getTime() ?? Date.now();
      this.checkpoints!.save(this.streamName, new Map([[shard.id, { sequence: last.SequenceNumber, arrivedAt }]]));
    }
    shard.iterator = out.NextShardIterator ?? undefined;
    // A closed shard (split or merged) ends with no next iterator; its children come next.
    if (shard.iterator === undefined) {
      shard.ended = true;
      this.listedAt = -Infinity;
    }
    return records.length > 0 || (out.MillisBehindLatest ?? 0) > 0;
  }

  private async listShards(): Promise<void> {
    const listed = await listShards(this.client, this.streamName);
    const saved = this.checkpoints?.of(this.streamName);
    for (const s of listed) {
      const id = s.ShardId!;
      if (this.shards.has(id)) continue;
      const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => p !== undefined);
      this.shards.set(id, { id, parents, lastRead: saved?.get(id)?.sequence, ended: false });
    }
    this.listedAt = Date.now();
  }

  /** Shards whose parents were read to their end (or are gone past retention). */
  private readable(): ShardState[] {
    return [...this.shards.values()].filter((s) => !s.ended && s.parents.every((p) => this.shards.get(p)?.ended ?? true));
  }
}
