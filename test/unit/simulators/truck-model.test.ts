import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import type { Sample, SensorId } from '../../../shared/contract/reading.js';
import { simulateSamples } from '../../../simulators/fast-forward.js';
import { TruckModel, type Fault } from '../../../simulators/truck-model.js';

const T0 = Date.UTC(2024, 5, 1, 8);
const SEC = 1000;
const MIN = 60 * SEC;

function run(seed: number, minutes: number, faults: Fault[] = []): Sample[] {
  return [...simulateSamples(new TruckModel({ seed, startTs: T0, faults }), T0, T0 + minutes * MIN)];
}

function of(samples: Sample[], sensor: SensorId, from = -Infinity, to = Infinity): Sample[] {
  return samples.filter((s) => s.sensor === sensor && s.ts >= from && s.ts < to);
}

/** Means of tumbling event-time windows, as the detector computes them. */
function windowMeans(samples: Sample[], sensor: SensorId, windowMs = 10 * SEC): number[] {
  const sums = new Map<number, { sum: number; n: number }>();
  for (const s of of(samples, sensor)) {
    const w = Math.floor(s.ts / windowMs);
    const acc = sums.get(w) ?? { sum: 0, n: 0 };
    acc.sum += s.value;
    acc.n++;
    sums.set(w, acc);
  }
  return [...sums.values()].map((a) => a.sum / a.n);
}

const values = (samples: Sample[]) => samples.map((s) => s.value);

describe('TruckModel determinism', () => {
  it('gives the same samples for the same seed and different ones for another seed', () => {
    const a = run(7, 5);
    assert.deepEqual(run(7, 5), a);
    assert.notDeepEqual(values(of(run(8, 5), 'engine_temp')), values(of(a, 'engine_temp')));
  });

  it('does not depend on how often or how irregularly it is advanced', () => {
    const once = new TruckModel({ seed: 3, startTs: T0 });
    const often = new TruckModel({ seed: 3, startTs: T0 });
    let t = T0;
    for (let i = 1; t < T0 + 10 * MIN; i++) {
      t += (i * 37) % 613; // irregular gaps, some shorter and some longer than a step
      often.advance(t);
    }
    assert.deepEqual(often.advance(t), once.advance(t));
    assert.deepEqual(often.reading('engine_temp'), once.reading('engine_temp'));
  });

  it('ignores a request to go back in time', () => {
    const m = new TruckModel({ seed: 3, startTs: T0 });
    const at = m.advance(T0 + MIN);
    assert.deepEqual(m.advance(T0 + 30 * SEC), at);
  });

  it('gives each truck its own route', () => {
    const start = (seed: number) => {
      const s = new TruckModel({ seed, startTs: T0 }).state();
      return [s.lat, s.lon];
    };
    assert.notDeepEqual(start(1), start(2));
  });
});

describe('TruckModel engine', () => {
  it('warms from ambient over a few minutes, then holds 85–98 °C for the next 10 minutes', () => {
    const samples = run(11, 20);
    const engine = of(samples, 'engine_temp');
    const ambient = new TruckModel({ seed: 11, startTs: T0 }).state().ambientTemp;
    assert.ok(Math.abs(engine[0]!.value - ambient) < 1, `cold start at ${engine[0]!.value}, ambient ${ambient}`);
    assert.ok(
      of(samples, 'engine_temp', T0, T0 + 2 * MIN).every((s) => s.value < 85),
      'warm within 2 minutes: too fast',
    );
    const warm = engine.find((s) => s.value >= 85);
    assert.ok(warm && warm.ts - T0 < 10 * MIN, 'not warm after 10 minutes');
    const held = of(samples, 'engine_temp', T0 + 10 * MIN, T0 + 20 * MIN);
    assert.ok(held.length >= 1000);
    // Over OBD-II in whole degrees; hills and stops move it a few degrees.
    for (const s of held) assert.ok(s.value >= 85 && s.value <= 98, `${s.value} °C at ${(s.ts - T0) / MIN} min`);
  });

  it("keeps a healthy truck's 10-second engine means below 100 °C over 30 minutes, for 10 seeds", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const means = windowMeans(run(seed, 30), 'engine_temp');
      assert.equal(means.length, 180);
      const max = Math.max(...means);
      assert.ok(max < 100, `seed ${seed}: a window mean of ${max}`);
    }
  });

  it('overheats past 105 °C within 60 s of onset and cools back after the fault ends', () => {
    const from = T0 + 15 * MIN;
    const to = from + 2 * MIN;
    const samples = run(5, 20, [{ kind: 'engine_overheat', from, to }]);
    assert.ok(
      of(samples, 'engine_temp', from - MIN, from).every((s) => s.value < 95),
      'hot before the fault',
    );
    const crossed = of(samples, 'engine_temp', from).find((s) => s.value > 105);
    assert.ok(crossed && crossed.ts - from <= 60 * SEC, 'did not pass 105 °C within 60 s');
    // Rising, not jumping: the detector should see it build over several windows.
    assert.ok(crossed.ts - from >= 15 * SEC, `passed 105 °C only ${(crossed.ts - from) / SEC} s after onset`);
    const peak = Math.max(...values(of(samples, 'engine_temp', from, to)));
    assert.ok(peak > 110 && peak < 130, `peak ${peak}`);
    const after = of(samples, 'engine_temp', to + 4 * MIN, to + 5 * MIN);
    assert.ok(
      after.every((s) => s.value < 100),
      `still hot four minutes after the fault: ${Math.max(...values(after))}`,
    );
  });
});

describe('TruckModel cargo', () => {
  const HOUR = 60 * MIN;
  const frozen = (at = T0) => [{ at, kind: 'load' as const, setPoint: -18, payloadKg: 20_000 }];

  it('holds a reefer at its set point within half a degree, and a dry box near the weather', () => {
    // Seed 3 carries a chilled load at 4 °C, seed 7 a dry one.
    const reefer = new TruckModel({ seed: 3, startTs: T0 });
    assert.equal(reefer.state().setPoint, 4);
    const dry = new TruckModel({ seed: 7, startTs: T0 });
    assert.equal(dry.state().setPoint, undefined);
    for (let t = T0; t < T0 + 2 * HOUR; t += MIN) {
      const r = reefer.advance(t);
      // Outside a defrost the air stays at the set point.
      assert.ok(Math.abs(r.containerTemp - 4) < 0.5 || reefer.state().containerTemp > 4, `reefer at ${r.containerTemp}`);
      const d = dry.advance(t);
      assert.ok(Math.abs(d.containerTemp - d.ambientTemp) < 4, `dry box at ${d.containerTemp}, air at ${d.ambientTemp}`);
    }
  });

  it('warms when the reefer fails: a few degrees at once in the air, then slowly with the load, and recovers after', () => {
    const from = T0 + HOUR;
    const to = from + 2 * HOUR;
    const failing = new TruckModel({ seed: 8, startTs: T0, plan: frozen(), faults: [{ kind: 'cargo_heating', from, to }] });
    const healthy = new TruckModel({ seed: 8, startTs: T0, plan: frozen() });
    const extra = (ts: number) => failing.advance(ts).containerTemp - healthy.advance(ts).containerTemp;
    assert.ok(Math.abs(extra(from)) < 0.3);
    const soon = extra(from + 15 * MIN);
    const later = extra(to);
    assert.ok(soon > 3, `+${soon} °C 15 minutes after the failure`);
    assert.ok(later > soon, `+${later} °C at the end: the warming goes on`);
    assert.ok(extra(to + HOUR) < 1, `still +${extra(to + HOUR)} °C an hour after the repair`);
  });

  it('lets the outside in through an open door, and pulls the air back once it shuts', () => {
    const plan = [
      ...frozen(),
      { at: T0 + HOUR, kind: 'door' as const, open: true },
      { at: T0 + HOUR + 10 * MIN, kind: 'door' as const, open: false },
    ];
    const m = new TruckModel({ seed: 8, startTs: T0, plan, stepMs: 1000 });
    const before = m.advance(T0 + HOUR).containerTemp;
    const open = m.advance(T0 + HOUR + 10 * MIN).containerTemp;
    assert.ok(open - before > 10, `the door raised the air by ${open - before} °C`);
    assert.ok(m.advance(T0 + HOUR + 30 * MIN).containerTemp - before < 1, 'not back 20 minutes after the door shut');
  });

  it('reports the set point while a reefer runs, nothing for a dry load', () => {
    const m = new TruckModel({ seed: 7, startTs: T0, plan: [{ at: T0 + MIN, kind: 'load', setPoint: -20, payloadKg: 20_000 }] });
    assert.equal(m.reading('cargo_setpoint'), undefined);
    m.advance(T0 + 2 * MIN);
    assert.deepEqual(m.reading('cargo_setpoint'), { value: -20 });
  });
});

describe('TruckModel plan', () => {
  it('silences the OBD-II sensors with the ignition off; the cargo probe and GPS go on', () => {
    const m = new TruckModel({ seed: 3, startTs: T0, plan: [{ at: T0 + MIN, kind: 'ignition', on: false }] });
    assert.ok(m.reading('engine_temp') && m.reading('engine_load') && m.reading('module_voltage'));
    m.advance(T0 + 2 * MIN);
    assert.equal(m.state().ignition, false);
    for (const s of ['engine_temp', 'speed', 'rpm', 'engine_load', 'ambient_temp', 'fuel_level', 'module_voltage'] as const)
      assert.equal(m.reading(s), undefined, s);
    assert.ok(m.reading('container_temp') && m.reading('gps'));
    assert.equal(m.state().speedKmh, 0);
  });

  it('loads the engine on climbs: more load uphill than down at the same speed', () => {
    const m = new TruckModel({ seed: 4, startTs: T0, stepMs: 1000 });
    const up: number[] = [];
    const down: number[] = [];
    for (let t = T0; t < T0 + 2 * 60 * MIN; t += 5 * SEC) {
      const s = m.advance(t);
      if (s.speedKmh > 60 && s.grade > 0.015) up.push(s.load);
      if (s.speedKmh > 60 && s.grade < -0.015) down.push(s.load);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(up.length > 20 && down.length > 20, 'the route has hills');
    assert.ok(mean(up) > mean(down) + 0.3, `load ${mean(up)} uphill, ${mean(down)} downhill`);
  });
});

describe('TruckModel drive', () => {
  const samples = run(21, 30);

  it('drives a cycle: stops, and cruises at 60–90 km/h', () => {
    const speed = values(of(samples, 'speed'));
    assert.ok(
      speed.every((v) => v >= 0 && v <= 100),
      `speed out of range: ${Math.min(...speed)}..${Math.max(...speed)}`,
    );
    assert.equal(speed[0], 0, 'a truck starts parked');
    const cruising = speed.filter((v) => v >= 55).length / speed.length;
    assert.ok(cruising > 0.5, `cruising only ${cruising} of the time`);
    const stopped = speed.filter((v) => v === 0).length;
    assert.ok(stopped < speed.length * 0.3, `${stopped} of ${speed.length} samples stopped`);
    const firstMove = speed.findIndex((v) => v > 0);
    assert.ok(firstMove > 0 && speed.indexOf(0, firstMove) > 0, 'never stopped again once under way');
    // A truck's acceleration is gentle: under 1 m/s² up, 1.5 down, between half-second
    // samples read in whole km/h (the rounding adds up to 0.56 m/s² either way).
    for (let i = 1; i < speed.length; i++) {
      const a = (speed[i]! - speed[i - 1]!) / 3.6 / 0.5;
      assert.ok(a > -2.1 && a < 1.6, `acceleration ${a} m/s²`);
    }
  });

  it('runs the engine at ~700 rpm idle and in proportion to speed when moving', () => {
    const rpm = of(samples, 'rpm');
    const speedAt = new Map(of(samples, 'speed').map((s) => [s.ts, s.value]));
    for (const r of rpm) {
      const v = speedAt.get(r.ts)!;
      if (v === 0) assert.ok(r.value > 650 && r.value < 750, `idle at ${r.value} rpm`);
      else assert.ok(r.value > 650 && r.value < 2100, `${r.value} rpm at ${v} km/h`);
      if (v > 50) assert.ok(r.value > 900, `${r.value} rpm at ${v} km/h`);
    }
  });

  it('follows its route: positions in range, heading in [0, 360), moving as fast as the speed says', () => {
    const gps = of(samples, 'gps');
    assert.equal(gps.length, 30 * 60);
    for (const g of gps) {
      const p = g.position!;
      assert.ok(p.lat > 40 && p.lat < 58 && p.lon > -5 && p.lon < 25, `(${p.lat}, ${p.lon}) is not in central Europe`);
      assert.ok(p.heading >= 0 && p.heading < 360, `heading ${p.heading}`);
      assert.equal(p.fix, '3d');
    }
    for (let i = 1; i < gps.length; i++) {
      const moved = metres(gps[i - 1]!.position!, gps[i]!.position!);
      const expected = ((gps[i - 1]!.value + gps[i]!.value) / 2 / 3.6) * 1;
      // Corners cut the chord short; it is never longer than the road driven, but for a
      // receiver's few metres of noise.
      assert.ok(moved <= expected + 25, `moved ${moved} m in 1 s at ~${expected} m/s`);
    }
    const headings = new Set(gps.map((g) => Math.round(g.position!.heading)));
    assert.ok(headings.size >= 3, 'a loop turns');
  });

  it('drives a custom route from its first waypoint', () => {
    const route = [
      { lat: 52.0, lon: 5.0 },
      { lat: 52.1, lon: 5.0 },
      { lat: 52.1, lon: 5.2 },
    ];
    const m = new TruckModel({ seed: 1, startTs: T0, route });
    const start = m.state();
    assert.deepEqual([start.lat, start.lon], [52.0, 5.0]);
    assert.ok(start.heading < 0.01 || start.heading > 359.99, `heading ${start.heading} on a northbound leg`);
    const later = m.advance(T0 + 3 * MIN);
    assert.ok(later.lat > 52.0 && later.lat <= 52.1 && later.lon === 5.0, 'left the first leg too early');
  });
});

describe('TruckModel sensor faults', () => {
  it('freezes a stuck sensor at its value from the onset, until the fault ends', () => {
    const from = T0 + 2 * MIN;
    const to = from + MIN;
    const samples = run(9, 5, [
      { kind: 'stuck_sensor', sensor: 'rpm', from, to },
      { kind: 'stuck_sensor', sensor: 'gps', from },
    ]);
    const stuck = of(samples, 'rpm', from, to);
    assert.equal(stuck.length, 120);
    assert.equal(new Set(values(stuck)).size, 1);
    assert.ok(new Set(values(of(samples, 'rpm', to))).size > 10, 'rpm still stuck after the fault');
    assert.ok(new Set(values(of(samples, 'rpm', 0, from))).size > 10);
    const gps = of(samples, 'gps', from);
    assert.ok(gps.every((g) => JSON.stringify(g.position) === JSON.stringify(gps[0]!.position) && g.value === gps[0]!.value));
    // Only the stuck sensors: the engine reads on (in whole degrees, so a few values a minute).
    assert.ok(new Set(values(of(samples, 'container_temp', from, to))).size > 2);
  });

  it('gives no samples from a dropped-out sensor, and resumes after', () => {
    const from = T0 + 2 * MIN;
    const to = from + MIN;
    const samples = run(9, 5, [{ kind: 'dropout', sensor: 'engine_temp', from, to }]);
    assert.equal(of(samples, 'engine_temp', from, to).length, 0);
    assert.equal(of(samples, 'engine_temp', to).length, 2 * 2 * 60);
    assert.equal(of(samples, 'engine_temp', 0, from).length, 2 * 2 * 60);
    assert.equal(of(samples, 'speed', from, to).length, 2 * 60);
  });

  it('applies faults injected at run time, and clearFaults ends them', () => {
    const m = new TruckModel({ seed: 2, startTs: T0 });
    m.advance(T0 + MIN);
    m.inject({ kind: 'dropout', sensor: 'container_temp', from: T0 + MIN });
    assert.equal(m.reading('container_temp'), undefined);
    m.inject({ kind: 'stuck_sensor', sensor: 'speed', from: T0 + MIN });
    const frozen = m.reading('speed');
    m.advance(T0 + 3 * MIN);
    assert.deepEqual(m.reading('speed'), frozen);
    m.clearFaults();
    assert.ok(m.reading('container_temp'));
    assert.equal(m.reading('speed')!.value, Math.round(m.state().speedKmh));
  });

  it('adds noise and gaps to a noisy sensor, and a growing offset to a drifting one', () => {
    const from = T0 + 10 * MIN;
    const faults: Fault[] = [
      { kind: 'noisy_sensor', sensor: 'container_temp', from },
      { kind: 'sensor_drift', sensor: 'engine_temp', from, magnitude: 6 },
    ];
    const noisy = run(3, 30, faults);
    const clean = run(3, 30);
    const spread = (xs: Sample[]) => Math.max(...values(xs)) - Math.min(...values(xs));
    assert.ok(spread(of(noisy, 'container_temp', from)) > 5 * Math.max(1, spread(of(clean, 'container_temp', from))));
    assert.ok(of(noisy, 'container_temp', from).length < 0.9 * of(clean, 'container_temp', from).length, 'no readings went missing');
    const drift = (ts: number) => of(noisy, 'engine_temp', ts, ts + MIN)[0]!.value - of(clean, 'engine_temp', ts, ts + MIN)[0]!.value;
    assert.ok(Math.abs(drift(from + 15 * MIN) - 1.5) <= 1, `drifted ${drift(from + 15 * MIN)} °C in 15 minutes at 6 °C/h`);
  });

  it('puts a jumping GPS kilometres away while the fault lasts', () => {
    const from = T0 + 5 * MIN;
    const m = new TruckModel({ seed: 3, startTs: T0, faults: [{ kind: 'gps_jump', from, to: from + 10 * SEC, magnitude: 12 }] });
    const before = m.advance(from - SEC) && m.reading('gps')!.position!;
    const during = m.advance(from + 5 * SEC) && m.reading('gps')!.position!;
    const after = m.advance(from + 20 * SEC) && m.reading('gps')!.position!;
    assert.ok(Math.abs(metres(before, during) - 12_000) < 500, `${metres(before, during)} m away`);
    assert.ok(metres(before, after) < 1000, 'still away after the fault');
  });

  it('refuses a malformed fault', () => {
    const m = new TruckModel({ seed: 2, startTs: T0 });
    assert.throws(() => m.inject({ kind: 'dropout', from: T0 }), RangeError);
    assert.throws(() => m.inject({ kind: 'engine_overheat', from: T0 + 10, to: T0 }), RangeError);
    assert.throws(() => m.inject({ kind: 'melted' as Fault['kind'], from: T0 }), RangeError);
  });
});

function metres(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180;
  const x = (b.lon - a.lon) * rad * Math.cos(((a.lat + b.lat) / 2) * rad);
  const y = (b.lat - a.lat) * rad;
  return Math.hypot(x, y) * 6_371_000;
}
