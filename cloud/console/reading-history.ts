import type { SensorId } from '../../shared/contract/reading.js';
import type { FleetStore } from '../store.js';

/** The sensors the vehicle detail charts. */
export const CHART_SENSORS = ['engine_temp', 'container_temp', 'speed'] as const satisfies readonly SensorId[];

/** Columns as uPlot takes them: times (ms) and values. */
export type Series = [number[], number[]];

/** A track point: latitude, longitude, event time. */
export type TrackPoint = [number, number, number];

/** Recent readings shaped for the page's charts and map tracks. */
export class ReadingHistory {
  constructor(private readonly store: FleetStore) {}

  async series(vehicle: string, since: number): Promise<Record<(typeof CHART_SENSORS)[number], Series>> {
    const out = {} as Record<(typeof CHART_SENSORS)[number], Series>;
    for (const sensor of CHART_SENSORS) {
      const rows = await this.store.readingSeries(vehicle, sensor, since);
      out[sensor] = [rows.map((r) => r.ts), rows.map((r) => r.value)];
    }
    return out;
  }

  /** Every vehicle's positions since `since`, at most one per `bucketMs`. */
  async tracks(since: number, bucketMs: number): Promise<Record<string, TrackPoint[]>> {
    const tracks = await this.store.tracks(since, bucketMs);
    // fromEntries makes own properties: a vehicle named `__proto__` is a key like any other.
    return Object.fromEntries([...tracks].map(([vehicle, points]) => [vehicle, points.map((r): TrackPoint => [r.lat, r.lon, r.ts])]));
  }
}
