import type { Migration } from '../../../shared/sqlite.js';

/**
 * The operational store's schema (fleet.db, and the dispatcher's ledger.db), one step per
 * release that changed it (see shared/sqlite.ts). The first is the schema as it stood before
 * versions were kept, written so that it also adopts such a file unchanged.
 */
export const STORE_MIGRATIONS: Migration[] = [
  `CREATE TABLE IF NOT EXISTS readings (
     vehicle TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, sensor TEXT NOT NULL, value REAL NOT NULL,
     quality TEXT NOT NULL, clock TEXT NOT NULL, lat REAL, lon REAL, heading REAL, fix TEXT, received_at INTEGER NOT NULL,
     PRIMARY KEY (vehicle, seq)) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS readings_by_time ON readings (vehicle, sensor, ts);
   CREATE TABLE IF NOT EXISTS latest (
     vehicle TEXT NOT NULL, sensor TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
     lat REAL, lon REAL, heading REAL, PRIMARY KEY (vehicle, sensor)) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS alerts (
     id TEXT PRIMARY KEY, vehicle TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, sensor TEXT NOT NULL,
     episode_start INTEGER NOT NULL, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
     observed REAL NOT NULL, expected REAL NOT NULL, message TEXT NOT NULL, live INTEGER NOT NULL,
     raised_at INTEGER NOT NULL, closed_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'active',
     acked_by TEXT, acked_at INTEGER, cleared_by TEXT, cleared_at INTEGER) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (raised_at);
   CREATE TABLE IF NOT EXISTS alert_changes (id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL);
   -- The delivery ledger (delivery-table.ts); here because alert rows show the driver's delivery.
   CREATE TABLE IF NOT EXISTS deliveries (
     alert_id TEXT NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL, at INTEGER NOT NULL,
     PRIMARY KEY (alert_id, channel)) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`,
  // Sensor-health alerts are for the fleet team only; an episode ends recovered or as a level shift.
  `ALTER TABLE alerts ADD COLUMN driver INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE alerts ADD COLUMN clear_reason TEXT;`,
  // Console sessions, shared by every console on the file; kept by a hash of the cookie's id.
  `CREATE TABLE sessions (id_hash TEXT PRIMARY KEY, user TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX sessions_by_expiry ON sessions (expires_at);`,
  // Each change of a latest value takes the next version (LATEST_VERSION), so a console reads
  // only the values that moved since its last look; values already here are version 0.
  `ALTER TABLE latest ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX latest_by_version ON latest (version);`,
];

/**
 * The next version of `latest`: one past the highest, found in the index. SQLite has one writer
 * at a time and a write transaction sees the last commit, so versions are drawn and committed
 * in order: a reader that has seen version n never misses a smaller one committed later.
 */
export const LATEST_VERSION = '(SELECT coalesce(max(version), 0) + 1 FROM latest)';
