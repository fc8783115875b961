import type { SensorId } from '../../shared/contract/reading.js';
import type { FleetStore } from '../store.js';

/** The sensors the vehicle detail charts. */
export const CHART_SENSORS = ['engine_temp', 'container_temp', 'speed'] as const satisfies readonly SensorId[];

/** Columns as uPlot takes them: times (ms) and values. */
export type Series = [number[], number[]];

/** A track point: latitude, longitude, event time. */
export type TrackPoint = [number, number, number];

/**
 * Recent readings for the page's charts and map tracks. Every query walks the
 * (vehicle, sensor, ts) index, one vehicle at a time, so its cost follows the window
 * asked for and not the size of the table.
 */
export class ReadingHistory {
  private readonly st;

  constructor(private readonly store: FleetStore) {
    this.st = {
      series: store.db.prepare(`SELECT ts, value FROM readings WHERE vehicle = ? AND sensor = ? AND ts >= ? AND quality != 'bad' ORDER BY ts`),
      gpsVehicles: store.db.prepare(`SELECT vehicle FROM latest WHERE sensor = 'gps' AND ts >= ?`),
      // One point per bucket (the newest in it; SQLite takes the bare columns from the max row) keeps a track light.
      track: store.db.prepare(`SELECT lat, lon, max(ts) AS ts FROM readings
        WHERE vehicle = ? AND sensor = 'gps' AND ts >= ? AND lat IS NOT NULL AND quality != 'bad' GROUP BY ts / ? ORDER BY ts`),
    };
  }

  series(vehicle: string, since: number): Record<(typeof CHART_SENSORS)[number], Series> {
    const out = {} as Record<(typeof CHART_SENSORS)[number], Series>;
    for (const sensor of CHART_SENSORS) {
      const rows = this.st.series.all(vehicle, sensor, since) as { ts: number; value: number }[];
      out[sensor] = [rows.map((r) => r.ts), rows.map((r) => r.value)];
    }
    return out;
  }

  /** Every vehicle's positions since `since`, at most one per `bucketMs`. */
  tracks(since: number, bucketMs: number): Record<string, TrackPoint[]> {
    return this.store.transaction(() => {
      const vehicles = this.st.gpsVehicles.all(since) as { vehicle: string }[];
      // fromEntries makes own properties: a vehicle named `__proto__` is a key like any other.
      return Object.fromEntries(
        vehicles.map(({ vehicle }) => {
          const rows = this.st.track.all(vehicle, since, bucketMs) as { lat: number; lon: number; ts: number }[];
          return [vehicle, rows.map((r): TrackPoint => [r.lat, r.lon, r.ts])];
        }),
      );
    });
  }
}
