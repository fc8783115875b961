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
 * Finds the latest values that moved since the previous call. The detector may write
 * from another process, so this compares the `latest` table's seqs with the ones it saw
 * last: one small table read per tick, whatever the fleet's reading rate.
 */
export class LatestChanges {
  private readonly seen = new Map<string, number>();

  constructor(private readonly store: FleetStore) {}

  async next(): Promise<VehicleValues[]> {
    const byVehicle = new Map<string, VehicleValues>();
    for (const r of await this.store.latestRows()) {
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
