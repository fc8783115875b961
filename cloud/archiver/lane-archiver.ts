import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../shared/log.js';
import type { ArchiveStore } from '../archive/object-store.js';
import type { PositionedRecord } from '../sources/source.js';
import type { ReceivedReading } from '../store.js';
import { headKey, intentKey, intentPrefix, positionValue, segmentFileKey, START } from './archive-keys.js';
import { DedupeState, type DedupeJson } from './dedupe-state.js';
import { segmentContent, type PartitionBy, type SegmentContent, type SegmentIntent } from './segment.js';

const dedupeSchema = z.record(z.string(), z.array(z.tuple([z.number().int(), z.number().int()])));
const intentSchema = z.object({ first: z.string(), last: z.string(), before: dedupeSchema, after: dedupeSchema });
const headSchema = z.object({ after: z.string(), dedupe: dedupeSchema, receivedAt: z.number() });

/** A lane's head: everything up to `after` is archived. */
export type LaneHead = z.infer<typeof headSchema>;

/** Intents kept behind a lane's head, so a stale head or a replay finds the chain of cuts it needs. */
export const INTENTS_KEPT = 100;
/** Older intents are pruned every this many segments of a lane. */
const PRUNE_EVERY = 25;

/** What a written segment did, for the metrics. */
export interface SegmentWritten {
  lane: string;
  readings: number;
  duplicates: number;
  files: number;
  bytes: number;
  /** Cut where an earlier writer's intent said (a replay, or another archiver's cut). */
  adopted: boolean;
  /** Receive time of the segment's first and last records. */
  firstReceivedAt: number;
  lastReceivedAt: number;
}

/** What a lane needs from the archiver it belongs to. */
export interface LaneContext {
  store: ArchiveStore;
  /** Names the bookkeeping under `_fleet_archive/`: the topic or stream read. */
  streamName: string;
  stagingDir: string;
  partitionBy: PartitionBy;
  /** Writes rows to a local Parquet file, whole. */
  writeFile(rows: ReceivedReading[], localPath: string): Promise<void>;
  /** Commits the lane at the source up to this record. */
  commit(record: PositionedRecord): Promise<void>;
  written(segment: SegmentWritten): Promise<void>;
  log: Logger;
}

async function readJson<T>(store: ArchiveStore, key: string, schema: z.ZodType<T>): Promise<T | undefined> {
  const body = await store.get(key);
  if (body === undefined) return undefined;
  const parsed = schema.safeParse(JSON.parse(body.toString('utf8')));
  if (!parsed.success) throw new Error(`${store.location}/${key}: not an archiver object this release reads: ${parsed.error.message}`);
  return parsed.data;
}

export const readHead = (store: ArchiveStore, key: string) => readJson(store, key, headSchema);

/**
 * One lane of the stream (a Kafka partition, a Kinesis shard, the embedded log) cut into
 * segments and archived exactly once. The archive decides where the lane stands: its head
 * says what is archived, and the intent after it, where one was written, says where the
 * next segment ends. A lane holds its staged records until a segment takes them.
 */
export class LaneArchiver {
  private loaded = false;
  /** Position of the last archived record (or START) and the dedupe state after it. */
  private after = START;
  private dedupe = DedupeState.empty();
  /** The intent written for the segment after `after`, once known: its cut is the lane's next. */
  private pinned?: SegmentIntent;
  private staged: PositionedRecord[] = [];
  /** The last record handed over, to see the source go back (a rebalance, a lease taken again). */
  private lastSeen?: bigint;
  /** The last record skipped as archived before, to commit once nothing is staged before it. */
  private skippedUpTo?: PositionedRecord;
  private segments = 0;
  stagedBytes = 0;
  /** When the oldest staged record was staged (ms), for the flush age. */
  stagedSince?: number;
  /** Receive time of the last record committed. */
  committedReceivedAt?: number;

  constructor(
    readonly lane: string,
    private readonly ctx: LaneContext,
  ) {}

  /** Waiting for records up to another writer's cut: a flush cannot cut this lane shorter. */
  get waitingForCut(): boolean {
    return this.pinned !== undefined;
  }

  get stagedRecords(): number {
    return this.staged.length;
  }

  /** Takes a record of this lane; returns false when it was archived before (skipped). */
  async accept(record: PositionedRecord, now: number): Promise<boolean> {
    const p = BigInt(record.position);
    if (this.lastSeen !== undefined && p <= this.lastSeen) {
      // The source reads the lane again from its commit: start over from what the archive says.
      this.ctx.log.info({ lane: this.lane, position: record.position }, 'lane read again from its commit; staged records dropped');
      this.staged = [];
      this.stagedBytes = 0;
      this.stagedSince = undefined;
      this.loaded = false;
    }
    if (!this.loaded) await this.load();
    this.lastSeen = p;
    if (p <= positionValue(this.after)) {
      this.skippedUpTo = record;
      return false;
    }
    this.staged.push(record);
    this.stagedBytes += record.size;
    this.stagedSince ??= now;
    return true;
  }

  /** Commits records skipped as archived before, which no segment will commit. */
  async commitSkipped(): Promise<void> {
    const r = this.skippedUpTo;
    if (r === undefined) return;
    this.skippedUpTo = undefined;
    await this.ctx.commit(r);
    this.committedReceivedAt = r.receivedAt;
  }

  /**
   * Writes the segments the lane can: those an intent already cuts, and with `cut` one of
   * everything staged (or up to an earlier writer's cut).
   */
  async flush(cut: boolean, now: number): Promise<void> {
    while (this.staged.length > 0) {
      if (!this.pinned) {
        if (!cut) return;
        if (await this.overtaken()) continue;
        const content = segmentContent(this.staged, this.dedupe, this.ctx.partitionBy);
        const intent: SegmentIntent = {
          first: this.staged[0]!.position,
          last: this.staged.at(-1)!.position,
          before: this.dedupe.toJson(),
          after: content.after.toJson(),
        };
        const key = intentKey(this.ctx.streamName, this.lane, this.after);
        if (await this.ctx.store.putIfAbsent(key, Buffer.from(JSON.stringify(intent)))) {
          await this.write(intent, this.staged.length, now, content);
          continue;
        }
        this.pinned = await this.intent(this.after);
        if (!this.pinned) throw new Error(`${key}: refused as present, then not found`);
      }
      const intent = this.pinned;
      const first = BigInt(this.staged[0]!.position);
      if (first !== BigInt(intent.first)) {
        await this.catchUp();
        continue;
      }
      const end = this.staged.findIndex((r) => BigInt(r.position) >= BigInt(intent.last));
      if (end < 0) return; // the cut is further on: stage more first
      if (BigInt(this.staged[end]!.position) !== BigInt(intent.last)) {
        // The source skipped ahead within what is staged (it read the lane again from another
        // archiver's commit): what is staged up to the cut was archived by that archiver.
        this.dropStagedThrough(BigInt(intent.last));
        this.after = intent.last;
        this.dedupe = DedupeState.fromJson(intent.after);
        this.pinned = await this.intent(this.after);
        continue;
      }
      await this.write(intent, end + 1, now);
    }
  }

  /**
   * Before cutting a segment of its own: whether another archiver went past this one's state
   * meanwhile (this one stalled, a zombie, for longer than the intents behind the head are
   * kept). What is staged up to the head is archived already; the rest follows the head.
   */
  private async overtaken(): Promise<boolean> {
    const head = await readHead(this.ctx.store, headKey(this.ctx.streamName, this.lane));
    if (!head || positionValue(head.after) <= positionValue(this.after)) return false;
    this.ctx.log.info({ lane: this.lane, after: this.after, head: head.after }, 'lane overtaken by another archiver; following its head');
    this.dropStagedThrough(BigInt(head.after));
    this.after = head.after;
    this.dedupe = DedupeState.fromJson(head.dedupe);
    return true;
  }

  /** The lane's state from the archive: its head, or the start. */
  private async load(): Promise<void> {
    const head = await readHead(this.ctx.store, headKey(this.ctx.streamName, this.lane));
    this.after = head?.after ?? START;
    this.dedupe = head ? DedupeState.fromJson(head.dedupe) : DedupeState.empty();
    this.pinned = undefined;
    this.loaded = true;
  }

  private intent(after: string): Promise<SegmentIntent | undefined> {
    return readJson(this.ctx.store, intentKey(this.ctx.streamName, this.lane, after), intentSchema);
  }

  /**
   * The first staged record is not the first of the segment after `after`: the archive went
   * on without this archiver (another held the lane, and the source now reads from its
   * commit). Follows the chain of intents to the cut just before that record.
   */
  private async catchUp(): Promise<void> {
    const p = BigInt(this.staged[0]!.position);
    let next = this.pinned;
    let state: DedupeJson = this.dedupe.toJson();
    while (next && BigInt(next.last) < p) {
      this.after = next.last;
      state = next.after;
      next = await this.intent(this.after);
    }
    if (next && BigInt(next.first) !== p) {
      throw new Error(
        `lane ${this.lane}: record ${p} is not where the archived segment ${next.first}..${next.last} after ${this.after} says: the stream and ${this.ctx.store.location} disagree`,
      );
    }
    this.dedupe = DedupeState.fromJson(next ? next.before : state);
    this.pinned = next;
    this.ctx.log.info({ lane: this.lane, after: this.after }, 'lane caught up with the archive');
  }

  /** Drops staged records another archiver archived; like skipped ones, they are committed with the next round. */
  private dropStagedThrough(position: bigint): void {
    const keep = this.staged.findIndex((r) => BigInt(r.position) > position);
    const dropped = keep < 0 ? this.staged : this.staged.slice(0, keep);
    if (dropped.length > 0) this.skippedUpTo = dropped.at(-1);
    this.staged = keep < 0 ? [] : this.staged.slice(keep);
    this.stagedBytes = this.staged.reduce((n, r) => n + r.size, 0);
    if (this.staged.length === 0) this.stagedSince = undefined;
  }

  /**
   * The segment's files, then the head, then the source's commit: a crash anywhere replays
   * into the same objects. `fresh`: the content this archiver cut and wrote the intent for;
   * without it the segment is one an earlier writer cut (adopted), worked out from its intent.
   */
  private async write(intent: SegmentIntent, count: number, now: number, fresh?: SegmentContent): Promise<void> {
    const records = this.staged.slice(0, count);
    const adopted = fresh === undefined;
    const content = fresh ?? segmentContent(records, DedupeState.fromJson(intent.before), this.ctx.partitionBy);
    let bytes = 0;
    for (const [hour, rows] of content.hours) {
      const local = join(this.ctx.stagingDir, `${this.lane}-${intent.first}-${intent.last}-${hour.replace('/', '-')}.parquet`);
      try {
        await this.ctx.writeFile(rows, local);
        bytes += (await stat(local)).size;
        await this.ctx.store.putFile(segmentFileKey(hour, this.lane, intent.first, intent.last), local);
      } finally {
        await rm(local, { force: true });
      }
    }
    const last = records.at(-1)!;
    await this.writeHead({ after: intent.last, dedupe: content.after.toJson(), receivedAt: last.receivedAt });
    await this.ctx.written({
      lane: this.lane,
      readings: content.readings,
      duplicates: content.duplicates,
      files: content.hours.size,
      bytes,
      adopted,
      firstReceivedAt: records[0]!.receivedAt,
      lastReceivedAt: last.receivedAt,
    });
    this.staged = this.staged.slice(count);
    this.stagedBytes = this.staged.reduce((n, r) => n + r.size, 0);
    this.stagedSince = this.staged.length > 0 ? now : undefined;
    this.after = intent.last;
    this.dedupe = content.after;
    this.pinned = undefined;
    await this.ctx.commit(last);
    this.committedReceivedAt = last.receivedAt;
    // Dropped before this segment: committed with it.
    if (this.skippedUpTo && BigInt(this.skippedUpTo.position) <= BigInt(last.position)) this.skippedUpTo = undefined;
    if (++this.segments % PRUNE_EVERY === 0) await this.pruneIntents();
  }

  /**
   * A head never moves back: an archiver that held the lane for a while and writes a segment
   * late (a zombie) finds a newer head and leaves it. Were it to win the race anyway, the
   * next reader would only rewrite segments the intents still cut the same way.
   */
  private async writeHead(head: LaneHead): Promise<void> {
    const key = headKey(this.ctx.streamName, this.lane);
    const current = await readHead(this.ctx.store, key);
    if (current && positionValue(current.after) >= positionValue(head.after)) return;
    await this.ctx.store.put(key, Buffer.from(JSON.stringify(head)));
  }

  /** Drops intents well behind the head, keeping the last INTENTS_KEPT so the chain stays replayable. */
  private async pruneIntents(): Promise<void> {
    const prefix = intentPrefix(this.ctx.streamName, this.lane);
    const behind: { key: string; at: bigint }[] = [];
    for await (const o of this.ctx.store.list(prefix)) {
      const at = positionValue(o.key.slice(prefix.length, -'.json'.length));
      if (at < positionValue(this.after)) behind.push({ key: o.key, at });
    }
    behind.sort((a, b) => (a.at < b.at ? -1 : 1));
    for (const { key } of behind.slice(0, Math.max(0, behind.length - INTENTS_KEPT))) await this.ctx.store.delete(key);
  }
}
