import { ContractError } from './errors.js';
import { CLOCKS, FIXES, QUALITIES, SENSORS, VEHICLE_ID, sensorSpec, type Position, type Reading, type SensorId } from './reading.js';

/** Earliest plausible event time: anything before is a device that never had a clock. */
export const MIN_TS = Date.UTC(2001, 0, 1);
/**
 * The furthest ahead of its receiver's clock a reading can be and still decode: a record
 * already in the stream is never refused for it. The gateway holds devices to a much
 * tighter margin (DEFAULT_CLOCK_AHEAD_MS, its `maxClockAheadMs`), which may not exceed this.
 */
export const MAX_CLOCK_AHEAD_MS = 24 * 3600_000;
/**
 * How far ahead of the gateway's clock a reading or a batch's headTs may be. Beyond it the
 * device's clock is wrong, and one such reading would move the vehicle's event time into
 * the future: its later readings would all be "late" and its alerts "historical".
 */
export const DEFAULT_CLOCK_AHEAD_MS = 5 * 60_000;

export function checkVehicleId(id: unknown, where = 'vehicle'): string {
  if (typeof id !== 'string' || !VEHICLE_ID.test(id)) {
    throw new ContractError(`${where}: must be 1-64 characters of A-Z a-z 0-9 _ -, got ${show(id)}`);
  }
  return id;
}

/**
 * Checks one reading in place; `where` prefixes the message so the sender can find it, a
 * number i standing for `readings[i]`. The prefix is built only when a check fails, and the
 * vehicle id is not matched again when it is `knownVehicle` (a batch's, checked once).
 */
export function checkReading(r: Reading, now: number, where: string | number = 'reading', knownVehicle?: string): Reading {
  try {
    checkFields(r, now, knownVehicle);
  } catch (err) {
    if (!(err instanceof ContractError)) throw err;
    throw new ContractError(`${typeof where === 'number' ? `readings[${where}]` : where}${err.message}`);
  }
  return r;
}

/** checkReading's checks, their messages naming the field only (`.seq: ...`). */
function checkFields(r: Reading, now: number, knownVehicle: string | undefined): void {
  if (typeof r !== 'object' || r === null) throw new ContractError(`: must be an object, got ${show(r)}`);
  if (r.vehicle !== knownVehicle || knownVehicle === undefined) checkVehicleId(r.vehicle, '.vehicle');
  if (!Number.isSafeInteger(r.seq) || r.seq < 1) {
    throw new ContractError(`.seq: must be a positive integer, got ${show(r.seq)}`);
  }
  if (!Number.isSafeInteger(r.ts) || r.ts < MIN_TS || r.ts > now + MAX_CLOCK_AHEAD_MS) {
    throw new ContractError(
      `.ts: must be ms since epoch between ${new Date(MIN_TS).toISOString()} and a day ahead of now, got ${show(r.ts)}`,
    );
  }
  oneOf(r.clock, CLOCKS, '.clock');
  oneOf(r.sensor, SENSORS, '.sensor');
  oneOf(r.quality, QUALITIES, '.quality');
  checkValue(r.sensor, r.value, '.value');
  if (r.sensor === 'gps') checkPosition(r.position);
  else if (r.position !== undefined) throw new ContractError('.position: only gps readings carry a position');
}

function checkValue(sensor: SensorId, value: unknown, where: string): void {
  const [lo, hi] = sensorSpec(sensor).range;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi) {
    throw new ContractError(`${where}: ${sensor} must be a number in [${lo}, ${hi}], got ${show(value)}`);
  }
}

function checkPosition(p: Position | undefined): void {
  if (typeof p !== 'object' || p === null) throw new ContractError('.position: gps readings need a position object');
  inRange(p.lat, -90, 90, '.position.lat');
  inRange(p.lon, -180, 180, '.position.lon');
  inRange(p.heading, 0, 360, '.position.heading');
  oneOf(p.fix, FIXES, '.position.fix');
}

export function inRange(v: unknown, lo: number, hi: number, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) {
    throw new ContractError(`${where}: must be a number in [${lo}, ${hi}], got ${show(v)}`);
  }
  return v;
}

export function oneOf<T extends string>(v: unknown, allowed: readonly T[], where: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ContractError(`${where}: must be one of ${allowed.join(', ')}, got ${show(v)}`);
  }
  return v as T;
}

export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? 'an array' : `an ${typeof v}`;
}
