import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sample } from '../../../shared/contract/reading.js';
import { simulateSamples } from '../../../simulators/fast-forward.js';
import { DEFAULT_SAMPLE_HZ, SimulatedSensor, simulatedTruckSensors, takeSample } from '../../../simulators/simulated-sensors.js';
import { TruckModel } from '../../../simulators/truck-model.js';

const T0 = Date.UTC(2024, 5, 1, 8);

describe('simulateSamples', () => {
  it('yields every sensor at its rate, in ts order, over a half-open range', () => {
    const samples = [...simulateSamples(new TruckModel({ seed: 1, startTs: T0 }), T0, T0 + 10_000)];
    const count = (sensor: string) => samples.filter((s) => s.sensor === sensor).length;
    // A sensor read less than once a second is read at T0 only, within ten seconds.
    for (const [sensor, hz] of Object.entries(DEFAULT_SAMPLE_HZ)) assert.equal(count(sensor), Math.ceil(10 * hz), sensor);
    for (let i = 1; i < samples.length; i++) assert.ok(samples[i]!.ts >= samples[i - 1]!.ts);
    assert.equal(samples[0]!.ts, T0);
    assert.ok(samples.at(-1)!.ts < T0 + 10_000);
  });

  it('takes rate overrides and leaves out a sensor at 0 Hz', () => {
    const samples = [...simulateSamples(new TruckModel({ seed: 1, startTs: T0 }), T0, T0 + 1000, { gps: 0, rpm: 10 })];
    assert.equal(samples.filter((s) => s.sensor === 'gps').length, 0);
    assert.equal(samples.filter((s) => s.sensor === 'rpm').length, 10);
  });

  it('refuses to start before where the model already is', () => {
    const m = new TruckModel({ seed: 1, startTs: T0 });
    m.advance(T0 + 5000);
    assert.throws(() => [...simulateSamples(m, T0, T0 + 10_000)], RangeError);
  });
});

describe('takeSample', () => {
  it('builds a contract Sample with a quantized value', () => {
    const s = takeSample(new TruckModel({ seed: 1, startTs: T0 }), 'engine_temp', T0 + 1234)!;
    assert.deepEqual(Object.keys(s).sort(), ['clock', 'quality', 'sensor', 'ts', 'value']);
    assert.equal(s.ts, T0 + 1234);
    assert.equal(s.clock, 'synced');
    assert.equal(s.quality, 'good');
    assert.equal(s.value, Math.round(s.value * 100) / 100);
  });

  it('keeps a heading just west of north below 360 after rounding', () => {
    const route = [
      { lat: 50, lon: 10 },
      { lat: 50.1, lon: 9.99999 },
    ];
    const gps = takeSample(new TruckModel({ seed: 1, startTs: T0, route }), 'gps', T0)!;
    assert.equal(gps.position!.heading, 0);
    assert.equal(gps.position!.fix, '3d');
  });
});

describe('SimulatedSensor', () => {
  it('samples as it starts, then on a timer with the clock it is given, and reports its health', async () => {
    let now = T0;
    const model = new TruckModel({ seed: 1, startTs: T0 });
    const sensor = new SimulatedSensor(model, 'engine_temp', 100, () => now);
    const got: Sample[] = [];
    assert.equal(sensor.name, 'sim-engine_temp');
    assert.equal(sensor.health().state, 'down');

    await sensor.start((s) => got.push(s));
    assert.deepEqual(
      got.map((s) => s.ts),
      [T0],
    );
    assert.deepEqual(sensor.health(), { state: 'ok', lastSampleAt: T0, rejected: 0 });
    now += 500;
    await sleep(60);
    assert.ok(got.length >= 3, `${got.length} samples in 60 ms at 100 Hz`);
    assert.ok(got.slice(1).every((s) => s.sensor === 'engine_temp' && s.ts === T0 + 500));
    assert.deepEqual(sensor.health(), { state: 'ok', lastSampleAt: T0 + 500, rejected: 0 });

    model.inject({ kind: 'dropout', sensor: 'engine_temp', from: T0 });
    const before = got.length;
    now += 1000;
    await sleep(60);
    assert.equal(got.length, before, 'sampled during a dropout');
    const quiet = sensor.health();
    assert.equal(quiet.state, 'degraded');
    assert.equal(quiet.lastSampleAt, T0 + 500);

    await sensor.stop();
    model.clearFaults();
    await sleep(40);
    assert.equal(got.length, before, 'sampled after stop');
    assert.equal(sensor.health().state, 'down');
  });

  it('makes one sensor per sensor id at the default rates, with overrides', () => {
    const model = new TruckModel({ seed: 1, startTs: T0 });
    const sensors = simulatedTruckSensors(model, { rpm: 5, gps: 0 }) as SimulatedSensor[];
    assert.deepEqual(
      sensors.map((s) => [s.sensor, s.hz]),
      [
        ['engine_temp', 2],
        ['container_temp', 1],
        ['speed', 2],
        ['rpm', 5],
        ['engine_load', 1],
        ['intake_temp', 0.5],
        ['ambient_temp', 0.2],
        ['fuel_level', 0.1],
        ['module_voltage', 0.2],
        ['cargo_setpoint', 1 / 60],
      ],
    );
    assert.throws(() => simulatedTruckSensors(model, { speed: -1 }), RangeError);
  });
});
