import { ContractError } from './errors.js';
import type { Reading } from './reading.js';
import { checkReading, checkVehicleId, MAX_CLOCK_AHEAD_MS, MIN_TS, show } from './validate.js';

/** What one telemetry publish carries: consecutive readings of one vehicle, in seq order. */
export interface Batch {
  vehicle: string;
  /**
   * Event time of the newest reading the agent held when it sent this batch. It tells the
   * cloud how far behind "now" a backlog is, without trusting the cloud's own clock.
   */
  headTs: number;
  readings: Reading[];
}

export const MAX_BATCH_READINGS = 10_000;

export function checkBatch(b: Batch, now: number): Batch {
  checkVehicleId(b.vehicle, 'batch.vehicle');
  if (!Array.isArray(b.readings) || b.readings.length === 0 || b.readings.length > MAX_BATCH_READINGS) {
    throw new ContractError(`batch.readings: must hold 1 to ${MAX_BATCH_READINGS} readings, got ${show(b.readings?.length)}`);
  }
  let prevSeq = 0;
  for (let i = 0; i < b.readings.length; i++) {
    const r = b.readings[i]!;
    checkReading(r, now, i, b.vehicle);
    if (r.vehicle !== b.vehicle) {
      throw new ContractError(`readings[${i}].vehicle: ${show(r.vehicle)} does not match the topic's vehicle ${show(b.vehicle)}`);
    }
    if (r.seq <= prevSeq) throw new ContractError(`readings[${i}].seq: ${r.seq} does not follow ${prevSeq}; seq must increase`);
    prevSeq = r.seq;
  }
  // Checked after the readings, since JSON senders may leave it to default to the last one.
  // Bounded like a reading's ts: the detector keeps a vehicle's newest time as a maximum, so
  // one headTs from a runaway clock would otherwise make its every later alert historical.
  if (!Number.isSafeInteger(b.headTs) || b.headTs < MIN_TS || b.headTs > now + MAX_CLOCK_AHEAD_MS) {
    throw new ContractError(
      `batch.headTs: must be ms since epoch between ${new Date(MIN_TS).toISOString()} and a day ahead of now, got ${show(b.headTs)}`,
    );
  }
  return b;
}
