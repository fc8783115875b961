import type { AlertEvent } from '../../shared/rules/engine.js';
import type { AlertStreamWriter } from './alert-channel.js';

/**
 * `fleet.alerts`, keyed by vehicle: the detector writes every alert event (`--dispatch kafka`
 * or `kinesis`), `fleet dispatcher` processes consume them. Implementations side by side:
 * kafka-alert-stream.ts (a consumer group) and kinesis-alert-stream.ts (every shard, with
 * checkpoints in SQLite). A replayed event carries the same alert id, so consumers
 * that record deliveries by id never act on it twice.
 */
export interface AlertStream extends AlertStreamWriter {
  readonly name: 'kafka' | 'kinesis';
  /**
   * Hands each batch of events to `handle`, in order per vehicle; the consumer's position
   * moves only after `handle` resolved, so a crash redelivers rather than skips. Resolves
   * once consuming has begun; it goes on until `close()`.
   */
  consume(handle: (events: AlertEvent[]) => Promise<void>): Promise<void>;
}
