import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { FleetStore } from '../../../cloud/store.js';
import type { Alert } from '../../../shared/contract/alert.js';
import { tempDir } from '../../support/harness.js';
import { queryValue } from '../../support/sqlite.js';

const T = Date.UTC(2026, 0, 5, 10);

function alert(rule: string, driver: boolean): Alert {
  return {
    id: `truck-1.${rule}.${T}`,
    vehicle: 'truck-1',
    rule,
    severity: 'warning',
    sensor: 'engine_temp',
    episodeStart: T,
    windowStart: T,
    windowEnd: T + 10_000,
    observed: 1,
    expected: 0,
    message: rule,
    live: true,
    driver,
    raisedAt: T,
    closedAt: T + 10_000,
  };
}

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

describe('FleetStore', () => {
  it('keeps whether the cab is told: the cab gets only driver alerts, the fleet team all', () => {
    const store = new FleetStore(join(tempDir(), 'fleet.db'));
    store.applyAlertEvents(
      [
        { kind: 'raised', alert: alert('hot', true) },
        { kind: 'raised', alert: alert('frozen', false) },
      ],
      T,
    );
    assert.deepEqual(
      store.deliveries.undelivered('driver', true).map((a) => a.rule),
      ['hot'],
    );
    assert.deepEqual(
      store.deliveries
        .undelivered('webhook', false)
        .map((a) => a.rule)
        .sort(),
      ['frozen', 'hot'],
    );
    assert.equal(store.getAlert(`truck-1.frozen.${T}`)!.driver, false);
    store.close();
  });

  it('records why the detector ended an episode, and no reason when a person cleared it', () => {
    const store = new FleetStore(join(tempDir(), 'fleet.db'));
    store.applyAlertEvents(
      [
        { kind: 'raised', alert: alert('dev', true) },
        { kind: 'raised', alert: alert('hot', true) },
      ],
      T,
    );
    store.applyAlertEvents(
      [{ kind: 'cleared', alertId: `truck-1.dev.${T}`, vehicle: 'truck-1', rule: 'dev', at: T + 60_000, reason: 'level_shift' }],
      T,
    );
    store.clear(`truck-1.hot.${T}`, 'alice', T + 1000);
    assert.deepEqual(
      [store.getAlert(`truck-1.dev.${T}`)!.clearReason, store.getAlert(`truck-1.dev.${T}`)!.clearedBy],
      ['level_shift', 'detector'],
    );
    assert.deepEqual([store.getAlert(`truck-1.hot.${T}`)!.clearReason, store.getAlert(`truck-1.hot.${T}`)!.clearedBy], [null, 'alice']);
    store.close();
  });

  it("gives an alert back with the contract's fields, then its lifecycle, in the order the API shows them", () => {
    const store = new FleetStore(join(tempDir(), 'fleet.db'));
    store.applyAlertEvents([{ kind: 'raised', alert: alert('hot', true) }], T);
    assert.deepEqual(Object.entries(store.getAlert(`truck-1.hot.${T}`)!), [
      ...Object.entries(alert('hot', true)),
      ['state', 'active'],
      ['ackedBy', null],
      ['ackedAt', null],
      ['clearedBy', null],
      ['clearedAt', null],
      ['clearReason', null],
      ['driverSentAt', null],
    ]);
    store.close();
  });

  it('counts alerts by state and active ones by vehicle, all of them, beyond any list limit', () => {
    const store = new FleetStore(join(tempDir(), 'fleet.db'));
    store.applyAlertEvents(
      ['a', 'b', 'c'].map((rule) => ({ kind: 'raised', alert: alert(rule, true) })),
      T,
    );
    store.acknowledge(`truck-1.b.${T}`, 'alice', T + 1);
    assert.deepEqual(store.alertCountsByState(), { active: 2, acknowledged: 1, cleared: 0 });
    assert.deepEqual(store.activeAlertsByVehicle(), new Map([['truck-1', 2]]));
    assert.equal(store.listAlerts({ limit: 1 }).length, 1);
    store.close();
  });

  it('migrates a store made before schema versions were kept, keeping its alerts (as driver alerts)', () => {
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
    const store = new FleetStore(path);
    assert.equal(queryValue(path, 'PRAGMA user_version'), 2);
    assert.equal(store.getAlert('v.r.1')!.driver, true);
    store.close();
    // Opening again changes nothing: each migration runs once.
    const again = new FleetStore(path);
    assert.equal(again.getAlert('v.r.1')!.message, 'hot');
    again.close();
  });

  it('opens a store written by the previous release and reads every row it held', () => {
    const path = join(tempDir(), 'v2.db');
    version2Store(path);
    const store = new FleetStore(path);
    const id = `truck-1.hot.${T}`;
    assert.deepEqual(store.getAlert(id), {
      id,
      vehicle: 'truck-1',
      rule: 'hot',
      severity: 'critical',
      sensor: 'engine_temp',
      episodeStart: T,
      windowStart: T,
      windowEnd: T + 10_000,
      observed: 110,
      expected: 105,
      message: 'engine_temp mean 110 above 105',
      live: true,
      driver: true,
      raisedAt: T + 10_010,
      closedAt: T + 10_005,
      state: 'acknowledged',
      ackedBy: 'alice',
      ackedAt: T + 20_000,
      clearedBy: null,
      clearedAt: null,
      clearReason: null,
      driverSentAt: T + 10_020,
    });
    assert.deepEqual(
      store.latestValues(),
      new Map([['truck-1', [{ sensor: 'gps', ts: T, value: 50, lat: 48.1, lon: 11.5, heading: 90 }]]]),
    );
    assert.deepEqual(store.counts(), { readingsStored: 1, duplicates: 3 });
    assert.deepEqual(store.changesAfter(0), [{ id: 1, alertId: id, kind: 'raised', at: T + 10_010 }]);
    assert.deepEqual(
      store.deliveries.awaitingAck('driver').map((a) => a.id),
      [id],
    );
    // It goes on from there: a repeat of the stored reading is a duplicate.
    assert.deepEqual(
      store.insertReadings([{ vehicle: 'truck-1', seq: 7, ts: T, clock: 'synced', sensor: 'speed', value: 1, quality: 'good' }], T),
      [],
    );
    store.close();
  });

  it('refuses a store from a newer release instead of guessing at its schema', () => {
    const path = join(tempDir(), 'new.db');
    const future = new Database(path);
    future.pragma('user_version = 99');
    future.close();
    assert.throws(() => new FleetStore(path), /has schema version 99, newer than this release knows \(2\)/);
  });
});
