import type { StreamRecord } from '../../shared/contract/stream-record.js';
import type { Health } from '../../shared/ops-server.js';

/** A stream record as a source hands it out: decoded, with its position in the stream. */
export interface SourcedRecord extends StreamRecord {
  /** Position in the source's own order (the embedded log's offset, a Kafka offset within its partition, a count for Kinesis). */
  offset: number;
  /**
   * Re-read after a restart to rebuild window state: its readings were stored and
   * evaluated before, so they feed the windows again but raise nothing new in the store.
   */
  rebuild: boolean;
}

/**
 * Where the detector reads telemetry from: the embedded stream, Kafka consumer groups or
 * Kinesis shards. Records come in order per vehicle; each source decodes them with
 * shared/contract/stream-record.ts.
 */
export interface TelemetrySource {
  /**
   * How many times this source's share of the stream has been assigned (a consumer group's
   * rebalances), for sources whose share changes; the detector forgets its vehicles at each
   * change, and the records of every partition come again from two windows back to rebuild.
   */
  readonly assignments?: number;
  readonly name: string;
  /** Up to `max` records, or none when caught up. */
  poll(max: number): Promise<SourcedRecord[]>;
  /** Everything up to this record's position has been fully handled. */
  commit(record: SourcedRecord): Promise<void>;
  /** Hands out again, on the next polls, everything handed out and not committed: the detector failed to handle it. */
  rewind?(): Promise<void>;
  /** Detail for the detector's health endpoint, where the source has any (a Kinesis reader's shards); `ok: false` makes the detector unhealthy. */
  health?(): Health;
  close(): Promise<void>;
}
