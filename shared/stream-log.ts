import type Database from 'better-sqlite3';
import { openDatabase, type Migration } from './sqlite.js';

/** One entry of the log: a stream record's bytes under its key, as a Kafka record is. */
export interface LogEntry {
  offset: number;
  /** The vehicle. */
  key: string;
  /** The stream record (shared/contract/stream-record.ts); entries of earlier releases hold a bare batch. */
  value: Buffer;
  /** The gateway's receive time: the log's time index, which consumers seek by as Kafka's timestamp. */
  receivedAt: number;
}

/**
 * The log's schema, one step per release that changed it (see shared/sqlite.ts). The first is the
 * schema as it stood before versions were kept, so it adopts such a file unchanged.
 */
const STREAM_LOG_MIGRATIONS: Migration[] = [
  `CREATE TABLE IF NOT EXISTS telemetry (
     offset INTEGER PRIMARY KEY AUTOINCREMENT, vehicle TEXT NOT NULL, received_at INTEGER NOT NULL, payload BLOB NOT NULL);
   CREATE INDEX IF NOT EXISTS telemetry_by_time ON telemetry (received_at);
   CREATE TABLE IF NOT EXISTS consumers (name TEXT PRIMARY KEY, offset INTEGER NOT NULL) WITHOUT ROWID;`,
];

/**
 * The embedded stream: an append-only SQLite log standing where Kafka or Kinesis stand
 * past one machine. The gateway appends, detectors in this or other processes read by
 * offset and keep their own committed position here, like a consumer group would. It
 * carries records as opaque bytes, as Kafka does; what they hold is stream-record.ts's.
 */
export class StreamLog {
  private readonly db: Database.Database;
  private readonly st;

  constructor(path: string) {
    // PUBACK follows this commit, so it must survive a power cut, not only a crash.
    this.db = openDatabase(path, 'FULL', STREAM_LOG_MIGRATIONS);
    this.st = {
      insert: this.db.prepare('INSERT INTO telemetry (vehicle, received_at, payload) VALUES (?, ?, ?)'),
      read: this.db.prepare(
        'SELECT offset, vehicle AS key, received_at AS receivedAt, payload AS value FROM telemetry WHERE offset > ? ORDER BY offset LIMIT ?',
      ),
      offsetBefore: this.db.prepare('SELECT max(offset) AS o FROM telemetry WHERE received_at < ?').pluck(),
      lastOffset: this.db.prepare('SELECT max(offset) FROM telemetry').pluck(),
      receivedAtOf: this.db.prepare('SELECT received_at FROM telemetry WHERE offset = ?').pluck(),
      committed: this.db.prepare('SELECT offset FROM consumers WHERE name = ?').pluck(),
      commit: this.db.prepare(
        'INSERT INTO consumers (name, offset) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET offset = excluded.offset',
      ),
    };
  }

  /** Appends records in one transaction; when it returns they are durable. */
  append(entries: Omit<LogEntry, 'offset'>[]): void {
    this.db.transaction(() => {
      for (const e of entries) this.st.insert.run(e.key, e.receivedAt, e.value);
    })();
  }

  readAfter(offset: number, limit: number): LogEntry[] {
    return this.st.read.all(offset, limit) as LogEntry[];
  }

  /** The last offset appended before `ts` (like Kafka's offsetsForTimes), to rebuild windows. */
  offsetBefore(ts: number): number {
    return (this.st.offsetBefore.get(ts) as number | null) ?? 0;
  }

  /** The offset of the last record appended (0 when empty). */
  lastOffset(): number {
    return (this.st.lastOffset.get() as number | null) ?? 0;
  }

  receivedAtOf(offset: number): number | undefined {
    return this.st.receivedAtOf.get(offset) as number | undefined;
  }

  committed(consumer: string): number {
    return (this.st.committed.get(consumer) as number | undefined) ?? 0;
  }

  commit(consumer: string, offset: number): void {
    this.st.commit.run(consumer, offset);
  }

  close(): void {
    this.db.close();
  }
}
