import { closeSync, fsync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import type Database from 'better-sqlite3';
import { openDatabase, type Migration } from './sqlite.js';

const fsyncAsync = promisify(fsync);

/**
 * When an append is durable. 'commit': when it returns (synchronous=FULL: SQLite fsyncs the
 * WAL inside the commit, and the thread waits for the disk). 'sync': when a later sync()
 * resolves; the commit only writes the WAL (synchronous=NORMAL) and sync() fsyncs it on
 * libuv's thread pool, so the event loop goes on meanwhile and a process appending from
 * several places (the gateway's clients, or its workers) holds the write lock for no fsync.
 */
export type Durability = 'commit' | 'sync';

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
 * Rows per INSERT when a commit holds many: one statement per row cost twice as much CPU
 * per record as the rows themselves do.
 */
const ROWS_PER_INSERT = 64;

/**
 * The embedded stream: an append-only SQLite log standing where Kafka or Kinesis stand
 * past one machine. The gateway appends, detectors in this or other processes read by
 * offset and keep their own committed position here, like a consumer group would. It
 * carries records as opaque bytes, as Kafka does; what they hold is stream-record.ts's.
 */
export class StreamLog {
  private readonly db: Database.Database;
  private readonly st;
  private readonly appendAll: Database.Transaction<(entries: Omit<LogEntry, 'offset'>[]) => void>;
  /** The WAL file, opened by the first sync(). */
  private wal?: number;

  constructor(
    private readonly path: string,
    private readonly durability: Durability = 'commit',
  ) {
    // PUBACK follows a durable append, so it must survive a power cut, not only a crash.
    this.db = openDatabase(path, durability === 'commit' ? 'FULL' : 'NORMAL', STREAM_LOG_MIGRATIONS);
    this.st = {
      insert: this.db.prepare('INSERT INTO telemetry (vehicle, received_at, payload) VALUES (?, ?, ?)'),
      insertMany: this.db.prepare(
        `INSERT INTO telemetry (vehicle, received_at, payload) VALUES ${Array<string>(ROWS_PER_INSERT).fill('(?, ?, ?)').join(', ')}`,
      ),
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
    const { insert, insertMany } = this.st;
    // Rows of a multi-row INSERT take their offsets in the order of its VALUES. IMMEDIATE takes
    // the write lock at BEGIN, waiting out the busy timeout while another process (a worker of
    // the same gateway) commits, so writers take turns rather than fail.
    this.appendAll = this.db.transaction((entries: Omit<LogEntry, 'offset'>[]) => {
      let i = 0;
      const args: unknown[] = [];
      for (; i + ROWS_PER_INSERT <= entries.length; i += ROWS_PER_INSERT) {
        args.length = 0;
        for (let j = i; j < i + ROWS_PER_INSERT; j++) args.push(entries[j]!.key, entries[j]!.receivedAt, entries[j]!.value);
        insertMany.run(args);
      }
      for (; i < entries.length; i++) insert.run(entries[i]!.key, entries[i]!.receivedAt, entries[i]!.value);
    });
  }

  /** Appends records in one transaction, in order; durable when it returns, or after the next sync() (see Durability). */
  append(entries: Omit<LogEntry, 'offset'>[]): void {
    this.appendAll.immediate(entries);
  }

  /**
   * Makes every append made before the call durable, as synchronous=FULL would have at its
   * commit: the WAL's frames up to it reach the disk (and, the first time, the directory
   * entry of the WAL file SQLite created). A checkpoint with synchronous=NORMAL syncs the WAL
   * before and the database after, so nothing synced here is lost to one.
   */
  async sync(): Promise<void> {
    if (this.durability !== 'sync') return;
    if (this.wal === undefined) {
      this.wal = openSync(`${this.path}-wal`, 'r');
      const dir = openSync(dirname(this.path), 'r');
      try {
        await fsyncAsync(dir);
      } finally {
        closeSync(dir);
      }
    }
    await fsyncAsync(this.wal);
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
    if (this.wal !== undefined) closeSync(this.wal);
    this.db.close();
  }
}
