import { ALERT_FIELDS, wireAlert, type Alert, type AlertState, type ClearReason } from '../../shared/contract/alert.js';

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

/** Lifecycle fields kept in columns of their own (when the cab had it comes from the ledger's table). */
const LIFECYCLE_FIELDS: Record<Exclude<keyof AlertLifecycle, 'driverSentAt'>, true> = {
  state: true,
  ackedBy: true,
  ackedAt: true,
  clearedBy: true,
  clearedAt: true,
  clearReason: true,
};

/** Each field's column is its name in snake case: `episodeStart` lives in `episode_start`. */
const columnOf = (field: string) => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** SQLite has no booleans: these are 0 or 1 in their columns. */
type AlertRow = Omit<StoredAlert, 'live' | 'driver'> & { live: number; driver: number };

const aliased = (fields: string[]) => fields.map((field) => `alerts.${columnOf(field)} AS ${field}`);

/**
 * The select list of a StoredAlert from `alerts`, in the field order the API shows. The
 * driver's delivery comes from the ledger's table beside it.
 */
export const STORED_ALERT_COLUMNS = [
  ...aliased(ALERT_FIELDS),
  ...aliased(Object.keys(LIFECYCLE_FIELDS)),
  `(SELECT at FROM deliveries cab WHERE cab.alert_id = alerts.id AND cab.channel = 'driver' AND cab.state IN ('sent', 'acknowledged')) AS driverSentAt`,
].join(', ');

/** Stores a new alert; one already there (a replay raises the same id) is left as it is. */
export const INSERT_ALERT = `INSERT OR IGNORE INTO alerts (${ALERT_FIELDS.map(columnOf).join(', ')})
  VALUES (${ALERT_FIELDS.map((field) => `@${field}`).join(', ')})`;

/** The named parameters of INSERT_ALERT: the alert's fields, its flags as 0 or 1 (absent `driver` means the cab is told). */
export function alertParams(a: Alert): Record<keyof Alert, string | number> {
  return { ...(wireAlert(a) as Required<Alert>), live: a.live ? 1 : 0, driver: a.driver === false ? 0 : 1 };
}

export function toStoredAlert(row: unknown): StoredAlert {
  const r = row as AlertRow;
  return { ...r, live: r.live === 1, driver: r.driver === 1 };
}
