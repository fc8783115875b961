import type { Alert, AlertState, ClearReason } from '../../shared/contract/alert.js';

/** What the store keeps beside the contract's alert: its lifecycle, and when the cab was given it. */
export interface AlertLifecycle {
  state: AlertState;
  ackedBy: string | null;
  ackedAt: number | null;
  clearedBy: string | null;
  clearedAt: number | null;
  /** Why the detector ended the episode; null while open or when a person cleared it. */
  clearReason: ClearReason | null;
  /** When the cab was given it: sent, or once the cab acknowledged it, then. Never sent, or expired unacknowledged: null. */
  driverSentAt: number | null;
}

/** An alert as the console and the API see it: the contract's alert, every field set, and its lifecycle. */
export type StoredAlert = Required<Alert> & AlertLifecycle;

/**
 * Where each field lives in the `alerts` table: the one mapping between the contract's
 * alert and its row. A field added to the contract must be given a column here.
 */
const ALERT_COLUMNS: Record<keyof Alert, string> = {
  id: 'id', vehicle: 'vehicle', rule: 'rule', severity: 'severity', sensor: 'sensor',
  episodeStart: 'episode_start', windowStart: 'window_start', windowEnd: 'window_end',
  observed: 'observed', expected: 'expected', message: 'message', live: 'live', driver: 'driver',
  raisedAt: 'raised_at', closedAt: 'closed_at',
};

const LIFECYCLE_COLUMNS: Record<Exclude<keyof AlertLifecycle, 'driverSentAt'>, string> = {
  state: 'state', ackedBy: 'acked_by', ackedAt: 'acked_at', clearedBy: 'cleared_by', clearedAt: 'cleared_at', clearReason: 'clear_reason',
};

/** SQLite has no booleans: these are 0 or 1 in their columns. */
type AlertRow = Omit<StoredAlert, 'live' | 'driver'> & { live: number; driver: number };

const aliased = (columns: Record<string, string>) => Object.entries(columns).map(([field, column]) => `alerts.${column} AS ${field}`);

/**
 * The select list of a StoredAlert from `alerts`, in the field order the API shows. The
 * driver's delivery comes from the ledger's table beside it.
 */
export const STORED_ALERT_COLUMNS = [
  ...aliased(ALERT_COLUMNS),
  ...aliased(LIFECYCLE_COLUMNS),
  `(SELECT at FROM deliveries cab WHERE cab.alert_id = alerts.id AND cab.channel = 'driver' AND cab.state IN ('sent', 'acknowledged')) AS driverSentAt`,
].join(', ');

/** Stores a new alert; one already there (a replay raises the same id) is left as it is. */
export const INSERT_ALERT = `INSERT OR IGNORE INTO alerts (${Object.values(ALERT_COLUMNS).join(', ')})
  VALUES (${Object.keys(ALERT_COLUMNS).map((field) => `@${field}`).join(', ')})`;

/** The named parameters of INSERT_ALERT. */
export function alertParams(a: Alert): Record<keyof Alert, string | number> {
  return { ...(a as Required<Alert>), live: a.live ? 1 : 0, driver: a.driver === false ? 0 : 1 };
}

export function toStoredAlert(row: unknown): StoredAlert {
  const r = row as AlertRow;
  return { ...r, live: r.live === 1, driver: r.driver === 1 };
}
