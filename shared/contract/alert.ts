import { ContractError } from './errors.js';
import type { SensorId } from './reading.js';
import { checkVehicleId, inRange, oneOf, show } from './validate.js';

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const ALERT_STATES = ['active', 'acknowledged', 'cleared'] as const;

/**
 * Why the detector ended an episode: back in range, or a persistent change accepted as
 * the new normal (the rule re-learnt), so no episode stays open for ever.
 */
export const CLEAR_REASONS = ['recovered', 'level_shift'] as const;
export type ClearReason = (typeof CLEAR_REASONS)[number];
export type AlertState = (typeof ALERT_STATES)[number];

export interface Alert {
  /** alertId(vehicle, rule, episodeStart): a replay or a restarted detector raises the same id. */
  id: string;
  vehicle: string;
  rule: string;
  severity: Severity;
  sensor: SensorId;
  /** Start of the first window of the episode (event time). */
  episodeStart: number;
  windowStart: number;
  windowEnd: number;
  observed: number;
  /** The bound that was crossed, in the sensor's unit (or °C/min for rate rules). */
  expected: number;
  message: string;
  /** Historical alerts came from a backlog; the driver is never told about the past. */
  live: boolean;
  /** Whether the driver's cab is told (sensor-health rules tell only the fleet team). Absent means true. */
  driver?: boolean;
  raisedAt: number;
  /** When the reading that closed the window reached the gateway: the start of alert latency. */
  closedAt: number;
}

/**
 * Every field of the alert, typed against Alert so that neither can gain a field the other
 * lacks. The alert's other forms derive from it: the store's row (cloud/store/stored-alert.ts)
 * and the alert as it travels (wireAlert).
 */
const FIELDS: Record<keyof Alert, true> = {
  id: true,
  vehicle: true,
  rule: true,
  severity: true,
  sensor: true,
  episodeStart: true,
  windowStart: true,
  windowEnd: true,
  observed: true,
  expected: true,
  message: true,
  live: true,
  driver: true,
  raisedAt: true,
  closedAt: true,
};
export const ALERT_FIELDS = Object.keys(FIELDS) as (keyof Alert)[];

/**
 * The alert as it travels (to the cab, webhooks, SNS, fleet.alerts): its own fields, in
 * order, of whatever carries more (a stored alert's lifecycle stays in the store).
 */
export function wireAlert(a: Alert): Alert {
  return Object.fromEntries(ALERT_FIELDS.filter((f) => a[f] !== undefined).map((f) => [f, a[f]])) as unknown as Alert;
}

export function alertId(vehicle: string, rule: string, episodeStart: number): string {
  return `${vehicle}.${rule}.${episodeStart}`;
}

/** Validates an alert arriving at the agent or the console, e.g. from MQTT. */
export function parseAlert(payload: Buffer | string): Alert {
  let a: Alert;
  try {
    a = JSON.parse(payload.toString()) as Alert;
  } catch (err) {
    throw new ContractError(`alert is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof a !== 'object' || a === null) throw new ContractError('alert must be a JSON object');
  checkVehicleId(a.vehicle, 'alert.vehicle');
  if (typeof a.rule !== 'string' || a.rule.length === 0) throw new ContractError(`alert.rule: must be a name, got ${show(a.rule)}`);
  oneOf(a.severity, SEVERITIES, 'alert.severity');
  for (const k of ['episodeStart', 'windowStart', 'windowEnd', 'raisedAt', 'closedAt'] as const) {
    inRange(a[k], 0, Number.MAX_SAFE_INTEGER, `alert.${k}`);
  }
  inRange(a.observed, -Number.MAX_VALUE, Number.MAX_VALUE, 'alert.observed');
  if (a.id !== alertId(a.vehicle, a.rule, a.episodeStart)) {
    throw new ContractError(`alert.id: ${show(a.id)} is not ${alertId(a.vehicle, a.rule, a.episodeStart)}`);
  }
  if (typeof a.live !== 'boolean') throw new ContractError(`alert.live: must be true or false, got ${show(a.live)}`);
  if (a.driver !== undefined && typeof a.driver !== 'boolean')
    throw new ContractError(`alert.driver: must be true or false, got ${show(a.driver)}`);
  return wireAlert(a);
}
