import { ALERT_COLUMNS, alertValues, type StoredAlert } from './stored-alert.js';

/**
 * The SQL by which a store takes what another store holds (FleetStore's import methods),
 * spoken alike by SQLite and PostgreSQL: each store gives its placeholder for the n-th
 * parameter (1-based). Whatever is here already only moves forward: a copy run twice, or
 * into a store a detector writes meanwhile, never takes anything back.
 */

/** The counter (in `counters`) holding how far copies from `source` got with `what`: the last change id, the duplicates added. */
export const copiedCounter = (what: 'changes' | 'duplicates', source: string) => `copied ${what} from ${source}`;

/** Forward order of an alert's state and of a delivery's. */
const ALERT_STATE_RANK = { active: 0, acknowledged: 1, cleared: 2 };
const DELIVERY_STATE_RANK = { sending: 0, sent: 1, expired: 2, acknowledged: 3 };

const rank = (column: string, ranks: Record<string, number>) =>
  `(CASE ${column} ${Object.entries(ranks)
    .map(([state, n]) => `WHEN '${state}' THEN ${n}`)
    .join(' ')} END)`;

/** Lifecycle columns an imported alert's row is written with, after the contract's. */
export const IMPORTED_ALERT_COLUMNS = [...ALERT_COLUMNS, 'state', 'acked_by', 'acked_at', 'cleared_by', 'cleared_at', 'clear_reason'];

/** What promotion (the window seen live) changes, as the detector's `promoted` does. */
const PROMOTED = ['live', 'window_start', 'window_end', 'observed', 'closed_at'];
const CLEARED = ['cleared_by', 'cleared_at', 'clear_reason'];

const values = (columns: string[], param: (n: number) => string) => `(${columns.map((_, i) => param(i + 1)).join(', ')})`;

/**
 * One alert in IMPORTED_ALERT_COLUMNS' order, or the alert here moved forward: promoted if
 * the given one is live and this not; acknowledged if not before; to the given state when
 * that is further on, cleared with the given one's who, when and why.
 */
export const importAlertSql = (param: (n: number) => string) => `INSERT INTO alerts (${IMPORTED_ALERT_COLUMNS.join(', ')})
  VALUES ${values(IMPORTED_ALERT_COLUMNS, param)}
  ON CONFLICT (id) DO UPDATE SET
  ${[
    ...PROMOTED.map((c) => `${c} = CASE WHEN excluded.live AND NOT alerts.live THEN excluded.${c} ELSE alerts.${c} END`),
    ...['acked_by', 'acked_at'].map((c) => `${c} = CASE WHEN alerts.acked_at IS NULL THEN excluded.${c} ELSE alerts.${c} END`),
    `state = CASE WHEN ${rank('excluded.state', ALERT_STATE_RANK)} > ${rank('alerts.state', ALERT_STATE_RANK)} THEN excluded.state ELSE alerts.state END`,
    ...CLEARED.map(
      (c) => `${c} = CASE WHEN excluded.state = 'cleared' AND alerts.state != 'cleared' THEN excluded.${c} ELSE alerts.${c} END`,
    ),
  ].join(',\n  ')}`;

/** One ledger row, or the row here moved on to the given one's state when that is further on. */
export const importDeliverySql = (param: (n: number) => string) => `INSERT INTO deliveries (alert_id, channel, state, at)
  VALUES ${values(['alert_id', 'channel', 'state', 'at'], param)}
  ON CONFLICT (alert_id, channel) DO UPDATE SET state = excluded.state, at = excluded.at
  WHERE ${rank('excluded.state', DELIVERY_STATE_RANK)} > ${rank('deliveries.state', DELIVERY_STATE_RANK)}`;

const LATEST_COLUMNS = ['vehicle', 'sensor', 'seq', 'ts', 'value', 'lat', 'lon', 'heading'];

/**
 * One latest value, kept where its seq is newer than the one here (as a write moves it), with
 * the change version `version` (an SQL expression: each store draws its own, see its schema).
 */
export const importLatestSql = (param: (n: number) => string, version: string) =>
  `INSERT INTO latest (${LATEST_COLUMNS.join(', ')}, version) VALUES (${LATEST_COLUMNS.map((_, i) => param(i + 1)).join(', ')}, ${version})
  ON CONFLICT (vehicle, sensor) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, value = excluded.value,
  lat = excluded.lat, lon = excluded.lon, heading = excluded.heading, version = excluded.version WHERE excluded.seq > latest.seq`;

/** Sets a counter ($1 its name, $2 its value). */
export const setCounterSql = (param: (n: number) => string) =>
  `INSERT INTO counters (name, value) VALUES (${param(1)}, ${param(2)}) ON CONFLICT (name) DO UPDATE SET value = excluded.value`;

/** An alert's row values in IMPORTED_ALERT_COLUMNS' order. */
export const importedAlertValues = (a: StoredAlert) => [
  ...alertValues(a),
  ...[a.state, a.ackedBy, a.ackedAt, a.clearedBy, a.clearedAt, a.clearReason],
];
