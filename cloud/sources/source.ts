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
 * A record's stable place in the stream, the same on every read of it: the archiver names
 * what it writes by it, so a replay after a crash rewrites the same objects.
 */
export interface PositionedRecord extends SourcedRecord {
  /** The ordered part of the stream it is in: a Kafka partition's number, a Kinesis shard's id, `log` for the embedded log. */
  lane: string;
  /** Its place within the lane as a decimal integer (compare with BigInt): a Kafka offset, a Kinesis sequence number, the log's offset. */
  position: string;
  /** Its size in the stream, in bytes: what a reader that holds records bounds. */
  size: number;
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

/**
 * A source whose records carry their place in the stream, and which commits one lane at a
 * time: a reader that holds some lanes' records for minutes before handling them (the
 * archiver) must not commit them along with another lane's.
 */
export interface PositionedSource extends TelemetrySource {
  poll(max: number): Promise<PositionedRecord[]>;
  /** Everything of this record's lane up to it has been handled; other lanes stay where they are. */
  commitLane(record: PositionedRecord): Promise<void>;
  /** Per lane, records in the stream past the commit, where the source can tell without cost. */
  behind?(): Promise<Map<string, number>>;
}
