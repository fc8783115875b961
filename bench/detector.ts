/**
 * The detector's rule engine alone (shared/rules/, as cloud/detector.ts and the agent's edge
 * rules run it) over 10,000 vehicles × every sensor a simulated truck carries, at its default
 * rates (about 10 readings/s a truck, GPS included) with 10 s windows and the default rules, in
 * event-time order; then the whole detector step (Detector.handle: dedupe, operational store,
 * windows, alerts) on a slice of the same readings. Readings are generated in chunks outside
 * the clock; the rate is per CPU second of this process (user + system), so other work on the
 * machine does not lower it. Memory per vehicle is the heap the engine holds after a full GC.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Detector } from '../cloud/detector.js';
import type { FleetStore } from '../cloud/store.js';
import { PgStore } from '../cloud/store/postgres/pg-store.js';
import { SqliteStore } from '../cloud/store/sqlite/sqlite-store.js';
import type { SourcedRecord, TelemetrySource } from '../cloud/sources/source.js';
import type { Reading, SensorId } from '../shared/contract/reading.js';
import { createLogger } from '../shared/log.js';
import { RuleEngine } from '../shared/rules/engine.js';
import { DEFAULT_RULES } from '../shared/rules/default-rules.js';
import { DEFAULT_SAMPLE_HZ } from '../simulators/simulated-sensors.js';
import { tempDir } from '../test/support/harness.js';
import { startPostgres } from '../test/support/postgres.js';
import { emit, round, runPart } from './support.js';

const USAGE = `Usage: node dist/bench/detector.js [--quick] [--help]

Readings/s per core of the rule engine over 10,000 vehicles x every simulated sensor with 10 s windows,
heap bytes per vehicle, and readings/s per core of the whole detector step (store included).
`;

const VEHICLES = 10_000;
const SENSOR_HZ = Object.entries(DEFAULT_SAMPLE_HZ) as [SensorId, number][];
const FLOOR_PER_CORE = 1_000_000;
/** Event time generated and fed per chunk. */
const CHUNK_MS = 10_000;
/** One vehicle in this many overheats, so the alert path is exercised too. */
const OVERHEAT_EVERY = 100;
const T0 = Date.UTC(2026, 10, 2, 8);

/** A deterministic, cheap noise source (not Math.random, so runs compare). */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

const VEHICLE_IDS = Array.from({ length: VEHICLES }, (_, i) => `truck-${String(i).padStart(5, '0')}`);

/** The readings of event time [from, from + CHUNK_MS), in ts order, each vehicle's seqs consecutive. */
function chunk(from: number, seqs: Int32Array, rnd: () => number): Reading[] {
  const out: Reading[] = [];
  const stepMs = 500; // the finest rate is 2 Hz
  for (let ts = from; ts < from + CHUNK_MS; ts += stepMs) {
    for (let v = 0; v < VEHICLES; v++) {
      const vehicle = VEHICLE_IDS[v]!;
      for (const [sensor, hz] of SENSOR_HZ) {
        if ((ts - T0) % (1000 / hz) !== 0) continue;
        const value = valueOf(sensor, v, rnd);
        const r: Reading = { vehicle, seq: ++seqs[v]!, ts, clock: 'synced', sensor, value: Math.round(value * 100) / 100, quality: 'good' };
        if (sensor === 'gps') r.position = { lat: 50 + v * 1e-3 + ((ts - T0) / 1000) * 2e-4, lon: 10, heading: 0, fix: '3d' };
        out.push(r);
      }
    }
  }
  return out;
}

/** A plausible value of each sensor; one vehicle in OVERHEAT_EVERY runs hot. */
function valueOf(sensor: SensorId, v: number, rnd: () => number): number {
  switch (sensor) {
    case 'engine_temp':
      return (v % OVERHEAT_EVERY === 0 ? 110 : 90) + rnd();
    case 'container_temp':
      return -18 + rnd() * 0.2;
    case 'cargo_setpoint':
      return -18;
    case 'rpm':
      return 1200 + rnd() * 100;
    case 'engine_load':
      return 40 + rnd() * 20;
    case 'module_voltage':
      return 14.1 + rnd() * 0.1;
    default:
      return 80 + rnd() * 10;
  }
}

const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};

/** The detector step with nothing behind it: records are handed to Detector.handle directly. */
const NO_SOURCE: TelemetrySource = { name: 'bench', poll: async () => [], commit: async () => {}, close: async () => {} };

/**
 * Detector.handle over `chunks` chunks of event time, as one record per vehicle batch of 2 s
 * (10 readings), ordered by their first reading's time as a stream would carry them.
 */
async function measureStep(store: FleetStore, chunks: number, log: (line: string) => void) {
  const detector = new Detector(
    { store, pollIntervalMs: 20, pollMaxRecords: 1000, channels: [], opsHost: '127.0.0.1', opsPort: -1 },
    DEFAULT_RULES,
    NO_SOURCE,
    createLogger('bench', { level: 'silent' }),
  );
  await store.open();
  const rnd = noise(7);
  const seqs = new Int32Array(VEHICLES);
  let readings = 0;
  let cpu = 0;
  let wall = 0;
  let offset = 0;
  for (let c = 0; c < chunks; c++) {
    const byVehicle = new Map<string, Reading[]>();
    for (const r of chunk(T0 + c * CHUNK_MS, seqs, rnd)) {
      let list = byVehicle.get(r.vehicle);
      if (!list) byVehicle.set(r.vehicle, (list = []));
      list.push(r);
    }
    const records: SourcedRecord[] = [];
    for (let from = 0; from < CHUNK_MS; from += 2000) {
      for (const [vehicle, list] of byVehicle) {
        const rs = list.filter((r) => r.ts - (T0 + c * CHUNK_MS) >= from && r.ts - (T0 + c * CHUNK_MS) < from + 2000);
        records.push({
          offset: ++offset,
          vehicle,
          receivedAt: rs.at(-1)!.ts,
          batch: { vehicle, headTs: rs.at(-1)!.ts, readings: rs },
          rebuild: false,
        });
      }
    }
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    for (let i = 0; i < records.length; i += 1000) await detector.handle(records.slice(i, i + 1000));
    wall += (performance.now() - wall0) / 1000;
    cpu += cpuSeconds(cpu0);
    readings += records.reduce((n, r) => n + r.batch.readings.length, 0);
    log(
      `detector step, ${store.location}: ${readings.toLocaleString('en')} readings, ${Math.round(readings / wall).toLocaleString('en')}/s`,
    );
  }
  await store.close();
  return { readings, cpuSeconds: cpu, wallSeconds: wall };
}

runPart(
  'detector',
  USAGE,
  // The step runs twice: into SQLite and into a PostgreSQL started here.
  (quick) => (quick ? 240_000 : 900_000),
  async (o, log) => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const chunks = o.quick ? 3 : 12;
    const rnd = noise(42);

    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const engine = new RuleEngine(DEFAULT_RULES);
    const seqs = new Int32Array(VEHICLES);
    let readings = 0;
    let cpu = 0;
    let wall = 0;
    let events = 0;
    for (let c = 0; c < chunks; c++) {
      const rs = chunk(T0 + c * CHUNK_MS, seqs, rnd);
      const cpu0 = process.cpuUsage();
      const w0 = performance.now();
      for (const r of rs) events += engine.process(r, r.ts, r.ts).length;
      wall += performance.now() - w0;
      cpu += cpuSeconds(cpu0);
      readings += rs.length;
      log(
        `engine: ${readings.toLocaleString('en')} readings, ${Math.round(readings / cpu).toLocaleString('en')} per CPU second, ${events} alert events`,
      );
    }
    gc();
    const perVehicle = (process.memoryUsage().heapUsed - heapBefore) / engine.vehicleCount;
    const note = `${VEHICLES.toLocaleString('en')} vehicles x ${SENSOR_HZ.length} sensors at a simulated truck's rates, 10 s windows, default rules; ${readings.toLocaleString('en')} readings`;
    emit('detector', {
      figure: 'rule engine, readings/s per core',
      value: Math.round(readings / cpu),
      unit: 'readings/s',
      floor: FLOOR_PER_CORE,
      note,
    });
    emit('detector', {
      figure: 'rule engine, readings/s (wall clock)',
      value: Math.round(readings / (wall / 1000)),
      unit: 'readings/s',
      note,
    });
    emit('detector', {
      figure: 'rule engine, heap per vehicle',
      value: Math.round(perVehicle),
      unit: 'B',
      note: `${engine.vehicleCount} vehicles with open windows and baselines`,
    });

    // The whole step: the same kind of readings as one record per vehicle batch of 2 s (10 readings).
    const dir = tempDir('fleet-bench-detector-');
    const stepChunks = o.quick ? 1 : 3;
    const pg = await startPostgres();
    try {
      const sqlite = await measureStep(new SqliteStore(join(dir, 'fleet.db')), stepChunks, log);
      emit('detector', {
        figure: 'detector step (store + engine), readings/s per core',
        value: Math.round(sqlite.readings / sqlite.cpuSeconds),
        unit: 'readings/s',
        note: `Detector.handle, 1,000 records of 10 readings per call, SQLite store; ${sqlite.readings.toLocaleString('en')} readings`,
      });
      const postgres = await measureStep(new PgStore(await pg.createDatabase()), stepChunks, log);
      emit('detector', {
        figure: 'detector readings/s stored, PostgreSQL store',
        value: Math.round(postgres.readings / postgres.wallSeconds),
        unit: 'readings/s',
        peer: 'SQLite store',
        peerValue: Math.round(sqlite.readings / sqlite.wallSeconds),
        note: `Detector.handle, wall clock, 1,000 records of 10 readings per call; PostgreSQL (Debian's) on this machine, synchronous commit`,
      });
    } finally {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    log(`engine wall time ${round(wall / 1000, 2)} s`);
  },
);
