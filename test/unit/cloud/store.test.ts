import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { DeliveryLedger } from '../../../cloud/alerts/delivery-ledger.js';
import { FleetStore } from '../../../cloud/store.js';
import type { Alert } from '../../../shared/contract/alert.js';
import { tempDir } from '../../support/harness.js';

const T = Date.UTC(2026, 0, 5, 10);

function alert(rule: string, driver: boolean): Alert {
  return {
    id: `truck-1.${rule}.${T}`, vehicle: 'truck-1', rule, severity: 'warning', sensor: 'engine_temp', episodeStart: T,
    windowStart: T, windowEnd: T + 10_000, observed: 1, expected: 0, message: rule, live: true, driver, raisedAt: T, closedAt: T + 10_000,
  };
}

describe('FleetStore', () => {
  it('keeps whether the cab is told: the cab gets only driver alerts, the fleet team all', () => {
    const store = new FleetStore(join(tempDir(), 'fleet.db'));
    store.applyAlertEvents([{ kind: 'raised', alert: alert('hot', true) }, { kind: 'raised', alert: alert('frozen', false) }], T);
    const ledger = new DeliveryLedger(store);
    assert.deepEqual(ledger.undelivered('driver', true).map((a) => a.rule), ['hot']);
    assert.deepEqual(ledger.undelivered('webhook', false).map((a) => a.rule).sort(), ['frozen', 'hot']);
    assert.equal(store.getAlert(`truck-1.frozen.${T}`)!.driver, false);
    store.close();
  });

  it('records why the detector ended an episode, and no reason when a person cleared it', () => {
    const store = new FleetStore(join(tempDir(), 'fleet.db'));
    store.applyAlertEvents([{ kind: 'raised', alert: alert('dev', true) }, { kind: 'raised', alert: alert('hot', true) }], T);
    store.applyAlertEvents([{ kind: 'cleared', alertId: `truck-1.dev.${T}`, vehicle: 'truck-1', rule: 'dev', at: T + 60_000, reason: 'level_shift' }], T);
    store.clear(`truck-1.hot.${T}`, 'alice', T + 1000);
    assert.deepEqual([store.getAlert(`truck-1.dev.${T}`)!.clearReason, store.getAlert(`truck-1.dev.${T}`)!.clearedBy], ['level_shift', 'detector']);
    assert.deepEqual([store.getAlert(`truck-1.hot.${T}`)!.clearReason, store.getAlert(`truck-1.hot.${T}`)!.clearedBy], [null, 'alice']);
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
    assert.equal(store.db.pragma('user_version', { simple: true }), 2);
    assert.equal(store.getAlert('v.r.1')!.driver, true);
    store.close();
    // Opening again changes nothing: each migration runs once.
    const again = new FleetStore(path);
    assert.equal(again.getAlert('v.r.1')!.message, 'hot');
    again.close();
  });

  it('refuses a store from a newer release instead of guessing at its schema', () => {
    const path = join(tempDir(), 'new.db');
    const future = new Database(path);
    future.pragma('user_version = 99');
    future.close();
    assert.throws(() => new FleetStore(path), /has schema version 99, newer than this release knows \(2\)/);
  });
});
