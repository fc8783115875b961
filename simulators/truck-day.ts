import { quantize } from '../shared/contract/codec.js';
import type { Reading, SensorId } from '../shared/contract/reading.js';
import type { FaultKind } from '../shared/fault-kinds.js';
import type { Fault } from './faults.js';
import { Random } from './random.js';
import { SET_POINTS } from './reefer-model.js';
import { TruckModel, type PlanEvent } from './truck-model.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
export const DAY_MS = 24 * HOUR;

/** A fault with the window in which it is the truth: what the detector is scored against. */
export interface LabelledFault extends Fault {
  to: number;
  /** Alerts about these sensors, raised within the window, count as detecting it. */
  sensors: SensorId[];
}

export interface TruckDay {
  seed: number;
  /** The simulation starts a day early; the day scored is [dayStart, dayStart + DAY_MS). */
  simStart: number;
  dayStart: number;
  plan: PlanEvent[];
  faults: LabelledFault[];
  /** When the ignition is on, for scheduling and for sampling rates. */
  shiftStart: number;
  shiftEnd: number;
}

/** The faults `fleet eval` injects, one per faulted truck-day. */
export const EVAL_FAULTS = [
  'engine_overheat',
  'engine_overheat_slow',
  'fan_failure',
  'cargo_heating',
  'stuck_sensor',
  'noisy_sensor',
  'dropout',
  'sensor_drift',
  'gps_jump',
] as const satisfies readonly FaultKind[];
export type EvalFault = (typeof EVAL_FAULTS)[number];

/**
 * A truck's working day, seeded, after a fault-free day before it (what a detector that
 * has run for a while knows of the truck; only the second day is scored): parked overnight
 * with the reefer running, a shift of 9-11 hours from early morning with a pre-trip idle,
 * drives between deliveries (doors opened, the engine off or idling), a loading stop that
 * may bring a new set point and payload, a 45-minute break, then parked again. Optionally
 * one fault on the second day, placed where it can happen (engine faults while driving).
 */
export function truckDay(seed: number, dayStart: number, fault?: EvalFault): TruckDay {
  const plan: PlanEvent[] = [{ at: dayStart - DAY_MS, kind: 'ignition', on: false }];
  const keepLoad = fault === 'cargo_heating';
  workingDay(Random.stream(seed, 12), dayStart - DAY_MS, plan, keepLoad);
  const { shiftStart, shiftEnd } = workingDay(Random.stream(seed, 10), dayStart, plan, keepLoad);
  const rng = Random.stream(seed, 11);
  const faults = fault === undefined ? [] : [placeFault(fault, rng, plan, dayStart)];
  if (keepLoad) {
    // A reefer failure is a risk where the weather is well above the load: both days carry
    // one kept at least 12 °C below the air at the failure (frozen in cool weather).
    const ambient = new TruckModel({ seed, startTs: faults[0]!.from }).state().ambientTemp;
    const cold = SET_POINTS.filter((sp) => sp <= ambient - 12);
    const setPoint = cold.length > 0 ? cold[rng.int(0, cold.length - 1)]! : SET_POINTS[0];
    plan.push({ at: dayStart - DAY_MS, kind: 'load', setPoint, payloadKg: rng.uniform(14_000, 40_000) });
  }
  plan.sort((a, b) => a.at - b.at);
  return { seed, simStart: dayStart - DAY_MS, dayStart, plan, faults, shiftStart, shiftEnd };
}

/** One day's shift into `plan`; `keepLoad` keeps the load (and its set point) all day. */
function workingDay(rng: Random, dayStart: number, plan: PlanEvent[], keepLoad: boolean): { shiftStart: number; shiftEnd: number } {
  const shiftStart = dayStart + 5 * HOUR + rng.uniform(0, 3 * HOUR);
  const shiftEnd = shiftStart + rng.uniform(9, 11) * HOUR;
  plan.push({ at: shiftStart, kind: 'ignition', on: true });
  let t = shiftStart + rng.uniform(5, 15) * MIN; // pre-trip checks with the engine idling
  plan.push({ at: t, kind: 'hold', on: false });
  let drivenSinceBreak = 0;
  let loaded = rng.next() < 0.5;
  while (t < shiftEnd - 30 * MIN) {
    const drive = rng.uniform(30, 120) * MIN;
    t += drive;
    drivenSinceBreak += drive;
    if (t >= shiftEnd - 30 * MIN) break;
    plan.push({ at: t, kind: 'hold', on: true });
    let stop: number;
    if (drivenSinceBreak > 4 * HOUR) {
      stop = 45 * MIN; // the legal break: engine off
      plan.push({ at: t + 2 * MIN, kind: 'ignition', on: false }, { at: t + stop - 2 * MIN, kind: 'ignition', on: true });
      drivenSinceBreak = 0;
    } else if (!loaded) {
      stop = rng.uniform(20, 40) * MIN; // loading: the doors open most of the stop, then a new load
      loaded = true;
      plan.push({ at: t + 3 * MIN, kind: 'door', open: true }, { at: t + stop - 3 * MIN, kind: 'door', open: false });
      if (rng.next() < 0.5) {
        const setPoint = rng.next() < 0.25 ? undefined : SET_POINTS[rng.int(0, SET_POINTS.length - 1)];
        if (!keepLoad) plan.push({ at: t + stop - 3 * MIN, kind: 'load', setPoint, payloadKg: rng.uniform(14_000, 40_000) });
      }
    } else {
      stop = rng.uniform(10, 40) * MIN; // a delivery: engine off or idling, a door opening
      const door = rng.uniform(3, 15) * MIN;
      const doorAt = t + rng.uniform(1, Math.max(1, stop / MIN - door / MIN - 1)) * MIN;
      plan.push({ at: doorAt, kind: 'door', open: true }, { at: doorAt + door, kind: 'door', open: false });
      if (rng.next() < 0.5)
        plan.push({ at: t + 1 * MIN, kind: 'ignition', on: false }, { at: t + stop - 1 * MIN, kind: 'ignition', on: true });
    }
    t += stop;
    plan.push({ at: t, kind: 'hold', on: false });
  }
  plan.push({ at: shiftEnd, kind: 'hold', on: true }, { at: shiftEnd + 2 * MIN, kind: 'ignition', on: false });
  return { shiftStart, shiftEnd };
}

/**
 * A fault where it can show: engine faults and GPS jumps while the engine has run for a
 * while (a cold or stopped engine cannot overheat, a parked truck's GPS is read seldom),
 * reefer failures at any hour. A fault longer than the run it starts in carries on after it.
 */
function placeFault(kind: EvalFault, rng: Random, plan: PlanEvent[], dayStart: number): LabelledFault {
  const runs = ignitionRuns(plan, dayStart);
  const running = (minDur: number, maxDur: number) => {
    const dur = rng.uniform(minDur, maxDur);
    // Starts at least 20 minutes into a run (a warm engine) and ends within it if it can.
    const fits = runs.filter(([on, off]) => off - on >= 20 * MIN + Math.min(dur, 15 * MIN));
    const [on, off] = fits[rng.int(0, fits.length - 1)]!;
    const at = rng.uniform(on + 20 * MIN, Math.max(on + 20 * MIN, off - Math.min(dur, off - on - 20 * MIN)));
    return { from: Math.round(at), to: Math.round(at + dur) };
  };
  const anyTime = (minDur: number, maxDur: number) => {
    const dur = rng.uniform(minDur, maxDur);
    const at = rng.uniform(dayStart + HOUR, dayStart + 23 * HOUR - dur);
    return { from: Math.round(at), to: Math.round(at + dur) };
  };
  // Sensor faults hit the engine's coolant sensor (read while running) or the cargo probe (always read).
  const sensorFault = (minDur: number, maxDur: number) => {
    const sensor: SensorId = rng.next() < 0.5 ? 'engine_temp' : 'container_temp';
    return { sensor, ...(sensor === 'engine_temp' ? running(minDur, maxDur) : anyTime(minDur, maxDur)), sensors: [sensor] };
  };
  switch (kind) {
    case 'engine_overheat':
      return { kind, ...running(4 * MIN, 10 * MIN), sensors: ['engine_temp'] };
    case 'engine_overheat_slow':
      return { kind, ...running(40 * MIN, 90 * MIN), sensors: ['engine_temp'] };
    case 'fan_failure':
      return { kind, ...running(3 * HOUR, 6 * HOUR), sensors: ['engine_temp'] };
    case 'cargo_heating':
      return { kind, ...anyTime(2 * HOUR, 5 * HOUR), sensors: ['container_temp'] };
    case 'gps_jump':
      return { kind, ...running(5_000, 60_000), magnitude: rng.uniform(5, 50), sensors: ['gps'] };
    case 'stuck_sensor':
      return { kind, ...sensorFault(40 * MIN, 3 * HOUR) };
    case 'noisy_sensor':
      return { kind, ...sensorFault(10 * MIN, 60 * MIN) };
    case 'dropout':
      return { kind, ...sensorFault(15 * MIN, 60 * MIN) };
    case 'sensor_drift':
      return { kind, ...sensorFault(2 * HOUR, 4 * HOUR), magnitude: rng.uniform(2, 5) };
  }
}

/** The spans of the scored day during which the plan has the engine running. */
function ignitionRuns(plan: PlanEvent[], dayStart: number): [number, number][] {
  const runs: [number, number][] = [];
  let on: number | undefined;
  for (const e of [...plan].sort((a, b) => a.at - b.at)) {
    if (e.kind !== 'ignition' || e.at < dayStart) continue;
    if (e.on && on === undefined) on = e.at;
    else if (!e.on && on !== undefined) {
      runs.push([on, e.at]);
      on = undefined;
    }
  }
  return runs;
}

/**
 * How often each sensor is read through the day, in whole seconds: OBD-II values about
 * once a second while the ignition is on, the cargo probe always, GPS slower while parked.
 */
const EVERY_S: Partial<Record<SensorId, [running: number, parked: number]>> = {
  engine_temp: [1, 0],
  speed: [1, 0],
  rpm: [1, 0],
  engine_load: [1, 0],
  ambient_temp: [5, 0],
  container_temp: [1, 1],
  cargo_setpoint: [60, 60],
  gps: [1, 30],
};

/** The day as its agent would have recorded it: every reading, in seq order, from a model stepped once a second. */
export function* dayReadings(day: TruckDay, vehicle: string): Generator<Reading> {
  const model = new TruckModel({ seed: day.seed, startTs: day.simStart, plan: day.plan, faults: day.faults, stepMs: 1000 });
  const sensors = Object.keys(EVERY_S) as SensorId[];
  const running = sensors.map((s) => EVERY_S[s]![0]);
  const parked = sensors.map((s) => EVERY_S[s]![1]);
  let seq = 0;
  const seconds = (day.dayStart + DAY_MS - day.simStart) / 1000;
  for (let s = 0; s < seconds; s++) {
    const ts = day.simStart + s * 1000;
    model.advance(ts);
    const every = model.ignition ? running : parked;
    for (let i = 0; i < sensors.length; i++) {
      if (every[i] === 0 || s % every[i]! !== 0) continue;
      const sensor = sensors[i]!;
      const r = model.reading(sensor);
      if (r === undefined) continue;
      const reading: Reading = { vehicle, seq: ++seq, ts, clock: 'synced', sensor, value: quantize(r.value), quality: 'good' };
      if (r.position) reading.position = { ...r.position, heading: (Math.round(r.position.heading * 10) / 10) % 360, fix: '3d' };
      yield reading;
    }
  }
}
