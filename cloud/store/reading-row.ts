import type { ClockQuality, GpsFix, Quality, Reading, SensorId } from '../../shared/contract/reading.js';
import type { ReceivedReading } from '../store.js';

/** The select list of a stored reading, in SQL both stores read alike (quoted: PostgreSQL folds unquoted aliases). */
export const READING_COLUMNS = 'vehicle, seq, ts, sensor, value, quality, clock, lat, lon, heading, fix, received_at AS "receivedAt"';

export interface ReadingRow {
  vehicle: string;
  seq: number;
  ts: number;
  sensor: SensorId;
  value: number;
  quality: Quality;
  clock: ClockQuality;
  lat: number | null;
  lon: number | null;
  heading: number | null;
  fix: GpsFix | null;
  receivedAt: number;
}

/** A row back into the reading it was written from: a position is stored whole or not at all. */
export function receivedReading(row: ReadingRow): ReceivedReading {
  const { vehicle, seq, ts, sensor, value, quality, clock, lat, lon, heading, fix, receivedAt } = row;
  const reading: Reading = { vehicle, seq, ts, clock, sensor, value, quality };
  if (lat !== null && lon !== null && heading !== null && fix !== null) reading.position = { lat, lon, heading, fix };
  return { reading, receivedAt };
}
