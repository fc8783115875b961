import { SENSORS, type SensorId } from '../shared/contract/reading.js';
import { FAULT_KINDS, SENSOR_FAULTS, type FaultKind } from '../shared/fault-kinds.js';

export type SensorFaultKind = (typeof SENSOR_FAULTS)[number];

/** Faults take effect on the model's step grid. */
export interface Fault {
  kind: FaultKind;
  /** The sensor a sensor fault hits; physical faults ignore it. */
  sensor?: SensorId;
  /** Event time (ms) the fault starts. */
  from: number;
  /** Event time (ms) it ends, exclusive; absent means until cleared. */
  to?: number;
  /**
   * Strength: units/hour for sensor_drift, the noise's standard deviation for noisy_sensor,
   * kilometres for gps_jump; each kind has a default.
   */
  magnitude?: number;
}

export function isSensorFault(kind: FaultKind): kind is SensorFaultKind {
  return (SENSOR_FAULTS as readonly string[]).includes(kind);
}

export function checkFault(f: Fault): void {
  if (!FAULT_KINDS.includes(f.kind)) throw new RangeError(`unknown fault kind ${JSON.stringify(f.kind)}`);
  if (isSensorFault(f.kind) && !SENSORS.includes(f.sensor!)) {
    throw new RangeError(`a ${f.kind} fault needs a sensor (one of ${SENSORS.join(', ')})`);
  }
  if (!Number.isFinite(f.from)) throw new RangeError(`fault.from must be a finite ms timestamp, got ${f.from}`);
  if (f.to !== undefined && !(f.to > f.from)) throw new RangeError(`fault.to (${f.to}) must be after fault.from (${f.from})`);
  if (f.magnitude !== undefined && !Number.isFinite(f.magnitude))
    throw new RangeError(`fault.magnitude must be a finite number, got ${f.magnitude}`);
}

export function isActive(f: Fault, ts: number): boolean {
  return f.from <= ts && (f.to === undefined || ts < f.to);
}
