import type Database from 'better-sqlite3';
import { migrate, openDatabase } from '../shared/sqlite.js';
import type { Alert, AlertState, ClearReason, Severity } from '../shared/contract/alert.js';
import type { Reading, SensorId } from '../shared/contract/reading.js';
import type { AlertEvent } from '../shared/rules/engine.js';

/**
 * The store's schema, one step per release that changed it (see migrate()). The first is
 * the schema as it stood before versions were kept, written so that it also adopts such a
 * file unchanged.
 */
const STORE_MIGRATIONS = [
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
   -- The delivery ledger (alerts/delivery-ledger.ts); here because alert rows show the driver's delivery.
   CREATE TABLE IF NOT EXISTS deliveries (
     alert_id TEXT NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL, at INTEGER NOT NULL,
     PRIMARY KEY (alert_id, channel)) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;`,
  // Sensor-health alerts are for the fleet team only; an episode ends recovered or as a level shift.
  `ALTER TABLE alerts ADD COLUMN driver INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE alerts ADD COLUMN clear_reason TEXT;`,
];

/** An alert as the console and the API see it: the contract's alert plus its lifecycle. */
export interface StoredAlert extends Alert {
  state: AlertState;
  ackedBy: string | null;
  ackedAt: number | null;
  clearedBy: string | null;
  clearedAt: number | null;
  /** Why the detector ended the episode; null while open or when a person cleared it. */
  clearReason: ClearReason | null;
  driverSentAt: number | null;
}

export interface AlertFilter {
  state?: AlertState;
  severity?: Severity;
  vehicle?: string;
  limit?: number;
}

export interface LatestValue {
  sensor: SensorId;
  ts: number;
  value: number;
  lat: number | null;
  lon: number | null;
  heading: number | null;
}

export interface AlertChange {
  id: number;
  alertId: string;
  kind: string;
  at: number;
}

/**
 * The cloud side's operational store (SQLite): every distinct reading, the latest value
 * per vehicle and sensor, and alerts with their lifecycle. The detector writes it; the
 * console reads it and records acknowledgements. (vehicle, seq) is the primary key, so
 * a reading delivered twice is stored once and counted as a duplicate.
 */
export class FleetStore {
  readonly db: Database.Database;
  private readonly st;

  constructor(path: string) {
    // The stream position is committed after this store's commit, so this one must be as
    // durable: otherwise a power cut could keep the position and lose what it covered.
    this.db = openDatabase(path, 'FULL');
    migrate(this.db, STORE_MIGRATIONS);
    this.st = {
      insertReading: this.db.prepare(`INSERT OR IGNORE INTO readings
        (vehicle, seq, ts, sensor, value, quality, clock, lat, lon, heading, fix, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      upsertLatest: this.db.prepare(`INSERT INTO latest (vehicle, sensor, seq, ts, value, lat, lon, heading) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (vehicle, sensor) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, value = excluded.value,
        lat = excluded.lat, lon = excluded.lon, heading = excluded.heading WHERE excluded.seq > latest.seq`),
      addCounter: this.db.prepare(`INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`),
      insertAlert: this.db.prepare(`INSERT OR IGNORE INTO alerts
        (id, vehicle, rule, severity, sensor, episode_start, window_start, window_end, observed, expected, message, live, driver, raised_at, closed_at)
        VALUES (@id, @vehicle, @rule, @severity, @sensor, @episodeStart, @windowStart, @windowEnd, @observed, @expected, @message, @live, @driver,
        @raisedAt, @closedAt)`),
      promoteAlert: this.db.prepare(`UPDATE alerts SET live = 1, window_start = @windowStart, window_end = @windowEnd, observed = @observed,
        closed_at = @closedAt WHERE id = @id AND live = 0`),
      clearAlert: this.db.prepare(`UPDATE alerts SET state = 'cleared', cleared_by = ?, cleared_at = ?, clear_reason = ? WHERE id = ? AND state != 'cleared'`),
      ackAlert: this.db.prepare(`UPDATE alerts SET state = 'acknowledged', acked_by = ?, acked_at = ? WHERE id = ? AND state = 'active'`),
      change: this.db.prepare('INSERT INTO alert_changes (alert_id, kind, at) VALUES (?, ?, ?)'),
      getAlert: this.db.prepare(`${SELECT_ALERTS} WHERE id = ?`),
      openAlerts: this.db.prepare(`${SELECT_ALERTS} WHERE vehicle = ? AND state != 'cleared'`),
      changesAfter: this.db.prepare('SELECT id, alert_id AS alertId, kind, at FROM alert_changes WHERE id > ? ORDER BY id LIMIT ?'),
      lastChange: this.db.prepare('SELECT coalesce(max(id), 0) AS id FROM alert_changes'),
      latest: this.db.prepare('SELECT vehicle, sensor, ts, value, lat, lon, heading FROM latest ORDER BY vehicle'),
      counter: this.db.prepare('SELECT value FROM counters WHERE name = ?'),
      readingCount: this.db.prepare('SELECT count(*) AS n FROM readings'),
    };
  }

  /** Stores readings; returns those not seen before (a repeat of (vehicle, seq) is counted, not stored). */
  insertReadings(readings: Reading[], receivedAt: number): Reading[] {
    const fresh: Reading[] = [];
    for (const r of readings) {
      const p = r.position;
      const res = this.st.insertReading.run(r.vehicle, r.seq, r.ts, r.sensor, r.value, r.quality, r.clock,
        p?.lat ?? null, p?.lon ?? null, p?.heading ?? null, p?.fix ?? null, receivedAt);
      if (res.changes === 1) {
        fresh.push(r);
        this.st.upsertLatest.run(r.vehicle, r.sensor, r.seq, r.ts, r.value, p?.lat ?? null, p?.lon ?? null, p?.heading ?? null);
      }
    }
    const duplicates = readings.length - fresh.length;
    if (duplicates > 0) this.st.addCounter.run('duplicates', duplicates);
    return fresh;
  }

  /** Applies the detector's alert events; returns the ids whose state changed. */
  applyAlertEvents(events: AlertEvent[], at: number): string[] {
    const changed: string[] = [];
    for (const e of events) {
      const id = e.kind === 'cleared' ? e.alertId : e.alert.id;
      const res =
        e.kind === 'raised'
          ? this.st.insertAlert.run({ ...e.alert, live: e.alert.live ? 1 : 0, driver: e.alert.driver === false ? 0 : 1 })
          : e.kind === 'promoted'
            ? this.st.promoteAlert.run(e.alert)
            : this.st.clearAlert.run('detector', e.at, e.reason, id);
      if (res.changes === 1) {
        this.st.change.run(id, e.kind, at);
        changed.push(id);
      }
    }
    return changed;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  acknowledge(id: string, by: string, at: number): StoredAlert | undefined {
    return this.lifecycle(id, 'acknowledged', () => this.st.ackAlert.run(by, at, id).changes, at);
  }

  clear(id: string, by: string, at: number): StoredAlert | undefined {
    return this.lifecycle(id, 'cleared', () => this.st.clearAlert.run(by, at, null, id).changes, at);
  }

  getAlert(id: string): StoredAlert | undefined {
    const row = this.st.getAlert.get(id) as AlertRow | undefined;
    return row && toAlert(row);
  }

  /** A vehicle's alerts whose episode has not ended. */
  openAlerts(vehicle: string): StoredAlert[] {
    return (this.st.openAlerts.all(vehicle) as AlertRow[]).map(toAlert);
  }

  listAlerts(f: AlertFilter = {}): StoredAlert[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.state) (where.push('state = ?'), args.push(f.state));
    if (f.severity) (where.push('severity = ?'), args.push(f.severity));
    if (f.vehicle) (where.push('vehicle = ?'), args.push(f.vehicle));
    const sql = `${SELECT_ALERTS} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY raised_at DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, f.limit ?? 500) as AlertRow[]).map(toAlert);
  }

  changesAfter(id: number, limit = 500): AlertChange[] {
    return this.st.changesAfter.all(id, limit) as AlertChange[];
  }

  lastChangeId(): number {
    return (this.st.lastChange.get() as { id: number }).id;
  }

  latestValues(): Map<string, LatestValue[]> {
    const out = new Map<string, LatestValue[]>();
    for (const row of this.st.latest.all() as (LatestValue & { vehicle: string })[]) {
      const { vehicle, ...value } = row;
      out.set(vehicle, [...(out.get(vehicle) ?? []), value]);
    }
    return out;
  }

  counts(): { readingsStored: number; duplicates: number } {
    return {
      readingsStored: (this.st.readingCount.get() as { n: number }).n,
      duplicates: (this.st.counter.get('duplicates') as { value: number } | undefined)?.value ?? 0,
    };
  }

  close(): void {
    this.db.close();
  }

  private lifecycle(id: string, kind: AlertState, update: () => number, at: number): StoredAlert | undefined {
    return this.transaction(() => {
      if (update() === 1) this.st.change.run(id, kind, at);
      return this.getAlert(id);
    });
  }
}

/**
 * An alert row with when the driver's cab was given it: when it was sent, and once the cab
 * acknowledged it, when that came. Never sent, or expired unacknowledged: null.
 */
const SELECT_ALERTS = `SELECT alerts.*, (SELECT at FROM deliveries d WHERE d.alert_id = alerts.id AND d.channel = 'driver'
  AND d.state IN ('sent', 'acknowledged')) AS driver_sent_at FROM alerts`;

export interface AlertRow {
  id: string; vehicle: string; rule: string; severity: Severity; sensor: SensorId;
  episode_start: number; window_start: number; window_end: number; observed: number; expected: number;
  message: string; live: number; driver: number; raised_at: number; closed_at: number; state: AlertState;
  acked_by: string | null; acked_at: number | null; cleared_by: string | null; cleared_at: number | null; clear_reason: ClearReason | null;
  driver_sent_at?: number | null;
}

export function toAlert(r: AlertRow): StoredAlert {
  return {
    id: r.id, vehicle: r.vehicle, rule: r.rule, severity: r.severity, sensor: r.sensor,
    episodeStart: r.episode_start, windowStart: r.window_start, windowEnd: r.window_end,
    observed: r.observed, expected: r.expected, message: r.message, live: r.live === 1, driver: r.driver === 1,
    raisedAt: r.raised_at, closedAt: r.closed_at, state: r.state,
    ackedBy: r.acked_by, ackedAt: r.acked_at, clearedBy: r.cleared_by, clearedAt: r.cleared_at, clearReason: r.clear_reason,
    driverSentAt: r.driver_sent_at ?? null,
  };
}

