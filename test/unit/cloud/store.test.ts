import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import { hotAlert } from '../../support/alert-fixtures.js';
import { latestSeqs, storeContract } from '../../support/store-contract.js';
import { tempDir } from '../../support/harness.js';
import { queryValue } from '../../support/sqlite.js';

const T = Date.UTC(2026, 0, 5, 10);

/**
 * The store's schema at version 2, as the release before this one made it (cloud/store.ts's
 * migrations then), with a row in every table.
 */
function version2Store(path: string): void {
  const db = new Database(path);
  db.exec(`
    CREATE TABLE readings (
      vehicle TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, sensor TEXT NOT NULL, value REAL NOT NULL,
      quality TEXT NOT NULL, clock TEXT NOT NULL, lat REAL, lon REAL, heading REAL, fix TEXT, received_at INTEGER NOT NULL,
      PRIMARY KEY (vehicle, seq)) WITHOUT ROWID;
    CREATE INDEX readings_by_time ON readings (vehicle, sensor, ts);
    CREATE TABLE latest (
      vehicle TEXT NOT NULL, sensor TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
      lat REAL, lon REAL, heading REAL, PRIMARY KEY (vehicle, sensor)) WITHOUT ROWID;
    CREATE TABLE alerts (
      id TEXT PRIMARY KEY, vehicle TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, sensor TEXT NOT NULL,
      episode_start INTEGER NOT NULL, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
      observed REAL NOT NULL, expected REAL NOT NULL, message TEXT NOT NULL, live INTEGER NOT NULL,
      raised_at INTEGER NOT NULL, closed_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'active',
      acked_by TEXT, acked_at INTEGER, cleared_by TEXT, cleared_at INTEGER) WITHOUT ROWID;
    CREATE INDEX alerts_by_time ON alerts (raised_at);
    CREATE TABLE alert_changes (id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id TEXT NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE TABLE deliveries (
      alert_id TEXT NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (alert_id, channel)) WITHOUT ROWID;
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    ALTER TABLE alerts ADD COLUMN driver INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE alerts ADD COLUMN clear_reason TEXT;
    PRAGMA user_version = 2;
    INSERT INTO readings VALUES ('truck-1', 7, ${T}, 'gps', 50, 'good', 'synced', 48.1, 11.5, 90, '3d', ${T + 5});
    INSERT INTO latest VALUES ('truck-1', 'gps', 7, ${T}, 50, 48.1, 11.5, 90);
    INSERT INTO alerts VALUES ('truck-1.hot.${T}', 'truck-1', 'hot', 'critical', 'engine_temp', ${T}, ${T}, ${T + 10_000}, 110, 105,
      'engine_temp mean 110 above 105', 1, ${T + 10_010}, ${T + 10_005}, 'acknowledged', 'alice', ${T + 20_000}, NULL, NULL, 1, NULL);
    INSERT INTO alert_changes (alert_id, kind, at) VALUES ('truck-1.hot.${T}', 'raised', ${T + 10_010});
    INSERT INTO deliveries VALUES ('truck-1.hot.${T}', 'driver', 'sent', ${T + 10_020});
    INSERT INTO counters VALUES ('duplicates', 3);`);
  db.close();
}

storeContract('SQLite', async () => join(tempDir(), 'fleet.db'));

describe('the SQLite store file', () => {
  it('migrates a store made before schema versions were kept, keeping its alerts (as driver alerts)', async () => {
    const path = join(tempDir(), 'old.db');
    const old = new Database(path);
    old.exec(`CREATE TABLE alerts (
      id TEXT PRIMARY KEY, vehicle TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, sensor TEXT NOT NULL,
      episode_start INTEGER NOT NULL, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
      observed REAL NOT NULL, expected REAL NOT NULL, message TEXT NOT NULL, live INTEGER NOT NULL,
      raised_at INTEGER NOT NULL, closed_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'active',
      acked_by TEXT, acked_at INTEGER, cleared_by TEXT, cleared_at INTEGER) WITHOUT ROWID;
      INSERT INTO alerts VALUES ('v.r.1', 'v', 'r', 'critical', 'engine_temp', 1, 1, 2, 110, 105, 'hot', 1, 3, 3, 'active', NULL, NULL, NULL, NULL);`);
    old.close();
    const store = new SqliteStore(path);
    assert.equal(queryValue(path, 'PRAGMA user_version'), 4);
    assert.equal((await store.getAlert('v.r.1'))!.driver, true);
    await store.close();
    // Opening again changes nothing: each migration runs once.
    const again = new SqliteStore(path);
    assert.equal((await again.getAlert('v.r.1'))!.message, 'hot');
    await again.close();
  });

  it('opens a store written by the previous release and reads every row it held', async () => {
    const path = join(tempDir(), 'v2.db');
    version2Store(path);
    const store = new SqliteStore(path);
    const id = `truck-1.hot.${T}`;
    assert.deepEqual(await store.getAlert(id), {
      ...hotAlert(),
      state: 'acknowledged',
      ackedBy: 'alice',
      ackedAt: T + 20_000,
      clearedBy: null,
      clearedAt: null,
      clearReason: null,
      driverSentAt: T + 10_020,
    });
    assert.deepEqual(await store.latestRows(), [
      { vehicle: 'truck-1', sensor: 'gps', seq: 7, ts: T, value: 50, lat: 48.1, lon: 11.5, heading: 90 },
    ]);
    assert.deepEqual(await store.counts(), { readingsStored: 1, duplicates: 3 });
    assert.deepEqual(await store.changesAfter(0), [{ id: 1, alertId: id, kind: 'raised', at: T + 10_010 }]);
    assert.deepEqual(
      (await store.deliveries.awaitingAck('driver')).map((a) => a.id),
      [id],
    );
    // It goes on from there: a repeat of the stored reading is a duplicate.
    const repeat = { vehicle: 'truck-1', seq: 7, ts: T, clock: 'synced', sensor: 'speed', value: 1, quality: 'good' } as const;
    assert.deepEqual(await store.write({ received: [{ readings: [repeat], receivedAt: T }], duplicates: 0, events: [], at: T }), {
      stored: 0,
      duplicates: 1,
      changed: [],
    });
    // Its latest values are versioned: a console's first read has them, the next only what moved since.
    const adopted = await store.latestRowsSince(undefined);
    assert.deepEqual(adopted.rows, await store.latestRows());
    const gps = { ...repeat, seq: 8, sensor: 'gps', position: { lat: 48.2, lon: 11.5, heading: 90, fix: '3d' } } as const;
    await store.write({ received: [{ readings: [gps], receivedAt: T }], duplicates: 0, events: [], at: T });
    assert.deepEqual(latestSeqs((await store.latestRowsSince(adopted.cursor)).rows), { 'truck-1 gps': 8 });
    await store.close();
  });

  it('refuses a store from a newer release instead of guessing at its schema', () => {
    const path = join(tempDir(), 'new.db');
    const future = new Database(path);
    future.pragma('user_version = 99');
    future.close();
    assert.throws(() => new SqliteStore(path), /has schema version 99, newer than this release knows \(4\)/);
  });
});
