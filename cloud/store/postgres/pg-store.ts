import type pg from 'pg';
import type { Logger } from '../../../shared/log.js';
import { ALERT_STATES, type AlertState } from '../../../shared/contract/alert.js';
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
import { copiedCounter, importAlertSql, importDeliverySql, importedAlertValues, setCounterSql } from '../import-sql.js';
import { READING_COLUMNS, receivedReading, type ReadingRow } from '../reading-row.js';
import { alertValues, STORED_ALERT_COLUMNS, toStoredAlert, type StoredAlert } from '../stored-alert.js';
import { createPool, inTransaction, redacted } from './connection.js';
import { PgDeliveryTable } from './delivery-table.js';
import { migrate } from './migrate.js';
import { Partitions } from './partitions.js';
import {
  ACK_ALERT,
  ADD_COUNTER,
  CLEAR_ALERT,
  IMPORT_LATEST,
  INSERT_READINGS,
  LATEST_SINCE,
  LOCK_CHANGES,
  PROMOTE_ALERT,
  RAISE_ALERT,
  readingColumns,
  STORED_KEYS,
} from './schema.js';
import { PgSessionTable } from './session-table.js';

/** PostgreSQL's "no partition of relation found for row": a day's partition another process dropped. */
const NO_PARTITION = '23514';
/** Slots of the per-day reading counts (schema.ts): writers in different processes rarely share one. */
const COUNT_SLOTS = 16;

/** PostgreSQL's placeholders are numbered. */
const param = (n: number) => `$${n}`;

const SQL = {
  getAlert: `SELECT ${STORED_ALERT_COLUMNS} FROM alerts WHERE id = $1`,
  openAlerts: `SELECT ${STORED_ALERT_COLUMNS} FROM alerts WHERE vehicle = ANY($1) AND state != 'cleared'`,
  changesAfter: 'SELECT id, alert_id AS "alertId", kind, at FROM alert_changes WHERE id > $1 ORDER BY id LIMIT $2',
  lastChange: 'SELECT coalesce(max(id), 0) AS id FROM alert_changes',
  alertsByState: 'SELECT state, count(*) AS n FROM alerts GROUP BY state',
  activeByVehicle: `SELECT vehicle, count(*) AS n FROM alerts WHERE state = 'active' GROUP BY vehicle`,
  latest: 'SELECT vehicle, sensor, seq, ts, value, lat, lon, heading FROM latest ORDER BY vehicle',
  series: `SELECT ts, value FROM readings WHERE vehicle = $1 AND sensor = $2 AND ts >= $3 AND quality != 'bad' ORDER BY ts`,
  // One point per bucket, the newest in it, keeps a track light.
  tracks: `SELECT vehicle, lat, lon, ts FROM (
      SELECT DISTINCT ON (vehicle, ts / $2) vehicle, lat, lon, ts FROM readings
      WHERE sensor = 'gps' AND ts >= $1 AND lat IS NOT NULL AND quality != 'bad' ORDER BY vehicle, ts / $2, ts DESC) t
    ORDER BY vehicle, ts`,
  firstReadings: `SELECT ${READING_COLUMNS} FROM readings ORDER BY vehicle, seq LIMIT $1`,
  readingsAfter: `SELECT ${READING_COLUMNS} FROM readings WHERE (vehicle, seq) > ($1, $2) ORDER BY vehicle, seq LIMIT $3`,
  alertsAfter: `SELECT ${STORED_ALERT_COLUMNS} FROM alerts WHERE id > $1 ORDER BY id LIMIT $2`,
  deliveriesAfter: `SELECT alert_id AS "alertId", channel, state, at FROM deliveries
    WHERE (alert_id, channel) > ($1, $2) ORDER BY alert_id, channel LIMIT $3`,
  importAlert: importAlertSql(param),
  importDelivery: importDeliverySql(param),
  setCounter: setCounterSql(param),
  makeCounter: 'INSERT INTO counters (name, value) VALUES ($1, 0) ON CONFLICT DO NOTHING',
  lockCounter: 'SELECT value FROM counters WHERE name = $1 FOR UPDATE',
  appendChanges: `INSERT INTO alert_changes (alert_id, kind, at)
    SELECT alert_id, kind, at FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS t(alert_id, kind, at, n) ORDER BY n`,
  readingCount: 'SELECT coalesce(sum(n), 0)::bigint AS n FROM reading_counts',
  duplicates: `SELECT value FROM counters WHERE name = 'duplicates'`,
};

/**
 * The operational store in PostgreSQL, shared by detectors, dispatchers and consoles on many
 * hosts. Same tables and behaviour as the SQLite store (../sqlite/sqlite-store.ts), with
 * readings partitioned by day of event time (schema.ts, partitions.ts). A step's readings
 * go in as one statement of arrays (unnest), so a write is one round trip per table.
 */
export class PgStore implements FleetStore {
  readonly location: string;
  readonly deliveries: PgDeliveryTable;
  readonly sessions: PgSessionTable;
  private readonly pool: pg.Pool;
  private readonly partitions: Partitions;
  private readonly slot = Math.floor(Math.random() * COUNT_SLOTS);

  constructor(url: string, log?: Logger) {
    this.location = redacted(url);
    this.pool = createPool(url, log);
    this.deliveries = new PgDeliveryTable(this.pool);
    this.sessions = new PgSessionTable(this.pool);
    this.partitions = new Partitions(this.pool);
  }

  /** Rejects naming the database (without its password) when it cannot be reached or migrated. */
  async open(): Promise<void> {
    try {
      await migrate(this.pool, this.location);
    } catch (err) {
      throw new Error(`store ${this.location}: ${(err as Error).message}`, { cause: err });
    }
  }

  async storedKeys(readings: Reading[]): Promise<Set<string>> {
    if (readings.length === 0) return new Set();
    const keys = [readings.map((r) => r.vehicle), readings.map((r) => r.seq), readings.map((r) => r.ts)];
    const { rows } = await this.pool.query<{ vehicle: string; seq: number }>(STORED_KEYS, keys);
    return new Set(rows.map(vehicleKey));
  }

  async write(w: StoreWrite): Promise<WriteResult> {
    const received = w.received.flatMap(({ readings, receivedAt }) => readings.map((reading) => ({ reading, receivedAt })));
    await this.partitions.ensure(received.map((r) => r.reading.ts));
    try {
      return await inTransaction(this.pool, async (c) => {
        let stored = 0;
        if (received.length > 0) {
          const { rows } = await c.query<{ stored: number }>(INSERT_READINGS, [...readingColumns(received), this.slot]);
          stored = rows[0]?.stored ?? 0;
        }
        const duplicates = w.duplicates + (w.retry ? 0 : received.length - stored);
        if (duplicates > 0) await c.query(ADD_COUNTER, ['duplicates', duplicates]);
        return { stored, duplicates, changed: await this.applyAlertEvents(c, w.events, w.at) };
      });
    } catch (err) {
      if ((err as { code?: string }).code === NO_PARTITION) this.partitions.forget();
      throw err;
    }
  }

  async getAlert(id: string): Promise<StoredAlert | undefined> {
    const row = (await this.pool.query(SQL.getAlert, [id])).rows[0] as unknown;
    return row === undefined ? undefined : toStoredAlert(row);
  }

  async openAlerts(vehicles: string[]): Promise<StoredAlert[]> {
    if (vehicles.length === 0) return [];
    return (await this.pool.query(SQL.openAlerts, [vehicles])).rows.map(toStoredAlert);
  }

  async listAlerts(f: AlertFilter = {}): Promise<StoredAlert[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const filter = (column: string, value: unknown) => {
      args.push(value);
      where.push(`${column} = $${args.length}`);
    };
    if (f.state) filter('state', f.state);
    if (f.severity) filter('severity', f.severity);
    if (f.vehicle) filter('vehicle', f.vehicle);
    args.push(f.limit ?? 500);
    const sql = `SELECT ${STORED_ALERT_COLUMNS} FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY raised_at DESC LIMIT $${args.length}`;
    return (await this.pool.query(sql, args)).rows.map(toStoredAlert);
  }

  async alertCountsByState(): Promise<Record<AlertState, number>> {
    const counts = Object.fromEntries(ALERT_STATES.map((s) => [s, 0])) as Record<AlertState, number>;
    for (const { state, n } of (await this.pool.query<{ state: AlertState; n: number }>(SQL.alertsByState)).rows) counts[state] = n;
    return counts;
  }

  async activeAlertsByVehicle(): Promise<Map<string, number>> {
    const { rows } = await this.pool.query<{ vehicle: string; n: number }>(SQL.activeByVehicle);
    return new Map(rows.map((r) => [r.vehicle, r.n]));
  }

  async acknowledge(id: string, by: string, at: number): Promise<StoredAlert | undefined> {
    return this.lifecycle(ACK_ALERT, [id, by, at]);
  }

  async clear(id: string, by: string, at: number): Promise<StoredAlert | undefined> {
    return this.lifecycle(CLEAR_ALERT, [id, by, at, null, at]);
  }

  async changesAfter(id: number, limit = 500): Promise<AlertChange[]> {
    return (await this.pool.query<AlertChange>(SQL.changesAfter, [id, limit])).rows;
  }

  async lastChangeId(): Promise<number> {
    return (await this.pool.query<{ id: number }>(SQL.lastChange)).rows[0]?.id ?? 0;
  }

  async latestRows(): Promise<LatestRow[]> {
    return (await this.pool.query<LatestRow>(SQL.latest)).rows;
  }

  /** With no row of that version or later, the cursor stays: nothing was missed. */
  async latestRowsSince(cursor: number | undefined): Promise<LatestPage> {
    const { rows } = await this.pool.query<LatestRow & { cursor: number }>(LATEST_SINCE, [cursor ?? 0]);
    return { rows: rows.map(({ cursor: _cursor, ...row }) => row), cursor: rows[0]?.cursor ?? cursor ?? 0 };
  }

  async readingSeries(vehicle: string, sensor: SensorId, since: number): Promise<{ ts: number; value: number }[]> {
    return (await this.pool.query<{ ts: number; value: number }>(SQL.series, [vehicle, sensor, since])).rows;
  }

  async tracks(since: number, bucketMs: number): Promise<Map<string, TrackPoint[]>> {
    const out = new Map<string, TrackPoint[]>();
    const { rows } = await this.pool.query<TrackPoint & { vehicle: string }>(SQL.tracks, [since, bucketMs]);
    for (const { vehicle, ...point } of rows) out.set(vehicle, [...(out.get(vehicle) ?? []), point]);
    return out;
  }

  async counts(): Promise<{ readingsStored: number; duplicates: number }> {
    const [stored, duplicates] = await Promise.all([
      this.pool.query<{ n: number }>(SQL.readingCount),
      this.pool.query<{ value: number }>(SQL.duplicates),
    ]);
    return { readingsStored: stored.rows[0]?.n ?? 0, duplicates: duplicates.rows[0]?.value ?? 0 };
  }

  async readingsPage(after: ReadingKey | undefined, limit: number): Promise<ReceivedReading[]> {
    const { rows } = after
      ? await this.pool.query<ReadingRow>(SQL.readingsAfter, [after.vehicle, after.seq, limit])
      : await this.pool.query<ReadingRow>(SQL.firstReadings, [limit]);
    return rows.map(receivedReading);
  }

  async alertsPage(after: string | undefined, limit: number): Promise<StoredAlert[]> {
    return (await this.pool.query(SQL.alertsAfter, [after ?? '', limit])).rows.map(toStoredAlert);
  }

  async deliveriesPage(after: Pick<DeliveryRow, 'alertId' | 'channel'> | undefined, limit: number): Promise<DeliveryRow[]> {
    return (await this.pool.query<DeliveryRow>(SQL.deliveriesAfter, [after?.alertId ?? '', after?.channel ?? '', limit])).rows;
  }

  async importLatest(rows: LatestRow[]): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      for (const r of rows) await c.query(IMPORT_LATEST, [r.vehicle, r.sensor, r.seq, r.ts, r.value, r.lat, r.lon, r.heading]);
    });
  }

  async importAlerts(alerts: StoredAlert[]): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      for (const a of alerts) await c.query(SQL.importAlert, importedAlertValues(a));
    });
  }

  async importDeliveries(rows: DeliveryRow[]): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      for (const d of rows) await c.query(SQL.importDelivery, [d.alertId, d.channel, d.state, d.at]);
    });
  }

  /** Under the change-feed lock, as every writer of changes: the ids drawn here commit in order with theirs. */
  async importChanges(source: string, changes: AlertChange[]): Promise<number> {
    const mark = copiedCounter('changes', source);
    return inTransaction(this.pool, async (c) => {
      await c.query(LOCK_CHANGES);
      const done = await lockedCounter(c, mark);
      const fresh = changes.filter((ch) => ch.id > done);
      if (fresh.length === 0) return 0;
      await c.query(SQL.appendChanges, [fresh.map((ch) => ch.alertId), fresh.map((ch) => ch.kind), fresh.map((ch) => ch.at)]);
      await c.query(SQL.setCounter, [mark, fresh.at(-1)!.id]);
      return fresh.length;
    });
  }

  async importDuplicates(source: string, total: number): Promise<number> {
    const mark = copiedCounter('duplicates', source);
    return inTransaction(this.pool, async (c) => {
      const added = total - (await lockedCounter(c, mark));
      if (added <= 0) return 0;
      await c.query(ADD_COUNTER, ['duplicates', added]);
      await c.query(SQL.setCounter, [mark, total]);
      return added;
    });
  }

  dropReadingsBefore(before: number): Promise<number> {
    return this.partitions.dropBefore(before);
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  /**
   * Under the change-feed lock (schema.ts, LOCKS.changes) when there is anything to apply:
   * change ids then commit in the order they were drawn.
   */
  private async applyAlertEvents(c: pg.PoolClient, events: AlertEvent[], at: number): Promise<string[]> {
    if (events.length === 0) return [];
    await c.query(LOCK_CHANGES);
    const changed: string[] = [];
    for (const e of events) {
      const res =
        e.kind === 'raised'
          ? await c.query(RAISE_ALERT, [...alertValues(e.alert), at])
          : e.kind === 'promoted'
            ? await c.query(PROMOTE_ALERT, [e.alert.id, e.alert.windowStart, e.alert.windowEnd, e.alert.observed, e.alert.closedAt, at])
            : await c.query(CLEAR_ALERT, [e.alertId, 'detector', e.at, e.reason, at]);
      if (res.rowCount === 1) changed.push(e.kind === 'cleared' ? e.alertId : e.alert.id);
    }
    return changed;
  }

  private lifecycle(sql: string, params: unknown[]): Promise<StoredAlert | undefined> {
    return inTransaction(this.pool, async (c) => {
      await c.query(LOCK_CHANGES);
      await c.query(sql, params);
      const row = (await c.query(SQL.getAlert, [params[0]])).rows[0] as unknown;
      return row === undefined ? undefined : toStoredAlert(row);
    });
  }
}

/** A counter's value, its row made first if missing and locked to the end of the transaction: two copies from one source take turns. */
async function lockedCounter(c: pg.PoolClient, name: string): Promise<number> {
  await c.query(SQL.makeCounter, [name]);
  return (await c.query<{ value: number }>(SQL.lockCounter, [name])).rows[0]?.value ?? 0;
}
