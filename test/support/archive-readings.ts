import type { Reading } from '../../shared/contract/reading.js';

/** A reading as the archive holds it, with when the gateway received it. */
export interface ArchivedReading {
  reading: Reading;
  receivedAt: number;
}

/**
 * `count` readings of `vehicles` trucks from `start`, one a second per truck, cycling through
 * engine and cargo temperature, speed and GPS (the only one with a position).
 */
export function archivedReadings(count: number, start = Date.UTC(2026, 0, 5, 10), vehicles = 3): ArchivedReading[] {
  const sensors = ['engine_temp', 'container_temp', 'speed', 'gps'] as const;
  return Array.from({ length: count }, (_, i) => {
    const sensor = sensors[i % sensors.length]!;
    const ts = start + Math.floor(i / vehicles) * 1000;
    const reading: Reading = {
      vehicle: `truck-${String(i % vehicles).padStart(3, '0')}`,
      seq: 1_000_000_000_000 + i,
      ts,
      clock: i % 97 === 0 ? 'unsynced' : 'synced',
      sensor,
      value: sensor === 'container_temp' ? 4 + (i % 10) / 10 : i % 120,
      quality: i % 50 === 0 ? 'uncertain' : 'good',
      ...(sensor === 'gps' ? { position: { lat: 52 + i / 1e6, lon: 4.9 - i / 1e6, heading: i % 360, fix: '3d' as const } } : {}),
    };
    return { reading, receivedAt: ts + 250 };
  });
}
