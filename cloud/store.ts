import type { AlertState, Severity } from '../shared/contract/alert.js';
import type { Reading, SensorId } from '../shared/contract/reading.js';
import type { AlertEvent } from '../shared/rules/engine.js';
import type { DeliveryLedger } from './alerts/delivery-ledger.js';
import type { StoredAlert } from './store/stored-alert.js';

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

/** Latest values that changed since a cursor, and the cursor to ask with next. */
export interface LatestPage {
  rows: LatestRow[];
  cursor: number;
}

export interface AlertChange {
  id: number;
  alertId: string;
  kind: string;
  at: number;
}

export interface TrackPoint {
  lat: number;
  lon: number;
  ts: number;
}

/** Readings of one stream record: they reached the gateway together. */
export interface ReceivedReadings {
  readings: Reading[];
  receivedAt: number;
}

/** One reading as the store keeps it: with when it reached the gateway. */
export interface ReceivedReading {
  reading: Reading;
  receivedAt: number;
}

/** Where a page of readings in (vehicle, seq) order left off. */
export interface ReadingKey {
  vehicle: string;
  seq: number;
}

/** One (alert, channel) row of the delivery ledger (see DeliveryLedger for its states). */
export interface DeliveryRow {
  alertId: string;
  channel: string;
  state: string;
  at: number;
}

/** What one step of the detector (or a dispatcher's batch of alert events) writes, in one transaction. */
export interface StoreWrite {
  /** Readings to keep; one whose (vehicle, seq) is stored already is dropped and counted as a duplicate. */
  received: ReceivedReadings[];
  /** Repeats the caller found before writing (stored before, or twice in the step): added to the count. */
  duplicates: number;
  events: AlertEvent[];
  /** When the events were applied, for the change feed. */
  at: number;
  /**
   * The same write again after one whose outcome is unknown (the connection broke at commit):
   * readings found stored are its own, not counted as duplicates again.
   */
  retry?: boolean;
}

export interface WriteResult {
  stored: number;
  duplicates: number;
  /** Alerts whose state the events changed. */
  changed: string[];
}

/** A console session as the store keeps it: by a hash of its id, never the id the cookie carries. */
export interface StoredSession {
  user: string;
  expiresAt: number;
}

/** Console sessions in the store, so every console on it accepts the same cookie. */
export interface SessionTable {
  /** Keeps a new session; drops expired ones, and the oldest beyond `max`. */
  create(idHash: string, session: StoredSession, now: number, max: number): Promise<void>;
  get(idHash: string, now: number): Promise<StoredSession | undefined>;
  delete(idHash: string): Promise<void>;
}

/**
 * The cloud side's operational store: every distinct reading, the latest value per vehicle
 * and sensor, alerts with their lifecycle and the change feed the consoles follow, the
 * dispatcher's delivery ledger and the consoles' sessions. Two implementations side by side:
 * SQLite (store/sqlite/, one file on one machine, the default) and PostgreSQL
 * (store/postgres/, shared by processes on many hosts); `openStore` picks one from the
 * `store` setting. Each is the one module that speaks SQL to its database.
 *
 * The detector writes a step's readings and the alert events they raised in one transaction
 * (`write`), and commits its stream position only after it resolved. Every write may reject
 * (the database away, busy or full); the caller retries.
 */
export interface FleetStore {
  /** Where it is, for logs: a file, or a PostgreSQL URL without its password. */
  readonly location: string;
  /** Where the dispatcher records what each channel was given, beside the alerts. */
  readonly deliveries: DeliveryLedger;
  readonly sessions: SessionTable;

  /** Connects and brings the schema up to date: before any other call. Rejects with what is wrong. */
  open(): Promise<void>;
  /** Keys (`vehicleKey`) of these readings that are stored already. */
  storedKeys(readings: Reading[]): Promise<Set<string>>;
  write(w: StoreWrite): Promise<WriteResult>;

  getAlert(id: string): Promise<StoredAlert | undefined>;
  /** Alerts of these vehicles whose episode has not ended. */
  openAlerts(vehicles: string[]): Promise<StoredAlert[]>;
  listAlerts(f?: AlertFilter): Promise<StoredAlert[]>;
  /** Alerts in each state, all of them counted (listAlerts stops at its limit). */
  alertCountsByState(): Promise<Record<AlertState, number>>;
  activeAlertsByVehicle(): Promise<Map<string, number>>;
  /** The lifecycle only moves forward: each returns the alert as it now stands, undefined if there is none. */
  acknowledge(id: string, by: string, at: number): Promise<StoredAlert | undefined>;
  clear(id: string, by: string, at: number): Promise<StoredAlert | undefined>;

  /** The change feed: alert changes after `id`, oldest first. Ids only grow, and none commits behind one already seen. */
  changesAfter(id: number, limit?: number): Promise<AlertChange[]>;
  lastChangeId(): Promise<number>;

  /** Every vehicle's latest value of each sensor, by vehicle. */
  latestRows(): Promise<LatestRow[]>;
  /**
   * The latest values that changed since the call that answered `cursor` (every one when it is
   * undefined), with the cursor for the next call: a poller reads what moved, not the table.
   * No change committed after that call is missed, whatever order concurrent writers commit
   * in; a row may come again (its seq tells whether it moved).
   */
  latestRowsSince(cursor: number | undefined): Promise<LatestPage>;
  /** A sensor's readings since `since`, bad ones left out, oldest first. */
  readingSeries(vehicle: string, sensor: SensorId, since: number): Promise<{ ts: number; value: number }[]>;
  /** Every vehicle's positions since `since`, at most one per `bucketMs` (the newest in it), oldest first. */
  tracks(since: number, bucketMs: number): Promise<Map<string, TrackPoint[]>>;
  counts(): Promise<{ readingsStored: number; duplicates: number }>;

  /**
   * Stored readings after `after` (from the first when undefined) in (vehicle, seq) order, at
   * most `limit`: a reader walks the whole table a page at a time, each page one indexed query.
   */
  readingsPage(after: ReadingKey | undefined, limit: number): Promise<ReceivedReading[]>;
  /** Alerts with their lifecycle after id `after`, in id order, at most `limit`. */
  alertsPage(after: string | undefined, limit: number): Promise<StoredAlert[]>;
  /** The delivery ledger's rows after (alertId, channel) `after`, in that order, at most `limit`. */
  deliveriesPage(after: Pick<DeliveryRow, 'alertId' | 'channel'> | undefined, limit: number): Promise<DeliveryRow[]>;

  /*
   * Taking what another store holds (`fleet store copy`), in any order and any number of
   * times, into a store that may be live: nothing already here moves backwards. Readings go
   * in through `write` (a retry: found ones are not counted as duplicates).
   */
  /** Latest values, each kept only where its seq is newer than the one here. */
  importLatest(rows: LatestRow[]): Promise<void>;
  /** Alerts as given, or an alert here moved forward to where the given one stands (promoted; acknowledged; cleared). */
  importAlerts(alerts: StoredAlert[]): Promise<void>;
  /** Ledger rows as given, or a row here moved forward (sending → sent → expired → acknowledged). */
  importDeliveries(rows: DeliveryRow[]): Promise<void>;
  /**
   * Appends `source`'s changes (ids ascending) that are past the last of its changes appended
   * before, with ids of this feed's own, after any here: returns how many went in.
   */
  importChanges(source: string, changes: AlertChange[]): Promise<number>;
  /** Adds to the duplicates count what `source` counted beyond what was added from it before; returns how many. */
  importDuplicates(source: string, total: number): Promise<number>;

  /**
   * Drops readings whose event time is before `before` (retention); the latest values stay.
   * Returns how many went (PostgreSQL drops whole days, so up to a day less than asked).
   */
  dropReadingsBefore(before: number): Promise<number>;
  close(): Promise<void>;
}

/** How `storedKeys` names a reading. */
export const vehicleKey = (r: { vehicle: string; seq: number }) => `${r.vehicle}\u0000${r.seq}`;

/** Latest values grouped by vehicle. */
export function latestByVehicle(rows: LatestRow[]): Map<string, LatestValue[]> {
  const out = new Map<string, LatestValue[]>();
  for (const { vehicle, seq: _seq, ...value } of rows) out.set(vehicle, [...(out.get(vehicle) ?? []), value]);
  return out;
}
