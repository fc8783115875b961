import type Database from 'better-sqlite3';
import { openDatabase } from './sqlite.js';
import type { Batch } from './contract/batch.js';
import { decodeBatch, encodeBatch } from './contract/codec.js';

/** One telemetry batch as the stream carries it, keyed by vehicle like a Kafka record. */
export interface StreamRecord {
  offset: number;
  vehicle: string;
  /** When the gateway accepted it (the stream's append time). */
  receivedAt: number;
  batch: Batch;
}

/**
 * The embedded stream: an append-only SQLite log standing where Kafka or Kinesis stand
 * past one machine. The gateway appends, detectors in this or other processes read by
 * offset and keep their own committed position here, like a consumer group would.
 */
export class StreamLog {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly read: Database.Statement;

  constructor(path: string) {
    // PUBACK follows this commit, so it must survive a power cut, not only a crash.
    this.db = openDatabase(path, 'FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS telemetry (
        offset INTEGER PRIMARY KEY AUTOINCREMENT, vehicle TEXT NOT NULL, received_at INTEGER NOT NULL, payload BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS telemetry_by_time ON telemetry (received_at);
      CREATE TABLE IF NOT EXISTS consumers (name TEXT PRIMARY KEY, offset INTEGER NOT NULL) WITHOUT ROWID;
    `);
    this.insert = this.db.prepare('INSERT INTO telemetry (vehicle, received_at, payload) VALUES (?, ?, ?)');
    this.read = this.db.prepare('SELECT offset, vehicle, received_at, payload FROM telemetry WHERE offset > ? ORDER BY offset LIMIT ?');
  }

  /** Appends batches in one transaction; when it returns they are durable. */
  append(batches: { batch: Batch; receivedAt: number }[]): void {
    this.db.transaction(() => {
      for (const { batch, receivedAt } of batches) this.insert.run(batch.vehicle, receivedAt, encodeBatch(batch));
    })();
  }

  readAfter(offset: number, limit: number): StreamRecord[] {
    return (this.read.all(offset, limit) as { offset: number; vehicle: string; received_at: number; payload: Buffer }[]).map(
      (row) => ({
        offset: row.offset,
        vehicle: row.vehicle,
        receivedAt: row.received_at,
        // Validated on the way in; the arrival time is passed as "now" so old records still decode.
        batch: decodeBatch(row.vehicle, row.payload, row.received_at),
      }),
    );
  }

  /** The last offset appended before `ts` (like Kafka's offsetsForTimes), to rebuild windows. */
  offsetBefore(ts: number): number {
    const row = this.db.prepare('SELECT max(offset) AS o FROM telemetry WHERE received_at < ?').get(ts) as { o: number | null };
    return row.o ?? 0;
  }

  receivedAtOf(offset: number): number | undefined {
    return (this.db.prepare('SELECT received_at AS t FROM telemetry WHERE offset = ?').get(offset) as { t: number } | undefined)?.t;
  }

  committed(consumer: string): number {
    return (this.db.prepare('SELECT offset FROM consumers WHERE name = ?').get(consumer) as { offset: number } | undefined)?.offset ?? 0;
  }

  commit(consumer: string, offset: number): void {
    this.db
      .prepare('INSERT INTO consumers (name, offset) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET offset = excluded.offset')
      .run(consumer, offset);
  }

  close(): void {
    this.db.close();
  }
}
