import { describe, it } from 'node:test';
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
  it('warms from ambient over a few minutes, then holds 85–95 °C for the next 10 minutes', () => {
    const samples = run(11, 20);
    const engine = of(samples, 'engine_temp');
    const ambient = new TruckModel({ seed: 11, startTs: T0 }).state().ambientTemp;
    assert.ok(Math.abs(engine[0]!.value - ambient) < 1, `cold start at ${engine[0]!.value}, ambient ${ambient}`);
    assert.ok(of(samples, 'engine_temp', T0, T0 + 2 * MIN).every((s) => s.value < 85), 'warm within 2 minutes: too fast');
    const warm = engine.find((s) => s.value >= 85);
    assert.ok(warm && warm.ts - T0 < 10 * MIN, 'not warm after 10 minutes');
    const held = of(samples, 'engine_temp', T0 + 10 * MIN, T0 + 20 * MIN);
    assert.ok(held.length >= 1000);
    for (const s of held) assert.ok(s.value >= 85 && s.value <= 95, `${s.value} °C at ${(s.ts - T0) / MIN} min`);
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
    assert.ok(of(samples, 'engine_temp', from - MIN, from).every((s) => s.value < 95), 'hot before the fault');
    const crossed = of(samples, 'engine_temp', from).find((s) => s.value > 105);
    assert.ok(crossed && crossed.ts - from <= 60 * SEC, 'did not pass 105 °C within 60 s');
    // Rising, not jumping: the detector should see it build over several windows.
    assert.ok(crossed.ts - from >= 15 * SEC, `passed 105 °C only ${(crossed.ts - from) / SEC} s after onset`);
    const peak = Math.max(...values(of(samples, 'engine_temp', from, to)));
    assert.ok(peak > 110 && peak < 130, `peak ${peak}`);
    const after = of(samples, 'engine_temp', to + MIN, to + 3 * MIN);
    assert.ok(after.every((s) => s.value < 95), `still hot a minute after the fault: ${Math.max(...values(after))}`);
  });
});

describe('TruckModel cargo', () => {
  it('stays near ambient and changes slowly in a healthy truck', () => {
    for (const seed of [1, 2, 3]) {
      const samples = run(seed, 30);
      const ambient = new TruckModel({ seed, startTs: T0 }).state().ambientTemp;
      const means = windowMeans(samples, 'container_temp');
      for (const m of means) assert.ok(Math.abs(m - ambient) < 3, `seed ${seed}: cargo ${m}, ambient ${ambient}`);
      for (let i = 1; i < means.length; i++) {
        assert.ok(Math.abs(means[i]! - means[i - 1]!) < 0.15, `seed ${seed}: window mean jumped ${means[i - 1]} -> ${means[i]}`);
      }
    }
  });

  it('heats about 1 °C a minute under cargo_heating, capped at +15 °C, and cools after', () => {
    const from = T0 + 5 * MIN;
    const to = from + 25 * MIN;
    const heated = new TruckModel({ seed: 4, startTs: T0, faults: [{ kind: 'cargo_heating', from, to }] });
    const healthy = new TruckModel({ seed: 4, startTs: T0 });
    const extra = (ts: number) => heated.advance(ts).containerTemp - healthy.advance(ts).containerTemp;
    assert.equal(extra(from), 0);
    assert.ok(Math.abs(extra(from + 5 * MIN) - 5) < 0.1, `+${extra(from + 5 * MIN)} °C after 5 min`);
    assert.ok(Math.abs(extra(to) - 15) < 0.1, `+${extra(to)} °C at the end`);
    const later = extra(to + 20 * MIN);
    assert.ok(later > 0 && later < 12, `+${later} °C 20 minutes after the fault`);
  });
});

describe('TruckModel drive', () => {
  const samples = run(21, 30);

  it('drives a cycle: stops, and cruises at 60–90 km/h', () => {
    const speed = values(of(samples, 'speed'));
    assert.ok(speed.every((v) => v >= 0 && v <= 100), `speed out of range: ${Math.min(...speed)}..${Math.max(...speed)}`);
    assert.equal(speed[0], 0, 'a truck starts parked');
    const cruising = speed.filter((v) => v >= 55).length / speed.length;
    assert.ok(cruising > 0.5, `cruising only ${cruising} of the time`);
    const stopped = speed.filter((v) => v === 0).length;
    assert.ok(stopped < speed.length * 0.3, `${stopped} of ${speed.length} samples stopped`);
    const firstMove = speed.findIndex((v) => v > 0);
    assert.ok(firstMove > 0 && speed.indexOf(0, firstMove) > 0, 'never stopped again once under way');
    // A truck's acceleration is gentle: under 1 m/s² up, 1.5 down, between half-second samples.
    for (let i = 1; i < speed.length; i++) {
      const a = (speed[i]! - speed[i - 1]!) / 3.6 / 0.5;
      assert.ok(a > -1.5 && a < 1, `acceleration ${a} m/s²`);
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
      // Corners cut the chord short; it can never be longer than the road driven.
      assert.ok(moved <= expected + 1, `moved ${moved} m in 1 s at ~${expected} m/s`);
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
    const samples = run(9, 5, [{ kind: 'stuck_sensor', sensor: 'rpm', from, to }, { kind: 'stuck_sensor', sensor: 'gps', from }]);
    const stuck = of(samples, 'rpm', from, to);
    assert.equal(stuck.length, 120);
    assert.equal(new Set(values(stuck)).size, 1);
    assert.ok(new Set(values(of(samples, 'rpm', to))).size > 10, 'rpm still stuck after the fault');
    assert.ok(new Set(values(of(samples, 'rpm', 0, from))).size > 10);
    const gps = of(samples, 'gps', from);
    assert.ok(gps.every((g) => JSON.stringify(g.position) === JSON.stringify(gps[0]!.position) && g.value === gps[0]!.value));
    // Only the stuck sensors: the engine reads on.
    assert.ok(new Set(values(of(samples, 'engine_temp', from, to))).size > 10);
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
    assert.equal(m.reading('speed')!.value, m.state().speedKmh);
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
