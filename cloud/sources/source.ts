import type { StreamRecord } from '../../shared/stream-log.js';

export interface SourcedRecord extends StreamRecord {
  /**
   * Re-read after a restart to rebuild window state: its readings were stored and
   * evaluated before, so they feed the windows again but raise nothing new in the store.
   */
  rebuild: boolean;
}

/**
 * Where the detector reads telemetry from: the embedded stream here; Kafka consumer
 * groups and Kinesis shards later. Records come in order per vehicle.
 */
export interface TelemetrySource {
  readonly name: string;
  /** Up to `max` records, or none when caught up. */
  poll(max: number): Promise<SourcedRecord[]>;
  /** Everything up to this record's position has been fully handled. */
  commit(record: StreamRecord): Promise<void>;
  close(): Promise<void>;
}
