import { CLEAR_REASONS, parseAlert, wireAlert } from '../../shared/contract/alert.js';
import { ContractError } from '../../shared/contract/errors.js';
import { checkVehicleId, oneOf, show } from '../../shared/contract/validate.js';
import type { AlertEvent } from '../../shared/rules/engine.js';

/**
 * An alert event as `fleet.alerts` carries it, on Kafka and on Kinesis alike: JSON,
 * `{"kind": "raised" | "promoted", "alert": {…}}` or `{"kind": "cleared", "alertId", "vehicle",
 * "rule", "at", "reason"}` (docs/CONTRACT.md, Streams).
 */
export function encodeAlertEvent(e: AlertEvent): string {
  return JSON.stringify(e.kind === 'cleared' ? e : { kind: e.kind, alert: wireAlert(e.alert) });
}

/** The stream key of an event: its vehicle, so a vehicle's events stay in order. */
export const alertEventVehicle = (e: AlertEvent): string => (e.kind === 'cleared' ? e.vehicle : e.alert.vehicle);

/** Reads an event back, refusing (with what is wrong) anything the contract does not describe. */
export function decodeAlertEvent(bytes: Uint8Array | string): AlertEvent {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ContractError(`alert event is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof e !== 'object' || e === null) throw new ContractError('alert event must be a JSON object');
  if (e.kind === 'raised' || e.kind === 'promoted') return { kind: e.kind, alert: parseAlert(JSON.stringify(e.alert)) };
  if (e.kind !== 'cleared') throw new ContractError(`alert event kind: must be raised, promoted or cleared, got ${show(e.kind)}`);
  const { alertId, vehicle, rule, at, reason } = e;
  if (typeof alertId !== 'string' || alertId.length === 0)
    throw new ContractError(`alert event alertId: must be an id, got ${show(alertId)}`);
  const v = checkVehicleId(vehicle, 'alert event vehicle');
  if (typeof rule !== 'string' || rule.length === 0) throw new ContractError(`alert event rule: must be a name, got ${show(rule)}`);
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) throw new ContractError(`alert event at: must be ms, got ${show(at)}`);
  return { kind: 'cleared', alertId, vehicle: v, rule, at, reason: oneOf(reason, CLEAR_REASONS, 'alert event reason') };
}
