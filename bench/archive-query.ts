/**
 * The archive at rest and under query: a month of one fleet's readings written through
 * ParquetStaging into the archive's dt=/hour= layout (one file per hour, as an archiver lane
 * writes them at this fleet's size), once with zstd and once with snappy; bytes per reading
 * of each, then the time of `fleet query`'s two typical questions over the zstd month: one
 * truck's hourly maximum cargo temperature, and a whole-month aggregate per sensor.
 *
 * The fleet: 100 trucks, engine and cargo temperature, speed and GPS, each sensor every 2
 * minutes (--quick: 8.9 million readings a month) or every 30 s (35.7 million). Values are random walks at the sensors' resolution (0.1 °C,
 * 1 km/h, GPS to 1e-5 degrees), seeded, so the same run writes the same files: compression
 * depends on how values move, and the truck model itself is too slow for a month of a fleet.
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FileArchiveStore } from '../cloud/archive/file-archive-store.js';
import { openReadingsView, runQuery } from '../cloud/archive/archive-query.js';
import { ParquetStaging, type ParquetCompression } from '../cloud/archive/parquet-file.js';
import type { Reading } from '../shared/contract/reading.js';
import { tempDir } from '../test/support/harness.js';
import { emit, MB, round, runPart } from './support.js';

const USAGE = `Usage: node dist/bench/archive-query.js [--quick] [--help]

A month of 100 trucks' readings (engine and cargo temperature, speed, GPS; each sensor every
2 minutes with --quick, every 30 s without) written as the archive's hourly Parquet files with
zstd and snappy: bytes per reading, write rate, and the time of an hourly-maximum query for
one truck and of a whole-month aggregate. One JSON line per figure.
`;

const TRUCKS = 100;
const SENSORS = ['engine_temp', 'container_temp', 'speed', 'gps'] as const;
const MONTH_START = Date.UTC(2026, 0, 1);
const DAYS = 31;
const HOUR = 3_600_000;
/** Query runs per figure; the median counts (the first warms the file cache). */
const RUNS = 3;

const HOURLY_MAX = `SELECT date_trunc('hour', ts) AS hour, max(value) AS max_cargo_temp FROM readings
  WHERE vehicle = 'truck-042' AND sensor = 'container_temp' GROUP BY 1 ORDER BY 1`;
const MONTH_AGGREGATE = `SELECT sensor, count(*) AS n, avg(value) AS mean, min(value) AS lo, max(value) AS hi
  FROM readings GROUP BY sensor ORDER BY sensor`;

/** A seeded xorshift: the same month every run. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

interface TruckState {
  vehicle: string;
  seq: number;
  engine: number;
  cargo: number;
  speed: number;
  lat: number;
  lon: number;
  heading: number;
}

const q = (v: number, step: number) => Math.round(v / step) * step;
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Appends one hour of the fleet's readings, in time order (as the stream delivers them), reusing one object. */
function appendHour(staging: ParquetStaging, trucks: TruckState[], hourStart: number, periodMs: number, rnd: () => number): void {
  const r: Reading = { vehicle: '', seq: 0, ts: 0, clock: 'synced', sensor: 'speed', value: 0, quality: 'good' };
  const position = { lat: 0, lon: 0, heading: 0, fix: '3d' as const };
  for (let ts = hourStart; ts < hourStart + HOUR; ts += periodMs) {
    for (const t of trucks) {
      t.engine = clamp(t.engine + (rnd() - 0.5) * 0.6, 70, 110);
      t.cargo = clamp(t.cargo + (rnd() - 0.5) * 0.2, 2, 8);
      t.speed = clamp(t.speed + (rnd() - 0.5) * 8, 0, 90);
      t.heading = (t.heading + (rnd() - 0.5) * 10 + 360) % 360;
      const km = (t.speed * periodMs) / HOUR;
      t.lat += (km / 111) * Math.cos((t.heading * Math.PI) / 180);
      t.lon += (km / 70) * Math.sin((t.heading * Math.PI) / 180);
      for (const sensor of SENSORS) {
        r.vehicle = t.vehicle;
        r.seq = ++t.seq;
        r.ts = ts;
        r.sensor = sensor;
        r.value = sensor === 'engine_temp' ? q(t.engine, 0.1) : sensor === 'container_temp' ? q(t.cargo, 0.1) : q(t.speed, 1);
        if (sensor === 'gps') {
          position.lat = q(t.lat, 1e-5);
          position.lon = q(t.lon, 1e-5);
          position.heading = q(t.heading, 1);
          r.position = position;
        } else {
          r.position = undefined;
        }
        staging.append(r, ts + 800);
      }
    }
  }
}

/** Writes the month under `root`, one file per hour; returns rows, bytes and seconds. */
async function writeMonth(root: string, compression: ParquetCompression, periodMs: number, log: (m: string) => void) {
  const store = new FileArchiveStore(root);
  const staging = await ParquetStaging.create();
  const rnd = random(42);
  const trucks: TruckState[] = Array.from({ length: TRUCKS }, (_, i) => ({
    vehicle: `truck-${String(i).padStart(3, '0')}`,
    seq: 0,
    engine: 85 + rnd() * 5,
    cargo: 4 + rnd(),
    speed: rnd() * 80,
    lat: 48 + rnd() * 5,
    lon: 2 + rnd() * 10,
    heading: rnd() * 360,
  }));
  const local = join(root, '..', `hour-${compression}.parquet`);
  let rows = 0;
  let bytes = 0;
  const t0 = performance.now();
  for (let h = 0; h < DAYS * 24; h++) {
    const start = MONTH_START + h * HOUR;
    appendHour(staging, trucks, start, periodMs, rnd);
    rows += staging.rows;
    await staging.write(local, { compression });
    bytes += statSync(local).size;
    const at = new Date(start).toISOString();
    await store.putFile(`dt=${at.slice(0, 10)}/hour=${at.slice(11, 13)}/part-0-${rows - staging.rows}.parquet`, local);
    if (h % 168 === 167) log(`${compression}: ${(h + 1) / 24} days, ${rows.toLocaleString('en')} rows, ${round(bytes / MB, 1)} MiB`);
  }
  const seconds = (performance.now() - t0) / 1000;
  staging.close();
  rmSync(local);
  return { rows, bytes, seconds };
}

async function medianMs(root: string, sql: string): Promise<{ ms: number; rows: number }> {
  const view = await openReadingsView({ archive: `file://${root}`, cacheDir: root, range: {} });
  const times: number[] = [];
  let rows = 0;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const result = await runQuery(view.connection, sql);
    rows = (await result.getRows()).length;
    times.push(performance.now() - t0);
  }
  view.connection.closeSync();
  return { ms: round(times.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!, 1), rows };
}

runPart(
  'archive-query',
  USAGE,
  (quick) => (quick ? 180_000 : 900_000),
  async (o, log) => {
    const periodMs = o.quick ? 120_000 : 30_000;
    const dir = tempDir('fleet-bench-archive-');
    log(`${TRUCKS} trucks × ${SENSORS.length} sensors, one reading each every ${periodMs / 1000} s, ${DAYS} days, in ${dir}`);
    try {
      const zstd = await writeMonth(join(dir, 'zstd'), 'zstd', periodMs, log);
      const snappy = await writeMonth(join(dir, 'snappy'), 'snappy', periodMs, log);
      const note = `${zstd.rows.toLocaleString('en')} readings, ${DAYS * 24} hourly files, ${TRUCKS} trucks, a reading per sensor every ${periodMs / 1000} s`;
      emit('archive-query', {
        figure: 'bytes/reading in Parquet, zstd',
        value: round(zstd.bytes / zstd.rows, 2),
        unit: 'B',
        peer: 'snappy',
        peerValue: round(snappy.bytes / snappy.rows, 2),
        note,
      });
      emit('archive-query', {
        figure: 'readings/s written (ParquetStaging, zstd, hourly files)',
        value: round(zstd.rows / zstd.seconds),
        unit: 'readings/s',
        peer: 'snappy',
        peerValue: round(snappy.rows / snappy.seconds),
        note: 'one process, staging and COPY included, value generation included',
      });
      const hourly = await medianMs(join(dir, 'zstd'), HOURLY_MAX);
      log(`hourly max: ${hourly.rows} rows in ${hourly.ms} ms`);
      emit('archive-query', {
        figure: 'hourly max cargo temperature, one truck, one month (zstd)',
        value: hourly.ms,
        unit: 'ms',
        note: `${note}; median of ${RUNS}, files in the page cache`,
      });
      const month = await medianMs(join(dir, 'zstd'), MONTH_AGGREGATE);
      emit('archive-query', {
        figure: 'count/avg/min/max per sensor, whole month (zstd)',
        value: month.ms,
        unit: 'ms',
        note: `${note}; median of ${RUNS}, files in the page cache`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
