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

/** Each field's column is its name in snake case: `episodeStart` lives in `episode_start`. Both stores name them so. */
const columnOf = (field: string) => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The contract's fields' columns, in the contract's order: what a new alert's row is written with. */
export const ALERT_COLUMNS = ALERT_FIELDS.map(columnOf);

/** SQLite has no booleans (0 or 1); a PostgreSQL row has them. */
type AlertRow = Omit<StoredAlert, 'live' | 'driver'> & { live: number | boolean; driver: number | boolean };

// Quoted: PostgreSQL folds an unquoted alias to lower case.
const aliased = (fields: string[]) => fields.map((field) => `alerts.${columnOf(field)} AS "${field}"`);

/**
 * The select list of a StoredAlert from `alerts`, in the field order the API shows, in SQL
 * both stores read alike. The driver's delivery comes from the ledger's table beside it.
 */
export const STORED_ALERT_COLUMNS = [
  ...aliased(ALERT_FIELDS),
  ...aliased(Object.keys(LIFECYCLE_FIELDS)),
  `(SELECT at FROM deliveries cab WHERE cab.alert_id = alerts.id AND cab.channel = 'driver' AND cab.state IN ('sent', 'acknowledged')) AS "driverSentAt"`,
].join(', ');

/** A new alert's row values in ALERT_COLUMNS' order; absent `driver` means the cab is told. */
export function alertValues(a: Alert): (string | number | boolean)[] {
  const full = { ...(wireAlert(a) as Required<Alert>), driver: a.driver !== false };
  return ALERT_FIELDS.map((f) => full[f]);
}

export function toStoredAlert(row: unknown): StoredAlert {
  const r = row as AlertRow;
  return { ...r, live: r.live === 1 || r.live === true, driver: r.driver === 1 || r.driver === true };
}
