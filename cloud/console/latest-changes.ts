import type { SensorId } from '../../shared/contract/reading.js';
import type { FleetStore } from '../store.js';

export interface LiveValue {
  value: number;
  ts: number;
  lat?: number;
  lon?: number;
  heading?: number;
}

/** What changed for one vehicle since the last look: its new latest values. */
export interface VehicleValues {
  id: string;
  values: Partial<Record<SensorId, LiveValue>>;
}

/**
 * Finds the latest values that moved since the previous call. The detector may write from
 * another process, so this asks the store for the values changed since its cursor: one read
 * per tick of what moved, not of the whole table. A value the store gives again is told by
 * its seq, which is the one seen last.
 */
export class LatestChanges {
  private readonly seen = new Map<string, number>();
  private cursor: number | undefined;

  constructor(private readonly store: FleetStore) {}

  async next(): Promise<VehicleValues[]> {
    const byVehicle = new Map<string, VehicleValues>();
    const { rows, cursor } = await this.store.latestRowsSince(this.cursor);
    this.cursor = cursor;
    for (const r of rows) {
      const key = `${r.vehicle}\u0000${r.sensor}`;
      if (this.seen.get(key) === r.seq) continue;
      this.seen.set(key, r.seq);
      let entry = byVehicle.get(r.vehicle);
      if (!entry) byVehicle.set(r.vehicle, (entry = { id: r.vehicle, values: {} }));
      entry.values[r.sensor] =
        r.lat === null ? { value: r.value, ts: r.ts } : { value: r.value, ts: r.ts, lat: r.lat, lon: r.lon!, heading: r.heading ?? 0 };
    }
    return [...byVehicle.values()];
  }
}
