import { SENSORS, type SensorId } from '../shared/contract/reading.js';
import { DriveCycle } from './drive-cycle.js';
import { Random } from './random.js';
import { generateRoute, Route, type Waypoint } from './route.js';

export const FAULT_KINDS = ['engine_overheat', 'cargo_heating', 'stuck_sensor', 'dropout'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults take effect on the model's step grid (STEP_MS). */
export interface Fault {
  kind: FaultKind;
  /** The sensor a `stuck_sensor` or `dropout` hits; the other kinds are physical and ignore it. */
  sensor?: SensorId;
  /** Event time (ms) the fault starts. */
  from: number;
  /** Event time (ms) it ends, exclusive; absent means until cleared. */
  to?: number;
}

export interface TruckState {
  /** The event time the model was last advanced to. */
  ts: number;
  engineTemp: number;
  containerTemp: number;
  ambientTemp: number;
  speedKmh: number;
  rpm: number;
  lat: number;
  lon: number;
  /** Degrees clockwise from north, in [0, 360). */
  heading: number;
}

/** What one sensor reports: the physical value plus measurement noise, after sensor faults. */
export interface SensorReading {
  value: number;
  position?: { lat: number; lon: number; heading: number };
}

export interface TruckModelOptions {
  seed: number;
  /** Event time (ms) of the cold start. */
  startTs: number;
  /** A loop of waypoints; by default one generated from the seed. */
  route?: readonly Waypoint[];
  faults?: readonly Fault[];
}

/**
 * Physics steps on a fixed grid from startTs, and values hold between steps, so a run depends
 * only on its seed and faults, never on how often or how irregularly it is advanced.
 */
export const STEP_MS = 100;
const STEP_S = STEP_MS / 1000;

// Engine heat balance in °C/s: combustion heat in, loss to the air through the block, and
// the radiator as the thermostat opens. It warms ~20 °C/min from cold (under the detector's
// 30 °C/min rise rule), then the thermostat pins it at 88–91 °C depending on load.
const HEAT_IDLE = 0.22;
const HEAT_FULL_LOAD = 0.2;
const BLOCK_LOSS = 0.002; // per °C above ambient
const RADIATOR_LOSS = 0.015; // per °C above ambient, thermostat fully open
const THERMOSTAT_OPENS = 88;
const THERMOSTAT_FULL = 100;
const ENGINE_WANDER = 0.1; // °C per √s of process noise
// A failed cooling circuit: a lag toward 125 °C that passes 105 °C about 35 s after onset.
const OVERHEAT_TEMP = 125;
const OVERHEAT_TAU_S = 55;
const CARGO_HEATING_PER_S = 1 / 60;
const CARGO_HEATING_MAX = 15;
const DAY_MS = 86_400_000;
const NOISE_SD = { engine: 0.15, cargo: 0.05, rpm: 5 };

/** A seeded, deterministic truck: engine, cargo box, drive cycle and GPS track. */
export class TruckModel {
  private readonly route: Route;
  private readonly startTs: number;
  private now: number;
  private gridTs: number;
  private readonly drive: DriveCycle;
  private readonly noise: Random;
  private readonly ambientBase: number;
  private readonly ambientPhase: number;
  private readonly cargoTauS: number;
  private readonly idleRpm: number;
  private engine: number;
  private cargo: number;
  /** Heat a cargo_heating fault has added, decaying once it ends. */
  private cargoExtra = 0;
  private distanceM = 0;
  private measurementNoise = { engine: 0, cargo: 0, rpm: 0 };
  private faults: Fault[] = [];
  private readonly frozen = new Map<Fault, SensorReading>();

  constructor(opts: TruckModelOptions) {
    if (!Number.isFinite(opts.startTs)) throw new RangeError(`startTs must be a finite ms timestamp, got ${opts.startTs}`);
    // Separate streams so that, say, a custom route leaves the drive cycle unchanged.
    const truck = Random.stream(opts.seed, 0);
    this.route = opts.route ? new Route(opts.route) : generateRoute(Random.stream(opts.seed, 1));
    this.drive = new DriveCycle(Random.stream(opts.seed, 2));
    this.noise = Random.stream(opts.seed, 3);
    this.startTs = this.now = this.gridTs = opts.startTs;
    this.ambientBase = truck.uniform(16, 24);
    this.ambientPhase = truck.uniform(0, 2 * Math.PI);
    this.cargoTauS = truck.uniform(30, 50) * 60;
    this.idleRpm = truck.uniform(680, 720);
    this.engine = this.ambientAt(this.startTs);
    this.cargo = this.engine + truck.uniform(-1.5, 1.5);
    for (const f of opts.faults ?? []) this.inject(f);
  }

  get ts(): number {
    return this.now;
  }

  /** Moves to event time `ts`. Time never runs backwards: an earlier `ts` changes nothing. */
  advance(ts: number): TruckState {
    if (!Number.isFinite(ts)) throw new RangeError(`ts must be a finite ms timestamp, got ${ts}`);
    if (ts > this.now) {
      this.now = ts;
      while (this.gridTs + STEP_MS <= ts) this.step();
    }
    return this.state();
  }

  state(): TruckState {
    const p = this.route.at(this.distanceM);
    return {
      ts: this.now,
      engineTemp: this.engine,
      containerTemp: this.cargo + this.cargoExtra,
      ambientTemp: this.ambientAt(this.gridTs),
      speedKmh: this.drive.speedKmh,
      rpm: this.drive.rpm(this.idleRpm),
      lat: p.lat,
      lon: p.lon,
      heading: p.heading,
    };
  }

  /** What `sensor` reports now; undefined while it drops out. */
  reading(sensor: SensorId): SensorReading | undefined {
    if (this.faults.some((f) => f.kind === 'dropout' && f.sensor === sensor && this.isActive(f))) return undefined;
    const stuck = this.faults.find((f) => f.kind === 'stuck_sensor' && f.sensor === sensor && this.isActive(f));
    return (stuck && this.frozen.get(stuck)) ?? this.liveReading(sensor);
  }

  inject(fault: Fault): void {
    checkFault(fault);
    this.faults.push({ ...fault });
    this.freezeStuck();
  }

  clearFaults(): void {
    this.faults = [];
    this.frozen.clear();
  }

  /** One step over [gridTs, gridTs + STEP_MS), driven by the faults active at its start. */
  private step(): void {
    const overheating = this.faults.some((f) => f.kind === 'engine_overheat' && this.isActive(f));
    const heating = this.faults.some((f) => f.kind === 'cargo_heating' && this.isActive(f));
    const ambient = this.ambientAt(this.gridTs);
    this.drive.step(STEP_S);
    this.distanceM += (this.drive.speedKmh / 3.6) * STEP_S;
    this.engine += this.engineRate(ambient, overheating) * STEP_S + this.noise.normal() * ENGINE_WANDER * Math.sqrt(STEP_S);
    this.cargo += ((ambient - this.cargo) / this.cargoTauS) * STEP_S;
    this.cargoExtra = heating
      ? Math.min(CARGO_HEATING_MAX, this.cargoExtra + CARGO_HEATING_PER_S * STEP_S)
      : this.cargoExtra - (this.cargoExtra / this.cargoTauS) * STEP_S;
    this.gridTs += STEP_MS;
    this.measurementNoise = {
      engine: this.noise.normal() * NOISE_SD.engine,
      cargo: this.noise.normal() * NOISE_SD.cargo,
      rpm: this.noise.normal() * NOISE_SD.rpm,
    };
    this.freezeStuck();
  }

  private engineRate(ambient: number, overheating: boolean): number {
    if (overheating) return (OVERHEAT_TEMP - this.engine) / OVERHEAT_TAU_S;
    const load = clamp01((0.6 * this.drive.speedKmh) / 90 + (0.4 * Math.max(0, this.drive.accel)) / 0.7);
    const open = clamp01((this.engine - THERMOSTAT_OPENS) / (THERMOSTAT_FULL - THERMOSTAT_OPENS));
    return HEAT_IDLE + HEAT_FULL_LOAD * load - (BLOCK_LOSS + RADIATOR_LOSS * open) * (this.engine - ambient);
  }

  /** A slow daily swing of ±1 °C around the truck's climate. */
  private ambientAt(ts: number): number {
    return this.ambientBase + Math.sin((2 * Math.PI * (ts - this.startTs)) / DAY_MS + this.ambientPhase);
  }

  private liveReading(sensor: SensorId): SensorReading {
    const s = this.state();
    switch (sensor) {
      case 'engine_temp':
        return { value: s.engineTemp + this.measurementNoise.engine };
      case 'container_temp':
        return { value: s.containerTemp + this.measurementNoise.cargo };
      case 'speed':
        return { value: s.speedKmh };
      case 'rpm':
        return { value: s.rpm + this.measurementNoise.rpm };
      case 'gps':
        return { value: s.speedKmh, position: { lat: s.lat, lon: s.lon, heading: s.heading } };
    }
  }

  /** A stuck sensor keeps the value it had when it stuck. */
  private freezeStuck(): void {
    for (const f of this.faults) {
      if (f.kind === 'stuck_sensor' && this.isActive(f) && !this.frozen.has(f)) {
        this.frozen.set(f, this.liveReading(f.sensor!));
      }
    }
  }

  private isActive(f: Fault): boolean {
    return f.from <= this.gridTs && (f.to === undefined || this.gridTs < f.to);
  }
}

function checkFault(f: Fault): void {
  if (!FAULT_KINDS.includes(f.kind)) throw new RangeError(`unknown fault kind ${JSON.stringify(f.kind)}`);
  if ((f.kind === 'stuck_sensor' || f.kind === 'dropout') && !SENSORS.includes(f.sensor!)) {
    throw new RangeError(`a ${f.kind} fault needs a sensor (one of ${SENSORS.join(', ')})`);
  }
  if (!Number.isFinite(f.from)) throw new RangeError(`fault.from must be a finite ms timestamp, got ${f.from}`);
  if (f.to !== undefined && !(f.to > f.from)) throw new RangeError(`fault.to (${f.to}) must be after fault.from (${f.from})`);
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
