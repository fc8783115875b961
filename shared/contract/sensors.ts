/**
 * The sensor catalogue: every measurement the contract can carry, with its unit, its
 * physical range (a value outside it is a broken sensor or encoder, never data), its
 * binary code and the order in which the agent's buffer gives it up when full.
 *
 * Codes 0-4 are the first contract's and never change; a new sensor gets the next free
 * code, so a batch holding only the first five still encodes as version 1 (see codec.ts).
 */
export interface SensorSpec {
  readonly id: string;
  readonly code: number;
  readonly unit: string;
  readonly range: readonly [number, number];
  /** Eviction priority when the agent's buffer is full: lowest goes first. */
  readonly priority: number;
  readonly description: string;
}

/** Eviction classes: GPS at 1 Hz is the most replaceable; temperatures carry the safety case. */
const POSITION = 0;
const CONTEXT = 1;
const SAFETY = 2;

export const SENSOR_CATALOGUE = [
  {
    id: 'engine_temp',
    code: 0,
    unit: 'degC',
    range: [-60, 250],
    priority: SAFETY,
    description: 'engine coolant temperature (OBD-II 0105)',
  },
  { id: 'container_temp', code: 1, unit: 'degC', range: [-80, 200], priority: SAFETY, description: 'cargo air temperature (1-Wire probe)' },
  { id: 'speed', code: 2, unit: 'km/h', range: [0, 400], priority: CONTEXT, description: 'road speed (OBD-II 010D)' },
  { id: 'gps', code: 3, unit: 'km/h', range: [0, 400], priority: POSITION, description: 'GPS ground speed; the position rides beside it' },
  { id: 'rpm', code: 4, unit: 'rpm', range: [0, 20000], priority: CONTEXT, description: 'engine speed (OBD-II 010C)' },
  { id: 'engine_load', code: 5, unit: '%', range: [0, 100], priority: CONTEXT, description: 'calculated engine load (OBD-II 0104)' },
  { id: 'intake_temp', code: 6, unit: 'degC', range: [-40, 215], priority: CONTEXT, description: 'intake air temperature (OBD-II 010F)' },
  { id: 'ambient_temp', code: 7, unit: 'degC', range: [-40, 215], priority: CONTEXT, description: 'ambient air temperature (OBD-II 0146)' },
  { id: 'fuel_level', code: 8, unit: '%', range: [0, 100], priority: CONTEXT, description: 'fuel tank level (OBD-II 012F)' },
  { id: 'module_voltage', code: 9, unit: 'V', range: [0, 65.535], priority: CONTEXT, description: 'control module voltage (OBD-II 0142)' },
  {
    id: 'cargo_setpoint',
    code: 10,
    unit: 'degC',
    range: [-80, 200],
    priority: SAFETY,
    description: "the reefer's set point, sent when it is read or changed",
  },
  {
    id: 'generic',
    code: 11,
    unit: '',
    range: [-1e12, 1e12],
    priority: CONTEXT,
    description: 'any other series, unit unknown: for replaying recordings, never range-checked beyond ±1e12',
  },
] as const satisfies readonly SensorSpec[];

type Entry = (typeof SENSOR_CATALOGUE)[number];
export type SensorId = Entry['id'];

export const SENSORS: readonly SensorId[] = SENSOR_CATALOGUE.map((s) => s.id);

const BY_ID = new Map<string, Entry>(SENSOR_CATALOGUE.map((s) => [s.id, s]));
const BY_CODE = new Map<number, Entry>(SENSOR_CATALOGUE.map((s) => [s.code, s]));

export function isSensorId(id: unknown): id is SensorId {
  return typeof id === 'string' && BY_ID.has(id);
}

export function sensorSpec(id: SensorId): Entry {
  return BY_ID.get(id)!;
}

export function sensorByCode(code: number): Entry | undefined {
  return BY_CODE.get(code);
}

/** Codes the first contract (binary version 1) can carry. */
export const V1_MAX_CODE = 4;
