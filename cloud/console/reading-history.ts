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

  series(vehicle: string, since: number): Record<(typeof CHART_SENSORS)[number], Series> {
    const out = {} as Record<(typeof CHART_SENSORS)[number], Series>;
    for (const sensor of CHART_SENSORS) {
      const rows = this.store.readingSeries(vehicle, sensor, since);
      out[sensor] = [rows.map((r) => r.ts), rows.map((r) => r.value)];
    }
    return out;
  }

  /** Every vehicle's positions since `since`, at most one per `bucketMs`. */
  tracks(since: number, bucketMs: number): Record<string, TrackPoint[]> {
    return this.store.transaction(() =>
      // fromEntries makes own properties: a vehicle named `__proto__` is a key like any other.
      Object.fromEntries(
        this.store
          .vehiclesWithPositionSince(since)
          .map((vehicle) => [vehicle, this.store.track(vehicle, since, bucketMs).map((r): TrackPoint => [r.lat, r.lon, r.ts])]),
      ),
    );
  }
}
