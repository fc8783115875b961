import { ContractError } from './errors.js';
import type { Reading } from './reading.js';
import { checkReading, checkVehicleId, MIN_TS, show } from './validate.js';

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
  if (!Number.isSafeInteger(b.headTs) || b.headTs < MIN_TS) {
    throw new ContractError(`batch.headTs: must be ms since epoch, got ${show(b.headTs)}`);
  }
  if (!Array.isArray(b.readings) || b.readings.length === 0 || b.readings.length > MAX_BATCH_READINGS) {
    throw new ContractError(`batch.readings: must hold 1 to ${MAX_BATCH_READINGS} readings, got ${show(b.readings?.length)}`);
  }
  let prevSeq = 0;
  b.readings.forEach((r, i) => {
    checkReading(r, now, `readings[${i}]`);
    if (r.vehicle !== b.vehicle) {
      throw new ContractError(`readings[${i}].vehicle: ${show(r.vehicle)} does not match the topic's vehicle ${show(b.vehicle)}`);
    }
    if (r.seq <= prevSeq) throw new ContractError(`readings[${i}].seq: ${r.seq} does not follow ${prevSeq}; seq must increase`);
    prevSeq = r.seq;
  });
  return b;
}
