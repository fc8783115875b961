import { type Admin, type Kafka, type Consumer, type EachBatchPayload, type KafkaMessage } from 'kafkajs';
import { decodeStreamRecord, kafkaCarrier } from '../../shared/contract/stream-record.js';
import { STREAMS } from '../../shared/contract/topics.js';
import { kafkaClient } from '../../shared/kafka.js';
import type { Logger } from '../../shared/log.js';
import type { PositionedRecord, PositionedSource, SourcedRecord } from './source.js';

export interface KafkaSourceOptions {
  brokers: string[];
  topic?: string;
  groupId: string;
  clientId?: string;
  /** How far back (in append time) before the committed position to re-read on assignment. */
  rebuildMs: number;
  /**
   * Let a fetched batch go once its records are handed out rather than once they are
   * committed: for a reader that holds records for minutes before it commits them (the
   * archiver), which bounds what it holds itself. Kafka's committed offset still moves only
   * on commit.
   */
  releaseWhenTaken?: boolean;
}

/** A Kafka offset is a position within one partition only (the record's lane). */
export interface KafkaRecord extends PositionedRecord {
  partition: number;
}

/** Short, so a detector that stops gets its partitions moved to the others quickly. */
const SESSION_TIMEOUT_MS = 10_000;
const HEARTBEAT_INTERVAL_MS = 1_000;
/** Batches (one partition each) held for the detector at once: bounds memory. */
const PARTITIONS_AT_ONCE = 8;

/**
 * Telemetry from a Kafka topic as one member of a consumer group. A fetched batch waits in
 * its eachBatch call until the detector has committed it (back-pressure), and Kafka's
 * committed offset moves only when the detector commits. When partitions are assigned, each
 * one is re-read from `rebuildMs` before its committed record, so the windows its previous
 * holder had open are rebuilt here; those records come with `rebuild` set. That includes a
 * partition this member held before the rebalance as well: it may have lost it meanwhile
 * without hearing so (cut off from the network past its session timeout) while another
 * member moved on, so what it remembers is out of date (the detector forgets it, see
 * `assignments`).
 */
export class KafkaSource implements PositionedSource {
  readonly name = 'kafka';
  private readonly kafka: Kafka;
  private readonly topic: string;
  private admin?: Admin;
  private consumer?: Consumer;
  private starting?: Promise<void>;
  private closing = false;
  private assignment: Promise<boolean> = Promise.resolve(true);
  private partitions = new Set<number>();
  /** Group joins so far: each brings an assignment, and the detector forgets what it remembered. */
  assignments = 0;
  /** Fetched and decoded, not yet handed out. */
  private buffer: KafkaRecord[] = [];
  /** Handed out, not yet committed by the detector, in hand-out order. */
  private handedOut: KafkaRecord[] = [];
  /** Per partition, the offset after the last record the detector committed. */
  private handled = new Map<number, number>();
  /** Per partition, Kafka's committed offset: records below it were evaluated before. */
  private committed = new Map<number, number>();
  /** Commits not yet accepted by Kafka, retried with the next one. */
  private uncommitted = new Map<number, { offset: number; receivedAt: number }>();
  private waiters = new Set<() => void>();

  constructor(
    private readonly opts: KafkaSourceOptions,
    private readonly log: Logger,
  ) {
    this.topic = opts.topic ?? STREAMS.telemetry;
    this.kafka = kafkaClient(opts.brokers, opts.clientId ?? 'fleet-detector', log);
  }

  async poll(max: number): Promise<KafkaRecord[]> {
    await this.start();
    const out = this.buffer.splice(0, max);
    this.handedOut.push(...out);
    if (this.opts.releaseWhenTaken && out.length > 0) this.wake();
    return out;
  }

  /** Commits, per partition, everything handed out up to and including `record`. */
  async commit(record: SourcedRecord): Promise<void> {
    const { partition, offset } = record as KafkaRecord;
    const upTo = this.handedOut.findIndex((r) => r.partition === partition && r.offset === offset);
    // Handed out before a rebalance: its partition is read again from the committed offset.
    if (upTo < 0) return;
    await this.commitHandled(this.handedOut.splice(0, upTo + 1));
  }

  async commitLane(record: PositionedRecord): Promise<void> {
    const { partition, offset } = record as KafkaRecord;
    if (!this.handedOut.some((r) => r.partition === partition && r.offset === offset)) return;
    const inLane = (r: KafkaRecord) => r.partition === partition && r.offset <= offset;
    const done = this.handedOut.filter(inLane);
    this.handedOut = this.handedOut.filter((r) => !inLane(r));
    await this.commitHandled(done);
  }

  private async commitHandled(done: KafkaRecord[]): Promise<void> {
    for (const r of done) {
      this.handled.set(r.partition, r.offset + 1);
      // A rebuilt record must not move the committed offset back.
      if (r.offset + 1 > (this.committed.get(r.partition) ?? 0))
        this.uncommitted.set(r.partition, { offset: r.offset + 1, receivedAt: r.receivedAt });
    }
    this.wake();
    if (this.uncommitted.size === 0) return;
    const sending = [...this.uncommitted];
    // The metadata is the committed record's append time: where a new holder rebuilds from.
    await this.consumer!.commitOffsets(
      sending.map(([p, c]) => ({ topic: this.topic, partition: p, offset: String(c.offset), metadata: String(c.receivedAt) })),
    );
    for (const [p, c] of sending) {
      this.committed.set(p, Math.max(c.offset, this.committed.get(p) ?? 0));
      if (this.uncommitted.get(p) === c) this.uncommitted.delete(p);
    }
  }

  /** Per partition held, from the high watermark and the offset committed. */
  async behind(): Promise<Map<string, number>> {
    if (!this.admin) return new Map();
    const offsets = await this.admin.fetchTopicOffsets(this.topic);
    return new Map(
      offsets
        .filter((o) => this.partitions.has(o.partition))
        .map((o) => [String(o.partition), Number(o.high) - (this.committed.get(o.partition) ?? Number(o.low))]),
    );
  }

  async close(): Promise<void> {
    this.closing = true;
    this.wake();
    await this.starting?.catch(() => undefined);
    await this.consumer?.disconnect();
    await this.admin?.disconnect();
  }

  private start(): Promise<void> {
    this.starting ??= (async () => {
      this.admin = this.kafka.admin();
      await this.admin.connect();
      const consumer = this.kafka.consumer({
        groupId: this.opts.groupId,
        sessionTimeout: SESSION_TIMEOUT_MS,
        heartbeatInterval: HEARTBEAT_INTERVAL_MS,
        maxWaitTimeInMs: 1_000,
        // kafkajs restarts a crashed consumer on a timer; one that fires after close() would
        // rejoin the group and keep the process alive.
        retry: { restartOnFailure: async () => !this.closing },
      });
      this.consumer = consumer;
      // Set synchronously, before any batch of the new assignment reaches eachBatch.
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        this.assignment = this.assigned(consumer, payload.memberAssignment[this.topic] ?? []).then(
          () => true,
          (err: Error) => {
            this.log.error({ err: err.message }, 'kafka partition assignment failed; the batch is retried');
            return false;
          },
        );
      });
      await consumer.connect();
      await consumer.subscribe({ topic: this.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: PARTITIONS_AT_ONCE,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    })().catch(async (err: Error) => {
      this.starting = undefined;
      await this.consumer?.disconnect().catch(() => undefined);
      await this.admin?.disconnect().catch(() => undefined);
      throw err;
    });
    return this.starting;
  }

  private async assigned(consumer: Consumer, partitions: number[]): Promise<void> {
    this.partitions = new Set(partitions);
    this.assignments++;
    this.handedOut = [];
    this.handled.clear();
    this.committed.clear();
    this.uncommitted.clear();
    const [offsets] = await this.admin!.fetchOffsets({ groupId: this.opts.groupId, topics: [this.topic] });
    const seeks: { partition: number; offset: number }[] = [];
    for (const { partition, offset, metadata } of offsets?.partitions ?? []) {
      const committed = Number(offset);
      // -1: never committed; the group starts from the beginning and nothing was evaluated.
      if (!this.partitions.has(partition) || committed < 0) continue;
      this.committed.set(partition, committed);
      const committedAt = Number(metadata);
      if (!(committedAt > 0)) continue;
      const [found] = (await this.admin!.fetchTopicOffsetsByTimestamp(this.topic, committedAt - this.opts.rebuildMs)).filter(
        (o) => o.partition === partition,
      );
      const from = Math.min(Number(found?.offset ?? committed), committed);
      if (from < committed) seeks.push({ partition, offset: from });
    }
    for (const s of seeks) consumer.seek({ topic: this.topic, partition: s.partition, offset: String(s.offset) });
    this.log.info({ topic: this.topic, partitions, rebuild: seeks }, 'kafka partitions assigned');
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (!(await this.assignment)) throw new Error('kafka partition assignment failed');
    // Fetched before a rebuild seek: the seek's own fetch brings these again.
    if (payload.isStale() || this.closing) return;
    const { partition } = batch;
    const records = batch.messages.flatMap((m) => this.decode(partition, m));
    const last = records.at(-1)?.offset ?? -1;
    this.buffer.push(...records);
    const mine = new Set(records);
    try {
      const held = () => (this.opts.releaseWhenTaken ? this.buffer.some((r) => mine.has(r)) : (this.handled.get(partition) ?? 0) <= last);
      while (held()) {
        // Unresolved, so whatever the detector did not take is fetched again.
        if (this.closing || !payload.isRunning() || payload.isStale()) return;
        await payload.heartbeat();
        await this.nextChange(HEARTBEAT_INTERVAL_MS);
      }
      payload.resolveOffset(batch.lastOffset());
    } finally {
      this.buffer = this.buffer.filter((r) => !mine.has(r));
    }
  }

  private decode(partition: number, m: KafkaMessage): KafkaRecord[] {
    const offset = Number(m.offset);
    try {
      const vehicle = m.key?.toString('utf8');
      if (!vehicle || !m.value) throw new Error('record has no key (vehicle) or no value');
      const record = decodeStreamRecord(m.value, kafkaCarrier(vehicle, m.headers, m.timestamp));
      const rebuild = offset < (this.committed.get(partition) ?? 0);
      return [
        { ...record, partition, offset, rebuild, lane: String(partition), position: m.offset, size: m.value.length + vehicle.length },
      ];
    } catch (err) {
      this.log.error({ topic: this.topic, partition, offset, err: (err as Error).message }, 'malformed telemetry record skipped');
      return [];
    }
  }

  private nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
