import type { SensorId } from '../../shared/contract/reading.js';

/** A mode-01 PID this driver polls: how many data bytes it answers with and what they mean. */
export interface PolledPid {
  /** Two upper-case hex digits, e.g. `0D`. */
  pid: string;
  sensor: SensorId;
  bytes: number;
  decode(data: readonly number[]): number;
}

/** In poll order (SAE J1979 formulas). */
export const POLLED_PIDS: readonly PolledPid[] = [
  { pid: '0D', sensor: 'speed', bytes: 1, decode: ([a]) => a! },
  { pid: '05', sensor: 'engine_temp', bytes: 1, decode: ([a]) => a! - 40 },
  { pid: '0C', sensor: 'rpm', bytes: 2, decode: ([a, b]) => (256 * a! + b!) / 4 },
];

/** Bytes 41 00 A B C D: bit 7 of A is PID 01, bit 0 of D is PID 20. */
export function supportedPids(bitmap: readonly number[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < 32; i++) {
    if ((bitmap[i >> 3]! >> (7 - (i & 7))) & 1) out.add((i + 1).toString(16).toUpperCase().padStart(2, '0'));
  }
  return out;
}

