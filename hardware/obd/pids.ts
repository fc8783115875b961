import type { SensorId } from '../../shared/contract/reading.js';

/**
 * Encodings an ECU sends when it has no value (a sensor unplugged, not ready, or a field the
 * ECU fills but does not measure). Where they decode to a value that cannot be true, the
 * reading is marked bad rather than passed on as a measurement.
 */
export type NoValueEncoding = 'all-zeros' | 'all-ones';

/** A mode-01 PID this driver polls: how many data bytes it answers with and what they mean. */
export interface PolledPid {
  /** Two upper-case hex digits, e.g. `0D`. */
  pid: string;
  sensor: SensorId;
  bytes: number;
  decode(data: readonly number[]): number;
  /** Changes over minutes, so it is asked one cycle in a few, leaving the fast ones near 1 Hz. */
  slow?: boolean;
  noValue?: readonly NoValueEncoding[];
}

/** In poll order (SAE J1979 formulas). */
export const POLLED_PIDS: readonly PolledPid[] = [
  // 255 km/h is no truck's speed; 0 is standing still.
  { pid: '0D', sensor: 'speed', bytes: 1, decode: ([a]) => a!, noValue: ['all-ones'] },
  // −40 °C and 215 °C are the ends of the scale, where an open or shorted sensor reads.
  { pid: '05', sensor: 'engine_temp', bytes: 1, decode: ([a]) => a! - 40, noValue: ['all-zeros', 'all-ones'] },
  // 16383.75 rpm is no engine's; 0 is the key on with the engine stalled.
  { pid: '0C', sensor: 'rpm', bytes: 2, decode: ([a, b]) => (256 * a! + b!) / 4, noValue: ['all-ones'] },
  // 0 % (coasting) and 100 % (full throttle) are both real.
  { pid: '04', sensor: 'engine_load', bytes: 1, decode: ([a]) => (100 * a!) / 255 },
  { pid: '0F', sensor: 'intake_temp', bytes: 1, decode: ([a]) => a! - 40, slow: true, noValue: ['all-zeros', 'all-ones'] },
  { pid: '46', sensor: 'ambient_temp', bytes: 1, decode: ([a]) => a! - 40, slow: true, noValue: ['all-zeros', 'all-ones'] },
  // An empty or a brim-full tank is real.
  { pid: '2F', sensor: 'fuel_level', bytes: 1, decode: ([a]) => (100 * a!) / 255, slow: true },
  // A module answering at 0 V cannot be, nor one at 65.535 V.
  {
    pid: '42',
    sensor: 'module_voltage',
    bytes: 2,
    decode: ([a, b]) => (256 * a! + b!) / 1000,
    slow: true,
    noValue: ['all-zeros', 'all-ones'],
  },
];

export interface PidValue {
  value: number;
  /** Why the value cannot be true, when it cannot. */
  implausible?: string;
}

export function readPid(p: PolledPid, data: readonly number[]): PidValue {
  const value = p.decode(data);
  const encoding: NoValueEncoding | undefined = data.every((b) => b === 0)
    ? 'all-zeros'
    : data.every((b) => b === 0xff)
      ? 'all-ones'
      : undefined;
  if (encoding === undefined || !p.noValue?.includes(encoding)) return { value };
  const hex = data.map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
  return { value, implausible: `${value} is the ${encoding} encoding ${hex}, which ECUs send for no value` };
}

/** The PIDs to ask this cycle: every fast one, and the slow ones one per cycle in turn. */
export function duePids(pids: readonly PolledPid[], cycle: number): PolledPid[] {
  const slow = pids.filter((p) => p.slow);
  const turn = slow[cycle % Math.max(1, slow.length)];
  return pids.filter((p) => !p.slow || p === turn);
}

/**
 * Bytes 41 xx A B C D of the bitmap at `base` (00, 20, 40 …): bit 7 of A is PID base+1, bit 0
 * of D is PID base+20, which says the vehicle has the next bitmap too.
 */
export function supportedPids(bitmap: readonly number[], base = 0): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < 32; i++) {
    if ((bitmap[i >> 3]! >> (7 - (i & 7))) & 1) out.add(pidHex(base + i + 1));
  }
  return out;
}

export function pidHex(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}
