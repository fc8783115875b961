import type { Sensor, SensorHealth } from '../agent/sensor.js';
import { quantize } from '../shared/contract/codec.js';
import { SENSORS, type Sample, type SensorId } from '../shared/contract/reading.js';
import type { TruckModel } from './truck-model.js';

/** What a simulated truck carries and how often each is read (sensors not listed are not fitted). */
export const DEFAULT_SAMPLE_HZ: Readonly<Partial<Record<SensorId, number>>> = {
  engine_temp: 2,
  container_temp: 1,
  speed: 2,
  gps: 1,
  rpm: 2,
  engine_load: 1,
  intake_temp: 0.5,
  ambient_temp: 0.2,
  fuel_level: 0.1,
  module_voltage: 0.2,
  cargo_setpoint: 1 / 60,
};

/** Missing periods before a sensor that has gone quiet reports itself degraded. */
const QUIET_PERIODS = 3;

/**
 * The defaults overridden by `rates`; a rate of 0 leaves that sensor out.
 * Ordered as SENSORS, which is also the order same-instant samples come in.
 */
export function sampleRates(rates: Partial<Record<SensorId, number>> = {}): [SensorId, number][] {
  const out: [SensorId, number][] = [];
  for (const sensor of SENSORS) {
    const hz = rates[sensor] ?? DEFAULT_SAMPLE_HZ[sensor] ?? 0;
    if (!(Number.isFinite(hz) && hz >= 0)) throw new RangeError(`${sensor} rate must be a finite number of Hz >= 0, got ${hz}`);
    if (hz > 0) out.push([sensor, hz]);
  }
  return out;
}

/** The sample `sensor` gives at `ts`, or undefined while it drops out. */
export function takeSample(model: TruckModel, sensor: SensorId, ts: number): Sample | undefined {
  model.advance(ts);
  const r = model.reading(sensor);
  if (r === undefined) return undefined;
  const sample: Sample = { ts, clock: 'synced', sensor, value: quantize(r.value), quality: 'good' };
  if (r.position) {
    // Rounded here to the wire's tenth of a degree, so 359.97 cannot become 360.0 there.
    const heading = (Math.round(r.position.heading * 10) / 10) % 360;
    sample.position = { lat: r.position.lat, lon: r.position.lon, heading, fix: '3d' };
  }
  return sample;
}

/** One sensor of a simulated truck, sampling the shared model on a real timer. */
export class SimulatedSensor implements Sensor {
  readonly name: string;
  private timer: NodeJS.Timeout | undefined;
  private startedAt: number | undefined;
  private stopped = false;
  private lastSampleAt: number | undefined;

  constructor(
    private readonly model: TruckModel,
    readonly sensor: SensorId,
    readonly hz: number = DEFAULT_SAMPLE_HZ[sensor] ?? 1,
    private readonly clock: () => number = Date.now,
  ) {
    if (!(Number.isFinite(hz) && hz > 0)) throw new RangeError(`${sensor} rate must be a positive number of Hz, got ${hz}`);
    this.name = `sim-${sensor}`;
  }

  async start(emit: (sample: Sample) => void): Promise<void> {
    if (this.startedAt !== undefined) throw new Error(`${this.name} is already started`);
    this.startedAt = this.clock();
    const sample = () => {
      const ts = this.clock();
      const taken = takeSample(this.model, this.sensor, ts);
      if (taken === undefined) return;
      this.lastSampleAt = ts;
      emit(taken);
    };
    // The first reading as the sensor starts, as a device answers its first poll, not a period later.
    sample();
    this.timer = setInterval(sample, 1000 / this.hz);
    // The agent's own lifecycle decides when the process ends, not a sensor's timer.
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopped = true;
  }

  health(): SensorHealth {
    const h: SensorHealth = { state: 'ok', rejected: 0 };
    if (this.lastSampleAt !== undefined) h.lastSampleAt = this.lastSampleAt;
    if (this.startedAt === undefined || this.stopped) {
      return { ...h, state: 'down', detail: this.stopped ? 'stopped' : 'not started' };
    }
    const quietMs = this.clock() - (this.lastSampleAt ?? this.startedAt);
    if (quietMs > (QUIET_PERIODS * 1000) / this.hz) {
      return { ...h, state: 'degraded', detail: `no sample for ${Math.round(quietMs / 1000)} s` };
    }
    return this.lastSampleAt === undefined ? { ...h, state: 'starting' } : h;
  }
}

/** One SimulatedSensor per sensor with a non-zero rate (rates default to DEFAULT_SAMPLE_HZ). */
export function simulatedTruckSensors(
  model: TruckModel,
  rates: Partial<Record<SensorId, number>> = {},
  clock: () => number = Date.now,
): Sensor[] {
  return sampleRates(rates).map(([sensor, hz]) => new SimulatedSensor(model, sensor, hz, clock));
}
