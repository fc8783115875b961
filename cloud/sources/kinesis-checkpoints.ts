import type Database from 'better-sqlite3';
import { openDatabase, type Migration } from '../../shared/sqlite.js';

/** Where a consumer stands in one shard: the last record it handled, and when that record arrived. */
export interface Checkpoint {
  sequence: string;
  arrivedAt: number;
}

/**
 * The file's schema, one step per release that changed it (see shared/sqlite.ts). The first
 * is the schema as it stood before versions were kept, so it adopts such a file unchanged.
 */
const CHECKPOINT_MIGRATIONS: Migration[] = [
  `CREATE TABLE IF NOT EXISTS kinesis_checkpoints (
     stream TEXT NOT NULL, shard TEXT NOT NULL, sequence TEXT NOT NULL, arrived_at INTEGER NOT NULL,
     PRIMARY KEY (stream, shard)) WITHOUT ROWID`,
];

/** A Kinesis consumer's checkpoints, one SQLite file per consumer. */
export class KinesisCheckpoints {
  private readonly db: Database.Database;
  private readonly st;

  constructor(path: string) {
    // A commit says these records need never be read again: keep that promise across a power cut.
    this.db = openDatabase(path, 'FULL', CHECKPOINT_MIGRATIONS);
    this.st = {
      save: this.db.prepare(
        `INSERT INTO kinesis_checkpoints (stream, shard, sequence, arrived_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (stream, shard) DO UPDATE SET sequence = excluded.sequence, arrived_at = excluded.arrived_at`,
      ),
      ofStream: this.db.prepare('SELECT shard, sequence, arrived_at AS arrivedAt FROM kinesis_checkpoints WHERE stream = ?'),
    };
  }

  /** Every shard's checkpoint in a stream. */
  of(stream: string): Map<string, Checkpoint> {
    const rows = this.st.ofStream.all(stream) as ({ shard: string } & Checkpoint)[];
    return new Map(rows.map(({ shard, ...c }) => [shard, c]));
  }

  /** Saves several shards' checkpoints in one transaction: durable when it returns. */
  save(stream: string, checkpoints: Map<string, Checkpoint>): void {
    this.db.transaction(() => {
      for (const [shard, c] of checkpoints) this.st.save.run(stream, shard, c.sequence, c.arrivedAt);
    })();
  }

  close(): void {
    this.db.close();
  }
}
