import type Database from 'better-sqlite3';
import { openDatabase } from '../shared/sqlite.js';
import { ALERT_STATES, type AlertState, type Severity } from '../shared/contract/alert.js';
import type { Reading, SensorId } from '../shared/contract/reading.js';
import type { AlertEvent } from '../shared/rules/engine.js';
import type { DeliveryLedger } from './alerts/delivery-ledger.js';
import { DeliveryTable } from './store/delivery-table.js';
import { STORE_MIGRATIONS } from './store/schema.js';
import { alertParams, INSERT_ALERT, STORED_ALERT_COLUMNS, toStoredAlert, type StoredAlert } from './store/stored-alert.js';

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

/** A vehicle's latest value of a sensor, with the seq of the reading it came from. */
export interface LatestRow extends LatestValue {
  vehicle: string;
  seq: number;
}

export interface AlertChange {
  id: number;
  alertId: string;
  kind: string;
  at: number;
}

/**
 * The cloud side's operational store (SQLite), and the one module that speaks SQL to it:
 * every distinct reading, the latest value per vehicle and sensor, alerts with their
 * lifecycle, and (through `deliveries`) the dispatcher's ledger. The detector writes it; the
 * console reads it and records acknowledgements. (vehicle, seq) is the primary key, so a
 * reading delivered twice is stored once and counted as a duplicate.
 */
export class FleetStore {
  /** Where the dispatcher records what each channel was given, beside the alerts. */
  readonly deliveries: DeliveryLedger;
  private readonly db: Database.Database;
  private readonly st;

  constructor(readonly path: string) {
    // The stream position is committed after this store's commit, so this one must be as
    // durable: otherwise a power cut could keep the position and lose what it covered.
    this.db = openDatabase(path, 'FULL', STORE_MIGRATIONS);
    this.deliveries = new DeliveryTable(this.db);
    this.st = {
      insertReading: this.db.prepare(`INSERT OR IGNORE INTO readings
        (vehicle, seq, ts, sensor, value, quality, clock, lat, lon, heading, fix, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      upsertLatest: this.db.prepare(`INSERT INTO latest (vehicle, sensor, seq, ts, value, lat, lon, heading) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (vehicle, sensor) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, value = excluded.value,
        lat = excluded.lat, lon = excluded.lon, heading = excluded.heading WHERE excluded.seq > latest.seq`),
      addCounter: this.db.prepare(
        `INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`,
      ),
      insertAlert: this.db.prepare(INSERT_ALERT),
      promoteAlert: this.db.prepare(`UPDATE alerts SET live = 1, window_start = @windowStart, window_end = @windowEnd, observed = @observed,
        closed_at = @closedAt WHERE id = @id AND live = 0`),
      clearAlert: this.db.prepare(
        `UPDATE alerts SET state = 'cleared', cleared_by = ?, cleared_at = ?, clear_reason = ? WHERE id = ? AND state != 'cleared'`,
      ),
      ackAlert: this.db.prepare(`UPDATE alerts SET state = 'acknowledged', acked_by = ?, acked_at = ? WHERE id = ? AND state = 'active'`),
      change: this.db.prepare('INSERT INTO alert_changes (alert_id, kind, at) VALUES (?, ?, ?)'),
      getAlert: this.db.prepare(`SELECT ${STORED_ALERT_COLUMNS} FROM alerts WHERE id = ?`),
      openAlerts: this.db.prepare(`SELECT ${STORED_ALERT_COLUMNS} FROM alerts WHERE vehicle = ? AND state != 'cleared'`),
      changesAfter: this.db.prepare('SELECT id, alert_id AS alertId, kind, at FROM alert_changes WHERE id > ? ORDER BY id LIMIT ?'),
      lastChange: this.db.prepare('SELECT coalesce(max(id), 0) FROM alert_changes').pluck(),
      alertsByState: this.db.prepare('SELECT state, count(*) AS n FROM alerts GROUP BY state'),
      activeByVehicle: this.db.prepare(`SELECT vehicle, count(*) AS n FROM alerts WHERE state = 'active' GROUP BY vehicle`),
      latest: this.db.prepare('SELECT vehicle, sensor, seq, ts, value, lat, lon, heading FROM latest ORDER BY vehicle'),
      series: this.db.prepare(
        `SELECT ts, value FROM readings WHERE vehicle = ? AND sensor = ? AND ts >= ? AND quality != 'bad' ORDER BY ts`,
      ),
      gpsVehicles: this.db.prepare(`SELECT vehicle FROM latest WHERE sensor = 'gps' AND ts >= ?`).pluck(),
      // One point per bucket (the newest in it; SQLite takes the bare columns from the max row) keeps a track light.
      track: this.db.prepare(`SELECT lat, lon, max(ts) AS ts FROM readings
        WHERE vehicle = ? AND sensor = 'gps' AND ts >= ? AND lat IS NOT NULL AND quality != 'bad' GROUP BY ts / ? ORDER BY ts`),
      counter: this.db.prepare('SELECT value FROM counters WHERE name = ?').pluck(),
      readingCount: this.db.prepare('SELECT count(*) FROM readings').pluck(),
    };
  }

  /** Stores readings; returns those not seen before (a repeat of (vehicle, seq) is counted, not stored). */
  insertReadings(readings: Reading[], receivedAt: number): Reading[] {
    const fresh: Reading[] = [];
    for (const r of readings) {
      const p = r.position;
      const res = this.st.insertReading.run(
        r.vehicle,
        r.seq,
        r.ts,
        r.sensor,
        r.value,
        r.quality,
        r.clock,
        p?.lat ?? null,
        p?.lon ?? null,
        p?.heading ?? null,
        p?.fix ?? null,
        receivedAt,
      );
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
          ? this.st.insertAlert.run(alertParams(e.alert))
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
    const row = this.st.getAlert.get(id);
    return row === undefined ? undefined : toStoredAlert(row);
  }

  /** A vehicle's alerts whose episode has not ended. */
  openAlerts(vehicle: string): StoredAlert[] {
    return this.st.openAlerts.all(vehicle).map(toStoredAlert);
  }

  listAlerts(f: AlertFilter = {}): StoredAlert[] {
    const where: string[] = [];
    const args: unknown[] = [];
    const filter = (column: string, value: unknown) => {
      where.push(`${column} = ?`);
      args.push(value);
    };
    if (f.state) filter('state', f.state);
    if (f.severity) filter('severity', f.severity);
    if (f.vehicle) filter('vehicle', f.vehicle);
    const sql = `SELECT ${STORED_ALERT_COLUMNS} FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY raised_at DESC LIMIT ?`;
    return this.db
      .prepare(sql)
      .all(...args, f.limit ?? 500)
      .map(toStoredAlert);
  }

  /** Alerts in each state, all of them counted (listAlerts stops at its limit). */
  alertCountsByState(): Record<AlertState, number> {
    const counts = Object.fromEntries(ALERT_STATES.map((s) => [s, 0])) as Record<AlertState, number>;
    for (const { state, n } of this.st.alertsByState.all() as { state: AlertState; n: number }[]) counts[state] = n;
    return counts;
  }

  activeAlertsByVehicle(): Map<string, number> {
    const rows = this.st.activeByVehicle.all() as { vehicle: string; n: number }[];
    return new Map(rows.map((r) => [r.vehicle, r.n]));
  }

  changesAfter(id: number, limit = 500): AlertChange[] {
    return this.st.changesAfter.all(id, limit) as AlertChange[];
  }

  lastChangeId(): number {
    return this.st.lastChange.get() as number;
  }

  /** Every vehicle's latest value of each sensor, by vehicle. */
  latestRows(): LatestRow[] {
    return this.st.latest.all() as LatestRow[];
  }

  latestValues(): Map<string, LatestValue[]> {
    const out = new Map<string, LatestValue[]>();
    for (const { vehicle, seq: _seq, ...value } of this.latestRows()) out.set(vehicle, [...(out.get(vehicle) ?? []), value]);
    return out;
  }

  /**
   * A sensor's readings since `since`, bad ones left out, oldest first. Walks the
   * (vehicle, sensor, ts) index, so its cost follows the window asked for.
   */
  readingSeries(vehicle: string, sensor: SensorId, since: number): { ts: number; value: number }[] {
    return this.st.series.all(vehicle, sensor, since) as { ts: number; value: number }[];
  }

  /** Vehicles whose latest position is not older than `since`. */
  vehiclesWithPositionSince(since: number): string[] {
    return this.st.gpsVehicles.all(since) as string[];
  }

  /** A vehicle's positions since `since`, at most one per `bucketMs` (the newest in it). */
  track(vehicle: string, since: number, bucketMs: number): { lat: number; lon: number; ts: number }[] {
    return this.st.track.all(vehicle, since, bucketMs) as { lat: number; lon: number; ts: number }[];
  }

  counts(): { readingsStored: number; duplicates: number } {
    return {
      readingsStored: this.st.readingCount.get() as number,
      duplicates: (this.st.counter.get('duplicates') as number | undefined) ?? 0,
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
