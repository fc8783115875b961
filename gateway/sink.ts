import type { Batch } from '../shared/contract/batch.js';
import { encodeStreamRecord } from '../shared/contract/stream-record.js';

export interface SinkHealth {
  ok: boolean;
  detail?: string;
}

/** An accepted batch as every sink is given it: encoded once, by the gateway. */
export interface SinkRecord {
  /** The stream key: the vehicle, so its records stay in order in one partition or shard. */
  key: string;
  /** The stream record (shared/contract/stream-record.ts): a stream sink carries these bytes as they are. */
  value: Buffer;
  /**
   * The gateway's receive time, also inside `value`: where a stream indexes its records by
   * time (Kafka's timestamp, the embedded log's time column), consumers seek by it.
   */
  receivedAt: number;
  /** The batch itself, for a sink that is a view rather than a stream (IoT Core's topics and shadows). */
  batch: Batch;
}

/** `encodedBatch`: the batch's binary encoding when the caller holds it already (see encodeStreamRecord). */
export function sinkRecord(batch: Batch, receivedAt: number, encodedBatch?: Buffer): SinkRecord {
  return { key: batch.vehicle, value: encodeStreamRecord({ vehicle: batch.vehicle, receivedAt, batch }, encodedBatch), receivedAt, batch };
}

/**
 * Where accepted telemetry goes: the embedded stream, Kafka, Kinesis, IoT Core, several at
 * once. The gateway sends PUBACK only once `write` has resolved for every configured sink, so
 * a resolved write must mean "durable on the other side".
 */
export interface Sink {
  readonly name: string;
  start(): Promise<void>;
  write(record: SinkRecord): Promise<void>;
  health(): SinkHealth;
  close(): Promise<void>;
}
