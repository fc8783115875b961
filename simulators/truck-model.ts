import { sensorSpec, type SensorId } from '../shared/contract/reading.js';
import { DriveCycle } from './drive-cycle.js';
import { EngineModel } from './engine-model.js';
import { checkFault, isActive, type Fault } from './faults.js';
import { Random } from './random.js';
import { ReeferModel } from './reefer-model.js';
import { generateRoute, Route, type Waypoint } from './route.js';
import { Terrain } from './terrain.js';

export type { Fault } from './faults.js';

/** A change a day's plan makes at a moment: the driver's and the loader's doings. */
export type PlanEvent =
  | { at: number; kind: 'ignition'; on: boolean }
  /** Parked (held) or free to drive. */
  | { at: number; kind: 'hold'; on: boolean }
  | { at: number; kind: 'door'; open: boolean }
  /** A new load: its set point (undefined: reefer off, the box follows the weather) and weight. */
  | { at: number; kind: 'load'; setPoint: number | undefined; payloadKg: number };

export interface TruckState {
  /** The event time the model was last advanced to. */
  ts: number;
  ignition: boolean;
  engineTemp: number;
  containerTemp: number;
  /** The reefer's set point; undefined for a dry box or a reefer switched off. */
  setPoint: number | undefined;
  doorOpen: boolean;
  ambientTemp: number;
  speedKmh: number;
  rpm: number;
  /** 0 to 1, as OBD-II PID 04 reports it. */
  load: number;
  grade: number;
  fuelPct: number;
  lat: number;
  lon: number;
  /** Degrees clockwise from north, in [0, 360). */
  heading: number;
}

/** What one sensor reports: the physical value plus measurement noise and resolution, after sensor faults. */
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
  /** Timed events, e.g. a working day's stops; without a plan the truck drives on with its engine running. */
  plan?: readonly PlanEvent[];
  /** Physics step; coarser steps run faster (the dynamics are minutes long, so 1 s loses nothing). */
  stepMs?: number;
}

/**
 * Physics steps on a fixed grid from startTs, and values hold between steps, so a run depends
 * only on its seed, plan and faults, never on how often or how irregularly it is advanced.
 */
export const STEP_MS = 100;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** Sensors on the OBD-II port: silent while the ignition is off. */
const OBD_SENSORS: ReadonlySet<SensorId> = new Set([
  'engine_temp',
  'speed',
  'rpm',
  'engine_load',
  'intake_temp',
  'ambient_temp',
  'fuel_level',
  'module_voltage',
]);
/** What each sensor's hardware resolves (OBD-II byte scalings, the DS18B20's 1/16 °C). */
const RESOLUTION: Partial<Record<SensorId, number>> = {
  engine_temp: 1,
  container_temp: 0.0625,
  speed: 1,
  rpm: 0.25,
  engine_load: 100 / 255,
  intake_temp: 1,
  ambient_temp: 1,
  fuel_level: 100 / 255,
  module_voltage: 0.001,
  cargo_setpoint: 0.1,
};
/** Measurement noise (standard deviation) before the resolution applies. */
const NOISE_SD: Partial<Record<SensorId, number>> = {
  engine_temp: 0.15,
  container_temp: 0.05,
  rpm: 5,
  engine_load: 1,
  intake_temp: 0.3,
  ambient_temp: 0.3,
  fuel_level: 0.3,
  module_voltage: 0.03,
};
/** The default strength of a noisy sensor: its readings scatter by about this much. */
const NOISY_SD: Partial<Record<SensorId, number>> = { engine_temp: 4, container_temp: 3, rpm: 300, speed: 15, engine_load: 20 };
const NOISY_MISSING = 0.2;
const DEFAULT_DRIFT_PER_HOUR = 3;
const DEFAULT_JUMP_KM = 20;
const M_PER_DEG_LAT = 111_320;

/** A seeded, deterministic truck: engine, cargo box, drive cycle on a hilly route, GPS track. */
export class TruckModel {
  private readonly route: Route;
  private readonly terrain: Terrain;
  private readonly startTs: number;
  private readonly stepMs: number;
  private readonly seed: number;
  private now: number;
  private gridTs: number;
  private readonly drive: DriveCycle;
  private readonly engine: EngineModel;
  private readonly reefer: ReeferModel;
  private readonly ambientBase: number;
  private readonly ambientSwing: number;
  private readonly idleRpm: number;
  private readonly jumpBearing: number;
  private payloadKg: number;
  private fuelPct: number;
  private ignitionOn = true;
  private doorOpen = false;
  private distanceM = 0;
  private faults: Fault[] = [];
  private readonly frozen = new Map<Fault, SensorReading>();
  private readonly plan: PlanEvent[];
  private nextPlan = 0;
  /** state() at the current step: every sensor read at one instant reads the same truck. */
  private current: TruckState | undefined;

  constructor(opts: TruckModelOptions) {
    if (!Number.isFinite(opts.startTs)) throw new RangeError(`startTs must be a finite ms timestamp, got ${opts.startTs}`);
    const stepMs = opts.stepMs ?? STEP_MS;
    if (!(Number.isInteger(stepMs) && stepMs >= 10 && stepMs <= 5000))
      throw new RangeError(`stepMs must be a whole number of ms in [10, 5000], got ${stepMs}`);
    // Separate streams so that, say, a custom route leaves the drive cycle unchanged.
    const truck = Random.stream(opts.seed, 0);
    this.seed = opts.seed;
    this.route = opts.route ? new Route(opts.route) : generateRoute(Random.stream(opts.seed, 1));
    this.drive = new DriveCycle(Random.stream(opts.seed, 2));
    this.terrain = new Terrain(Random.stream(opts.seed, 4));
    this.stepMs = stepMs;
    this.startTs = this.now = this.gridTs = opts.startTs;
    this.ambientBase = truck.uniform(2, 26);
    this.ambientSwing = truck.uniform(2, 6);
    this.idleRpm = truck.uniform(680, 720);
    this.payloadKg = truck.uniform(14_000, 40_000);
    this.fuelPct = truck.uniform(50, 95);
    this.jumpBearing = truck.uniform(0, 2 * Math.PI);
    const ambient = this.ambientAt(this.startTs);
    this.engine = new EngineModel(Random.stream(opts.seed, 3), ambient);
    this.reefer = new ReeferModel(Random.stream(opts.seed, 5), ambient);
    this.plan = [...(opts.plan ?? [])].sort((a, b) => a.at - b.at);
    for (const f of opts.faults ?? []) this.inject(f);
    this.applyPlan();
  }

  get ts(): number {
    return this.now;
  }

  /** Whether the engine runs (OBD-II answers only then). */
  get ignition(): boolean {
    return this.ignitionOn;
  }

  /** Moves to event time `ts`. Time never runs backwards: an earlier `ts` changes nothing. */
  advance(ts: number): TruckState {
    if (!Number.isFinite(ts)) throw new RangeError(`ts must be a finite ms timestamp, got ${ts}`);
    if (ts > this.now) {
      this.now = ts;
      while (this.gridTs + this.stepMs <= ts) this.step();
    }
    return this.state();
  }

  state(): TruckState {
    if (this.current !== undefined) return { ...this.current, ts: this.now };
    const p = this.route.at(this.distanceM);
    this.current = {
      ts: this.now,
      ignition: this.ignitionOn,
      engineTemp: this.engine.temp,
      containerTemp: this.reefer.temp,
      setPoint: this.reefer.setPoint,
      doorOpen: this.doorOpen,
      ambientTemp: this.ambientAt(this.gridTs),
      speedKmh: this.drive.speedKmh,
      rpm: this.ignitionOn ? this.drive.rpm(this.idleRpm) : 0,
      load: this.ignitionOn ? this.drive.load : 0,
      grade: this.terrain.gradeAt(this.distanceM),
      fuelPct: this.fuelPct,
      lat: p.lat,
      lon: p.lon,
      heading: p.heading,
    };
    return { ...this.current };
  }

  /** What `sensor` reports now; undefined while it has nothing to say (ignition off, no reefer, a dropout). */
  reading(sensor: SensorId): SensorReading | undefined {
    const active = this.faults.filter((f) => f.sensor === sensor && isActive(f, this.gridTs));
    if (active.some((f) => f.kind === 'dropout')) return undefined;
    const stuck = active.find((f) => f.kind === 'stuck_sensor');
    if (stuck) return this.frozen.get(stuck);
    const noisy = active.find((f) => f.kind === 'noisy_sensor');
    if (noisy && this.uniform(sensor, 1) < NOISY_MISSING) return undefined;
    const r = this.trueReading(sensor);
    if (r === undefined || sensor === 'gps') return r;
    let value = r.value + this.normal(sensor, 0) * (NOISE_SD[sensor] ?? 0);
    if (noisy) value += this.normal(sensor, 2) * (noisy.magnitude ?? NOISY_SD[sensor] ?? 1);
    for (const f of active)
      if (f.kind === 'sensor_drift') value += ((f.magnitude ?? DEFAULT_DRIFT_PER_HOUR) * (this.gridTs - f.from)) / HOUR_MS;
    const [lo, hi] = sensorSpec(sensor).range;
    const step = RESOLUTION[sensor];
    const resolved = step === undefined ? value : Math.round(value / step) * step;
    return { value: Math.min(hi, Math.max(lo, resolved)) };
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

  /** One step over [gridTs, gridTs + stepMs), driven by the plan and faults in force at its start. */
  private step(): void {
    const dtS = this.stepMs / 1000;
    const on = (kind: Fault['kind']) => this.faults.some((f) => f.kind === kind && isActive(f, this.gridTs));
    const ambient = this.ambientAt(this.gridTs);
    const grade = this.terrain.gradeAt(this.distanceM);
    if (this.ignitionOn) this.drive.step(dtS, grade, 15_000 + this.payloadKg);
    this.distanceM += (this.drive.speedKmh / 3.6) * dtS;
    this.engine.step(dtS, {
      running: this.ignitionOn,
      load: this.drive.load,
      speedKmh: this.drive.speedKmh,
      ambient,
      overheat: on('engine_overheat'),
      clogged: on('engine_overheat_slow'),
      fanFailed: on('fan_failure'),
    });
    this.reefer.step(dtS, { ambient, sun: this.sunAt(this.gridTs), doorOpen: this.doorOpen, failed: on('cargo_heating') });
    if (this.ignitionOn) this.fuelPct = Math.max(2, this.fuelPct - ((0.5 + 10 * this.drive.load) * dtS) / 3600);
    // A tank running low is filled at the next stop.
    if (this.fuelPct < 12 && this.drive.speedKmh === 0) this.fuelPct = 95;
    this.gridTs += this.stepMs;
    this.current = undefined;
    this.applyPlan();
    this.freezeStuck();
  }

  private applyPlan(): void {
    while (this.nextPlan < this.plan.length && this.plan[this.nextPlan]!.at <= this.gridTs) {
      const e = this.plan[this.nextPlan++]!;
      if (e.kind === 'ignition') this.ignitionOn = e.on;
      else if (e.kind === 'hold') this.drive.held = e.on;
      else if (e.kind === 'door') this.doorOpen = e.open;
      else {
        this.reefer.reload(e.setPoint, this.ambientAt(this.gridTs));
        this.payloadKg = e.payloadKg;
      }
    }
    if (!this.ignitionOn) {
      this.drive.held = true;
      this.drive.speedKmh = 0;
    }
  }

  /** The region's climate with a daily swing: coolest before dawn, warmest mid-afternoon (UTC+1). */
  private ambientAt(ts: number): number {
    return this.ambientBase + this.ambientSwing * Math.cos((2 * Math.PI * (ts - 14 * HOUR_MS)) / DAY_MS);
  }

  private sunAt(ts: number): number {
    return Math.max(0, Math.cos((2 * Math.PI * (ts - 12 * HOUR_MS)) / DAY_MS));
  }

  private trueReading(sensor: SensorId): SensorReading | undefined {
    if (OBD_SENSORS.has(sensor) && !this.ignitionOn) return undefined;
    if (this.current === undefined) this.state();
    const s = this.current!;
    switch (sensor) {
      case 'engine_temp':
        return { value: s.engineTemp };
      case 'container_temp':
        return { value: s.containerTemp };
      case 'speed':
        return { value: s.speedKmh };
      case 'rpm':
        return { value: s.rpm };
      case 'engine_load':
        return { value: 100 * s.load };
      case 'intake_temp':
        // Charge air: warmer under boost, and soaked by the engine bay when slow.
        return { value: s.ambientTemp + 4 + 18 * s.load + 8 * Math.exp(-s.speedKmh / 15) };
      case 'ambient_temp':
        // The bumper sensor reads the engine's heat when the truck stands.
        return { value: s.ambientTemp + 3 * Math.exp(-s.speedKmh / 20) };
      case 'fuel_level':
        // The float tilts on a grade and sloshes as the truck speeds up or brakes.
        return { value: s.fuelPct + 60 * s.grade + 3 * this.drive.accel };
      case 'module_voltage':
        return { value: 14.1 };
      case 'cargo_setpoint':
        return s.setPoint === undefined ? undefined : { value: s.setPoint };
      case 'gps':
        return { value: s.speedKmh, position: this.position(s) };
      case 'generic':
        return undefined;
    }
  }

  private position(s: TruckState): SensorReading['position'] {
    const jump = this.faults.find((f) => f.kind === 'gps_jump' && isActive(f, this.gridTs));
    const km = jump ? (jump.magnitude ?? DEFAULT_JUMP_KM) : 0;
    // A few metres of receiver noise, steady for the same instant.
    const north = this.normal('gps', 0) * 3 + km * 1000 * Math.cos(this.jumpBearing);
    const east = this.normal('gps', 1) * 3 + km * 1000 * Math.sin(this.jumpBearing);
    return {
      lat: s.lat + north / M_PER_DEG_LAT,
      lon: s.lon + east / (M_PER_DEG_LAT * Math.cos((s.lat * Math.PI) / 180)),
      heading: s.heading,
    };
  }

  /** A stuck sensor keeps the value it had when it stuck. */
  private freezeStuck(): void {
    for (const f of this.faults) {
      if (f.kind === 'stuck_sensor' && isActive(f, this.gridTs) && !this.frozen.has(f)) {
        const r = this.trueReading(f.sensor!);
        if (r !== undefined) this.frozen.set(f, { ...r, value: quantizeTo(f.sensor!, r.value) });
      }
    }
  }

  /**
   * Measurement noise as a pure function of (truck, sensor, instant, purpose): the same
   * reading however often it is asked for, and no draw shifts the physics' random stream.
   */
  private uniform(sensor: SensorId, purpose: number): number {
    let h = Math.imul(this.seed ^ 0x27d4eb2f, 0x165667b1) ^ Math.imul(sensorSpec(sensor).code + 1, 0x9e3779b1) ^ (purpose * 0x85ebca77);
    h = Math.imul(h ^ (this.gridTs / this.stepMs), 0xc2b2ae3d) ^ Math.floor(this.gridTs / 4294967296);
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
    h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
    return ((h ^ (h >>> 15)) >>> 0) / 4294967296;
  }

  private normal(sensor: SensorId, purpose: number): number {
    const u = 1 - this.uniform(sensor, purpose * 2);
    const v = this.uniform(sensor, purpose * 2 + 1);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

function quantizeTo(sensor: SensorId, value: number): number {
  const step = RESOLUTION[sensor];
  return step === undefined ? value : Math.round(value / step) * step;
}
