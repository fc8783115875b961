/**
 * The reading: the unit of telemetry from the truck to the stream.
 * See docs/CONTRACT.md for the wire form and the reasons behind each field.
 */

export const SENSORS = ['engine_temp', 'container_temp', 'speed', 'gps', 'rpm'] as const;
export type SensorId = (typeof SENSORS)[number];

export const UNITS: Record<SensorId, string> = {
  engine_temp: 'degC',
  container_temp: 'degC',
  speed: 'km/h',
  gps: 'km/h',
  rpm: 'rpm',
};

/** Physical limits: a value outside them is a broken sensor or a broken encoder, never data. */
export const VALUE_RANGE: Record<SensorId, readonly [number, number]> = {
  engine_temp: [-60, 250],
  container_temp: [-80, 200],
  speed: [0, 400],
  gps: [0, 400],
  rpm: [0, 20000],
};

/**
 * Eviction priority when the agent's buffer is full: lowest goes first.
 * GPS at 1 Hz is the most replaceable; temperatures carry the safety case.
 */
export const PRIORITY: Record<SensorId, number> = {
  gps: 0,
  speed: 1,
  rpm: 1,
  container_temp: 2,
  engine_temp: 2,
};

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
  /** For `gps` the ground speed; the position rides in `position`. */
  value: number;
  quality: Quality;
  position?: Position;
}

/** A reading as a sensor produces it, before the agent gives it an identity. */
export type Sample = Omit<Reading, 'vehicle' | 'seq'>;

export const VEHICLE_ID = /^[A-Za-z0-9_-]{1,64}$/;
