import type Database from 'better-sqlite3';
import { openDatabase } from '../shared/sqlite.js';

export interface DeadLetter {
  vehicle: string;
  topic: string;
  reason: string;
  receivedAt: number;
  payload: Buffer;
}

/**
 * Payloads the gateway acknowledged but could not accept (malformed, oversized). They are
 * kept with their reason, so nothing a vehicle sent is lost and nothing loops.
 */
export class DeadLetterStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;

  constructor(path: string) {
    // Committed before the PUBACK that acknowledges the bad payload.
    this.db = openDatabase(path, 'FULL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS dead_letters (
      id INTEGER PRIMARY KEY, vehicle TEXT NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,
      received_at INTEGER NOT NULL, payload BLOB NOT NULL)`);
    this.insert = this.db.prepare('INSERT INTO dead_letters (vehicle, topic, reason, received_at, payload) VALUES (?, ?, ?, ?, ?)');
  }

  put(d: DeadLetter): void {
    this.insert.run(d.vehicle, d.topic, d.reason, d.receivedAt, d.payload);
  }

  close(): void {
    this.db.close();
  }
}
