import { setImmediate as yieldToOthers } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { openDatabase } from '../../../shared/sqlite.js';
import { ALERT_STATES, type Alert, type AlertState } from '../../../shared/contract/alert.js';
import type { Reading, SensorId } from '../../../shared/contract/reading.js';
import type { AlertEvent } from '../../../shared/rules/engine.js';
import {
  vehicleKey,
  type AlertChange,
  type AlertFilter,
  type DeliveryRow,
  type FleetStore,
  type LatestPage,
  type LatestRow,
  type ReadingKey,
  type ReceivedReading,
  type StoreWrite,
  type TrackPoint,
  type WriteResult,
} from '../../store.js';
import { copiedCounter, importAlertSql, importDeliverySql, importedAlertValues, importLatestSql, setCounterSql } from '../import-sql.js';
import { READING_COLUMNS, receivedReading, type ReadingRow } from '../reading-row.js';
import { ALERT_COLUMNS, alertValues, STORED_ALERT_COLUMNS, toStoredAlert, type StoredAlert } from '../stored-alert.js';
import { DeliveryTable } from './delivery-table.js';
import { LATEST_VERSION, STORE_MIGRATIONS } from './schema.js';
import { SqliteSessionTable } from './session-table.js';

/** Readings deleted per transaction by retention, so the detector's writes never wait long behind it. */
const RETENTION_BATCH = 1000;

/**
 * The operational store in one SQLite file, the embedded default: the detector, the console
 * and the dispatcher on one machine open the same file (WAL: readers never block the
 * writer). SQLite answers at once, so each method does its work before it returns its
 * promise. (vehicle, seq) is the readings' primary key: a reading delivered twice is stored
 * once and counted as a duplicate.
 */
export class SqliteStore implements FleetStore {
  readonly deliveries: DeliveryTable;
  readonly sessions: SqliteSessionTable;
  private readonly db: Database.Database;
  private readonly st;

  constructor(readonly location: string) {
    // The stream position is committed after this store's commit, so this one must be as
    // durable: otherwise a power cut could keep the position and lose what it covered.
    this.db = openDatabase(location, 'FULL', STORE_MIGRATIONS);
    this.deliveries = new DeliveryTable(this.db);
    this.sessions = new SqliteSessionTable(this.db);
    this.st = {
      isStored: this.db.prepare('SELECT 1 FROM readings WHERE vehicle = ? AND seq = ?').pluck(),
      insertReading: this.db.prepare(`INSERT OR IGNORE INTO readings
        (vehicle, seq, ts, sensor, value, quality, clock, lat, lon, heading, fix, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      upsertLatest: this.db.prepare(importLatestSql(param, LATEST_VERSION)),
      addCounter: this.db.prepare(
        `INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`,
      ),
      insertAlert: this.db.prepare(
        `INSERT OR IGNORE INTO alerts (${ALERT_COLUMNS.join(', ')}) VALUES (${ALERT_COLUMNS.map(() => '?').join(', ')})`,
      ),
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
      latestSince: this.db.prepare('SELECT vehicle, sensor, seq, ts, value, lat, lon, heading, version FROM latest WHERE version > ?'),
      series: this.db.prepare(
        `SELECT ts, value FROM readings WHERE vehicle = ? AND sensor = ? AND ts >= ? AND quality != 'bad' ORDER BY ts`,
      ),
      gpsVehicles: this.db.prepare(`SELECT vehicle FROM latest WHERE sensor = 'gps' AND ts >= ?`).pluck(),
      // One point per bucket (the newest in it; SQLite takes the bare columns from the max row) keeps a track light.
      // The bucket is cast: a bound JavaScript number is a REAL, and ts / REAL would put each reading in a bucket of its own.
      track: this.db.prepare(`SELECT lat, lon, max(ts) AS ts FROM readings
        WHERE vehicle = ? AND sensor = 'gps' AND ts >= ? AND lat IS NOT NULL AND quality != 'bad' GROUP BY ts / CAST(? AS INTEGER) ORDER BY ts`),
      counter: this.db.prepare('SELECT value FROM counters WHERE name = ?').pluck(),
      firstReadings: this.db.prepare(`SELECT ${READING_COLUMNS} FROM readings ORDER BY vehicle, seq LIMIT ?`),
      readingsAfter: this.db.prepare(`SELECT ${READING_COLUMNS} FROM readings WHERE (vehicle, seq) > (?, ?) ORDER BY vehicle, seq LIMIT ?`),
      alertsAfter: this.db.prepare(`SELECT ${STORED_ALERT_COLUMNS} FROM alerts WHERE id > ? ORDER BY id LIMIT ?`),
      deliveriesAfter: this.db.prepare(`SELECT alert_id AS alertId, channel, state, at FROM deliveries
        WHERE (alert_id, channel) > (?, ?) ORDER BY alert_id, channel LIMIT ?`),
      importAlert: this.db.prepare(importAlertSql(param)),
      importDelivery: this.db.prepare(importDeliverySql(param)),
      setCounter: this.db.prepare(setCounterSql(param)),
      readingCount: this.db.prepare('SELECT count(*) FROM readings').pluck(),
      // Every stored reading's (vehicle, sensor) has a row in `latest`: retention walks the
      // (vehicle, sensor, ts) index pair by pair rather than keep an index on time alone.
      sensorsStored: this.db.prepare('SELECT vehicle, sensor FROM latest'),
      dropBefore: this.db.prepare(`DELETE FROM readings WHERE (vehicle, seq) IN
        (SELECT vehicle, seq FROM readings WHERE vehicle = ? AND sensor = ? AND ts < ? LIMIT ${RETENTION_BATCH})`),
    };
  }

  /** Opened and migrated by the constructor already. */
  async open(): Promise<void> {}

  async storedKeys(readings: Reading[]): Promise<Set<string>> {
    return new Set(readings.filter((r) => this.st.isStored.get(r.vehicle, r.seq) !== undefined).map(vehicleKey));
  }

  async write(w: StoreWrite): Promise<WriteResult> {
    return this.db.transaction((): WriteResult => {
      let stored = 0;
      let offered = 0;
      for (const { readings, receivedAt } of w.received) {
        offered += readings.length;
        for (const r of readings) if (this.insertReading(r, receivedAt)) stored++;
      }
      const duplicates = w.duplicates + (w.retry ? 0 : offered - stored);
      if (duplicates > 0) this.st.addCounter.run('duplicates', duplicates);
      return { stored, duplicates, changed: this.applyAlertEvents(w.events, w.at) };
    })();
  }

  async getAlert(id: string): Promise<StoredAlert | undefined> {
    const row = this.st.getAlert.get(id);
    return row === undefined ? undefined : toStoredAlert(row);
  }

  async openAlerts(vehicles: string[]): Promise<StoredAlert[]> {
    return vehicles.flatMap((v) => this.st.openAlerts.all(v).map(toStoredAlert));
  }

  async listAlerts(f: AlertFilter = {}): Promise<StoredAlert[]> {
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

  async alertCountsByState(): Promise<Record<AlertState, number>> {
    const counts = Object.fromEntries(ALERT_STATES.map((s) => [s, 0])) as Record<AlertState, number>;
    for (const { state, n } of this.st.alertsByState.all() as { state: AlertState; n: number }[]) counts[state] = n;
    return counts;
  }

  async activeAlertsByVehicle(): Promise<Map<string, number>> {
    const rows = this.st.activeByVehicle.all() as { vehicle: string; n: number }[];
    return new Map(rows.map((r) => [r.vehicle, r.n]));
  }

  async acknowledge(id: string, by: string, at: number): Promise<StoredAlert | undefined> {
    return this.lifecycle(id, 'acknowledged', () => this.st.ackAlert.run(by, at, id).changes, at);
  }

  async clear(id: string, by: string, at: number): Promise<StoredAlert | undefined> {
    return this.lifecycle(id, 'cleared', () => this.st.clearAlert.run(by, at, null, id).changes, at);
  }

  async changesAfter(id: number, limit = 500): Promise<AlertChange[]> {
    return this.st.changesAfter.all(id, limit) as AlertChange[];
  }

  async lastChangeId(): Promise<number> {
    return this.st.lastChange.get() as number;
  }

  async latestRows(): Promise<LatestRow[]> {
    return this.st.latest.all() as LatestRow[];
  }

  async latestRowsSince(cursor: number | undefined): Promise<LatestPage> {
    let next = cursor ?? -1;
    const rows = (this.st.latestSince.all(next) as (LatestRow & { version: number })[]).map(({ version, ...row }) => {
      next = Math.max(next, version);
      return row;
    });
    return { rows, cursor: next };
  }

  /** Walks the (vehicle, sensor, ts) index, so its cost follows the window asked for. */
  async readingSeries(vehicle: string, sensor: SensorId, since: number): Promise<{ ts: number; value: number }[]> {
    return this.st.series.all(vehicle, sensor, since) as { ts: number; value: number }[];
  }

  async tracks(since: number, bucketMs: number): Promise<Map<string, TrackPoint[]>> {
    return this.db.transaction(
      () =>
        new Map(
          (this.st.gpsVehicles.all(since) as string[]).map((v) => [v, this.st.track.all(v, since, bucketMs) as TrackPoint[]] as const),
        ),
    )();
  }

  async counts(): Promise<{ readingsStored: number; duplicates: number }> {
    return {
      readingsStored: this.st.readingCount.get() as number,
      duplicates: (this.st.counter.get('duplicates') as number | undefined) ?? 0,
    };
  }

  /** In transactions of RETENTION_BATCH readings, giving way to other work between them. */
  async dropReadingsBefore(before: number): Promise<number> {
    let dropped = 0;
    for (const { vehicle, sensor } of this.st.sensorsStored.all() as { vehicle: string; sensor: string }[]) {
      for (;;) {
        const { changes } = this.st.dropBefore.run(vehicle, sensor, before);
        dropped += changes;
        await yieldToOthers();
        if (changes < RETENTION_BATCH) break;
      }
    }
    return dropped;
  }

  async readingsPage(after: ReadingKey | undefined, limit: number): Promise<ReceivedReading[]> {
    const rows = after ? this.st.readingsAfter.all(after.vehicle, after.seq, limit) : this.st.firstReadings.all(limit);
    return (rows as ReadingRow[]).map(receivedReading);
  }

  async alertsPage(after: string | undefined, limit: number): Promise<StoredAlert[]> {
    return this.st.alertsAfter.all(after ?? '', limit).map(toStoredAlert);
  }

  async deliveriesPage(after: Pick<DeliveryRow, 'alertId' | 'channel'> | undefined, limit: number): Promise<DeliveryRow[]> {
    return this.st.deliveriesAfter.all(after?.alertId ?? '', after?.channel ?? '', limit) as DeliveryRow[];
  }

  async importLatest(rows: LatestRow[]): Promise<void> {
    this.db.transaction(() => {
      for (const r of rows) this.st.upsertLatest.run(r.vehicle, r.sensor, r.seq, r.ts, r.value, r.lat, r.lon, r.heading);
    })();
  }

  async importAlerts(alerts: StoredAlert[]): Promise<void> {
    this.db.transaction(() => {
      for (const a of alerts) this.st.importAlert.run(...importedAlertValues(a).map(sqliteValue));
    })();
  }

  async importDeliveries(rows: DeliveryRow[]): Promise<void> {
    this.db.transaction(() => {
      for (const d of rows) this.st.importDelivery.run(d.alertId, d.channel, d.state, d.at);
    })();
  }

  async importChanges(source: string, changes: AlertChange[]): Promise<number> {
    const mark = copiedCounter('changes', source);
    return this.db.transaction(() => {
      const done = (this.st.counter.get(mark) as number | undefined) ?? 0;
      const fresh = changes.filter((c) => c.id > done);
      for (const c of fresh) this.st.change.run(c.alertId, c.kind, c.at);
      if (fresh.length > 0) this.st.setCounter.run(mark, fresh.at(-1)!.id);
      return fresh.length;
    })();
  }

  async importDuplicates(source: string, total: number): Promise<number> {
    const mark = copiedCounter('duplicates', source);
    return this.db.transaction(() => {
      const added = total - ((this.st.counter.get(mark) as number | undefined) ?? 0);
      if (added <= 0) return 0;
      this.st.addCounter.run('duplicates', added);
      this.st.setCounter.run(mark, total);
      return added;
    })();
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** True when the reading was new. */
  private insertReading(r: Reading, receivedAt: number): boolean {
    const p = r.position;
    const { changes } = this.st.insertReading.run(
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
    if (changes === 1)
      this.st.upsertLatest.run(r.vehicle, r.sensor, r.seq, r.ts, r.value, p?.lat ?? null, p?.lon ?? null, p?.heading ?? null);
    return changes === 1;
  }

  private applyAlertEvents(events: AlertEvent[], at: number): string[] {
    const changed: string[] = [];
    for (const e of events) {
      const id = e.kind === 'cleared' ? e.alertId : e.alert.id;
      const res =
        e.kind === 'raised'
          ? this.st.insertAlert.run(...sqliteValues(e.alert))
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

  private lifecycle(id: string, kind: AlertState, update: () => number, at: number): StoredAlert | undefined {
    return this.db.transaction(() => {
      if (update() === 1) this.st.change.run(id, kind, at);
      const row = this.st.getAlert.get(id);
      return row === undefined ? undefined : toStoredAlert(row);
    })();
  }
}

/** SQLite has no booleans: flags are 0 or 1 in their columns. */
const sqliteValue = <T>(v: T | boolean) => (typeof v === 'boolean' ? Number(v) : v);
const sqliteValues = (a: Alert) => alertValues(a).map(sqliteValue);
/** SQLite's placeholders are positional. */
const param = () => '?';
