/**
 * The reading: the unit of telemetry from the truck to the stream.
 * See docs/CONTRACT.md for the wire form and the reasons behind each field.
 */

export { SENSORS, SENSOR_CATALOGUE, isSensorId, sensorSpec, type SensorId, type SensorSpec } from './sensors.js';
import type { SensorId } from './sensors.js';

export const QUALITIES = ['good', 'uncertain', 'bad'] as const;
export type Quality = (typeof QUALITIES)[number];

/**
 * Where the timestamp came from. `unsynced` readings were taken before the device
 * had a trustworthy clock; consumers may treat their time as approximate.
 */
export const CLOCKS = ['synced', 'unsynced'] as const;
export type ClockQuality = (typeof CLOCKS)[number];

export const FIXES = ['none', '2d', '3d'] as const;
export type GpsFix = (typeof FIXES)[number];

export interface Position {
  lat: number;
  lon: number;
  heading: number;
  fix: GpsFix;
}

export interface Reading {
  vehicle: string;
  /** Per-vehicle, strictly increasing, persisted across restarts: (vehicle, seq) is the identity. */
  seq: number;
  /** Event time, ms since the Unix epoch, UTC. */
  ts: number;
  clock: ClockQuality;
  sensor: SensorId;
  /** In the catalogue's unit for `sensor`; for `gps` the ground speed, the position riding in `position`. */
  value: number;
  quality: Quality;
  position?: Position;
}

/** A reading as a sensor produces it, before the agent gives it an identity. */
export type Sample = Omit<Reading, 'vehicle' | 'seq'>;

export const VEHICLE_ID = /^[A-Za-z0-9_-]{1,64}$/;
