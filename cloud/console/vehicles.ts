import type { SensorId } from '../../shared/contract/reading.js';
import type { LatestValue } from '../store.js';

export interface VehicleStatusEntry {
  online: boolean;
  at: number;
}

export interface SensorValue {
  value: number;
  ts: number;
  /** Older than the console's stale limit: the page greys it out. */
  stale: boolean;
}

export interface GpsValue extends SensorValue {
  lat: number | null;
  lon: number | null;
  heading: number | null;
}

export interface VehicleView {
  id: string;
  /** From the retained MQTT status; false when the vehicle never reported one. */
  online: boolean;
  statusAt: number | null;
  /** Event time of the newest stored reading. */
  lastSeen: number | null;
  values: Partial<Record<Exclude<SensorId, 'gps'>, SensorValue>> & { gps?: GpsValue };
  activeAlerts: number;
}

export interface VehicleSources {
  latest: Map<string, LatestValue[]>;
  statuses: ReadonlyMap<string, VehicleStatusEntry>;
  activeAlerts: Map<string, number>;
}

/** One row per vehicle known from either the store or MQTT, sorted by id. */
export function vehicleViews(src: VehicleSources, now: number, staleAfterMs: number): VehicleView[] {
  const ids = [...new Set([...src.latest.keys(), ...src.statuses.keys()])].sort();
  return ids.map((id) => {
    const latest = src.latest.get(id) ?? [];
    const status = src.statuses.get(id);
    return {
      id,
      online: status?.online ?? false,
      statusAt: status?.at ?? null,
      lastSeen: latest.length > 0 ? Math.max(...latest.map((v) => v.ts)) : null,
      values: sensorValues(latest, now - staleAfterMs),
      activeAlerts: src.activeAlerts.get(id) ?? 0,
    };
  });
}

function sensorValues(latest: LatestValue[], staleBefore: number): VehicleView['values'] {
  const values: VehicleView['values'] = {};
  for (const v of latest) {
    const base = { value: v.value, ts: v.ts, stale: v.ts < staleBefore };
    if (v.sensor === 'gps') values.gps = { ...base, lat: v.lat, lon: v.lon, heading: v.heading };
    else values[v.sensor] = base;
  }
  return values;
}
