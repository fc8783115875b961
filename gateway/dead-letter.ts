import type Database from 'better-sqlite3';
import { openDatabase, type Migration } from '../shared/sqlite.js';

export interface DeadLetter {
  vehicle: string;
  topic: string;
  reason: string;
  receivedAt: number;
  payload: Buffer;
}

export interface DeadLetterLimits {
  /** Bytes (payload, topic and reason) the whole store holds at most. */
  maxBytes: number;
  /** Bytes one vehicle's letters hold at most, so one vehicle cannot push out every other's. */
  maxBytesPerVehicle: number;
}

/** Letters deleted to make room for a new one, by the cap that needed the room. */
export interface Dropped {
  vehicle: number;
  store: number;
}

/**
 * The store's schema, one step per release that changed it (see shared/sqlite.ts). The first
 * is the schema as it stood before versions were kept, so it adopts such a file unchanged.
 */
const DEAD_LETTER_MIGRATIONS: Migration[] = [
  `CREATE TABLE IF NOT EXISTS dead_letters (
     id INTEGER PRIMARY KEY, vehicle TEXT NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,
     received_at INTEGER NOT NULL, payload BLOB NOT NULL);
   CREATE INDEX IF NOT EXISTS dead_letters_by_vehicle ON dead_letters (vehicle, id);`,
];

/** A letter's size as the caps count it; SQL's `length` of a BLOB is its bytes. */
const SIZE_SQL = 'length(payload) + length(CAST(topic AS BLOB)) + length(CAST(reason AS BLOB))';
const sizeOf = (d: DeadLetter) => d.payload.length + Buffer.byteLength(d.topic) + Buffer.byteLength(d.reason);

/**
 * Payloads the gateway acknowledged but could not accept (malformed, oversized). They are
 * kept with their reason, so nothing a vehicle sent is lost and nothing loops, within a byte
 * cap per vehicle and for the store: a vehicle sending bad data at the publish rate limit
 * would otherwise fill the stream's disk (about 90 GB an hour of 250 KiB payloads). The oldest
 * letters make room for new ones, and what was deleted is counted.
 */
export class DeadLetterStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly deleteOldest: Database.Statement;
  private readonly deleteOldestOf: Database.Statement;
  private bytes = 0;
  private letters = 0;
  private readonly bytesByVehicle = new Map<string, number>();
  private dropped = 0;

  constructor(
    path: string,
    private readonly limits: DeadLetterLimits,
  ) {
    // Committed before the PUBACK that acknowledges the bad payload.
    this.db = openDatabase(path, 'FULL', DEAD_LETTER_MIGRATIONS);
    this.insert = this.db.prepare('INSERT INTO dead_letters (vehicle, topic, reason, received_at, payload) VALUES (?, ?, ?, ?, ?)');
    const returning = `RETURNING vehicle, ${SIZE_SQL} AS bytes`;
    this.deleteOldest = this.db.prepare(`DELETE FROM dead_letters WHERE id = (SELECT min(id) FROM dead_letters) ${returning}`);
    this.deleteOldestOf = this.db.prepare(
      `DELETE FROM dead_letters WHERE id = (SELECT min(id) FROM dead_letters WHERE vehicle = ?) ${returning}`,
    );
    const rows = this.db.prepare(`SELECT vehicle, count(*) AS n, sum(${SIZE_SQL}) AS bytes FROM dead_letters GROUP BY vehicle`).all() as {
      vehicle: string;
      n: number;
      bytes: number;
    }[];
    for (const row of rows) {
      this.bytesByVehicle.set(row.vehicle, row.bytes);
      this.bytes += row.bytes;
      this.letters += row.n;
    }
  }

  /**
   * Keeps a letter, first deleting the vehicle's oldest letters past its share, then the
   * store's oldest past the whole cap. A letter larger than a cap by itself is still kept
   * (the gateway's settings make one payload fit a vehicle's share). The counts change
   * only once the transaction has committed.
   */
  put(d: DeadLetter): Dropped {
    const size = sizeOf(d);
    const freed: { vehicle: string; bytes: number }[] = [];
    const dropped: Dropped = { vehicle: 0, store: 0 };
    let freedOwn = 0;
    let freedAll = 0;
    this.db.transaction(() => {
      while ((this.bytesByVehicle.get(d.vehicle) ?? 0) - freedOwn + size > this.limits.maxBytesPerVehicle) {
        const row = this.deleteOldestOf.get(d.vehicle) as { vehicle: string; bytes: number } | undefined;
        if (!row) break;
        freed.push(row);
        freedOwn += row.bytes;
        freedAll += row.bytes;
        dropped.vehicle++;
      }
      while (this.bytes - freedAll + size > this.limits.maxBytes) {
        const row = this.deleteOldest.get() as { vehicle: string; bytes: number } | undefined;
        if (!row) break;
        freed.push(row);
        freedAll += row.bytes;
        dropped.store++;
      }
      this.insert.run(d.vehicle, d.topic, d.reason, d.receivedAt, d.payload);
    })();
    for (const f of freed) this.addBytes(f.vehicle, -f.bytes);
    this.addBytes(d.vehicle, size);
    this.letters += 1 - freed.length;
    this.dropped += freed.length;
    return dropped;
  }

  /** Letters and bytes held, and letters deleted to make room since the gateway started. */
  stats(): { letters: number; bytes: number; dropped: number } {
    return { letters: this.letters, bytes: this.bytes, dropped: this.dropped };
  }

  close(): void {
    this.db.close();
  }

  private addBytes(vehicle: string, bytes: number): void {
    const left = (this.bytesByVehicle.get(vehicle) ?? 0) + bytes;
    if (left > 0) this.bytesByVehicle.set(vehicle, left);
    else this.bytesByVehicle.delete(vehicle);
    this.bytes += bytes;
  }
}
