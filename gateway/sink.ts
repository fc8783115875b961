import type { Batch } from '../shared/contract/batch.js';

export interface SinkHealth {
  ok: boolean;
  detail?: string;
}

/**
 * Where accepted telemetry goes: the embedded stream here; Kafka, Kinesis and IoT Core
 * later, several at once. The gateway sends PUBACK only once `write` has resolved for
 * every configured sink, so a resolved write must mean "durable on the other side".
 */
export interface Sink {
  readonly name: string;
  start(): Promise<void>;
  write(batch: Batch, receivedAt: number): Promise<void>;
  health(): SinkHealth;
  close(): Promise<void>;
}
