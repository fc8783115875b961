import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import type { SensorId } from '../../../shared/contract/reading.js';
import { RuleEngine } from '../../../shared/rules/engine.js';
import { EngineModel } from '../../../simulators/engine-model.js';
import { Random } from '../../../simulators/random.js';
import { B, cleared, Feed, kinds, MIN, raised, ruleSet, SEC, V } from './feed.js';

const HOUR = 60 * MIN;
/** Deterministic noise in [-a/2, a/2), so every run sees the same series. */
const noise = (i: number, a: number) => (((i * 7919) % 1000) / 1000 - 0.5) * a;

describe('deviation rule', () => {
  const DEV = { name: 'dev', type: 'deviation', sensor: 'container_temp', minStd: 0.1 };

  it('warms up, then raises on a jump far outside the normal spread, scoring it past its bound', () => {
    const f = new Feed(new RuleEngine(ruleSet([DEV])));
    f.series(V, 'container_temp', 0, 3600, (s) => 4 + noise(s, 0.2), {}, 10);
    assert.deepEqual(f.events, []);
    f.series(V, 'container_temp', 3600, 3700, (s) => 9 + noise(s, 0.2), {}, 10);
    const [alert] = raised(f.events);
    assert.equal(alert?.episodeStart, B + 3600 * SEC);
    const w = f.windowsOf(V, 'container_temp').find((x) => x.start === B + 3600 * SEC)!;
    assert.ok(w.scores['dev']! > 0.5 && w.scores['dev']! < 1, `score ${w.scores['dev']}`);
  });

  it('ends an episode that lasts levelShiftAfterWindows as a level shift, and raises nothing at the new level', () => {
    const f = new Feed(new RuleEngine(ruleSet([DEV])));
    // Two hours at 10, then a step to 20 that stays for six hours (a reefer set to a new load).
    f.series(V, 'container_temp', 0, 8 * 3600, (s) => (s < 7200 ? 10 : 20) + noise(s, 0.3), {}, 10);
    assert.deepEqual(
      f.events.map((e) => e.kind),
      ['raised', 'cleared'],
    );
    const [alert] = raised(f.events);
    const [end] = cleared(f.events);
    assert.equal(alert!.episodeStart, B + 7200 * SEC);
    assert.equal(end!.reason, 'level_shift');
    // The bound: levelShiftAfterWindows (60) windows of 10 s after the episode began.
    assert.ok(end!.at - alert!.windowEnd <= 60 * 10 * SEC, `closed ${(end!.at - alert!.windowEnd) / SEC} s after it was raised`);
  });

  it('raises nothing on a daily cycle once it has seen a day of it', () => {
    for (const direction of ['both', 'above'] as const) {
      const f = new Feed(new RuleEngine(ruleSet([{ ...DEV, minStd: 0.5, direction }])));
      // Four days of ±5 °C a day around 20 °C (a dry box in the weather), one reading a window.
      f.series(V, 'container_temp', 0, 4 * 86_400, (s) => 20 + 5 * Math.sin((2 * Math.PI * s) / 86_400) + noise(s, 0.3), {}, 10);
      assert.deepEqual(kinds(f.events), [], direction);
    }
  });

  it('does not learn a slow warming as normal: it alerts on it, where a fast-forgetting level would follow it', () => {
    const f = new Feed(new RuleEngine(ruleSet([{ ...DEV, direction: 'above', minStd: 0.3 }])));
    f.series(V, 'container_temp', 0, 2 * 3600, (s) => -18 + noise(s, 0.2), {}, 10);
    // A failed reefer: +3 °C an hour, far slower than a door opening.
    f.series(V, 'container_temp', 2 * 3600, 4 * 3600, (s) => -18 + (3 * (s - 7200)) / 3600 + noise(s, 0.2), {}, 10);
    const [alert] = raised(f.events);
    assert.ok(alert, 'the warming was learnt as normal');
    assert.ok(alert.windowEnd - (B + 2 * HOUR) < 45 * MIN, `raised ${(alert.windowEnd - B - 2 * HOUR) / MIN} min into the warming`);
  });

  it('follows a new normal announced by its settleOn sensor without alerting', () => {
    const f = new Feed(new RuleEngine(ruleSet([{ ...DEV, direction: 'above', settleOn: 'cargo_setpoint', settleWindows: 360 }])));
    const setPoint = (s: number) => (s < 3 * 3600 ? -18 : 4);
    for (let s = 0; s < 6 * 3600; s += 10) {
      if (s % 60 === 0) f.push(V, 'cargo_setpoint', B + s * SEC, setPoint(s));
      // The box warms toward the new set point over half an hour.
      const target = s < 3 * 3600 ? -18 : Math.min(4, -18 + (22 * (s - 3 * 3600)) / 1800);
      f.push(V, 'container_temp', B + s * SEC + 1, target + noise(s, 0.2));
    }
    assert.deepEqual(kinds(f.events), []);
  });

  it('scores alike whatever the unit: the same shape at a thousandth of the scale gives the same scores', () => {
    const scores = (scale: number) => {
      const f = new Feed(new RuleEngine(ruleSet([{ name: 'g', type: 'deviation', sensor: 'generic', minStd: 1e-9 }])));
      f.series(V, 'generic', 0, 6 * 3600, (s) => scale * (50 + noise(s, 2) + (s === 5 * 3600 ? 20 : 0)), {}, 10);
      return f.windowsOf(V, 'generic').map((w) => w.scores['g'] ?? 0);
    };
    const big = scores(1000);
    const small = scores(1);
    assert.equal(big.length, small.length);
    for (let i = 0; i < big.length; i++) assert.ok(Math.abs(big[i]! - small[i]!) < 1e-6, `window ${i}: ${big[i]} vs ${small[i]}`);
    assert.ok(Math.max(...big) > 0.5, 'the spike stands out');
    assert.ok(big.filter((x) => x > 0.5).length <= 2, 'and nothing else does');
  });
});

describe('context rule', () => {
  const CONTEXT = {
    name: 'hot-for-load',
    type: 'context',
    sensor: 'engine_temp',
    inputs: ['engine_load', 'speed', 'rpm', 'ambient_temp'],
    whenAbove: 80,
    minStd: 1,
    clearAfterWindows: 30,
  };
  const OVERHEAT = { name: 'overheat', type: 'threshold', sensor: 'engine_temp', above: 105 };

  /**
   * The simulator's engine, driven by hand: 90 minutes of rolling driving with stops (what
   * the rule learns from), then a four-minute climb at 45 km/h and 70 % load.
   */
  function drive(fanFailsOnClimb: boolean): Feed {
    const f = new Feed(new RuleEngine(ruleSet([CONTEXT, OVERHEAT])));
    const engine = new EngineModel(new Random(7), 20);
    const climbFrom = 5400;
    for (let s = 0; s < climbFrom + 240; s++) {
      const climbing = s >= climbFrom;
      const stopped = !climbing && s % 1200 > 1080;
      const load = climbing ? 0.7 : stopped ? 0.18 : 0.35 + 0.25 * Math.sin(s / 90);
      const speed = climbing ? 45 : stopped ? 0 : 75 + 8 * Math.sin(s / 200);
      engine.step(1, {
        running: true,
        load,
        speedKmh: speed,
        ambient: 20,
        overheat: false,
        clogged: false,
        fanFailed: climbing && fanFailsOnClimb,
      });
      const ts = B + s * SEC;
      f.push(V, 'engine_temp', ts, Math.round(engine.temp + noise(s, 0.3)));
      f.push(V, 'engine_load', ts, Math.round(load * 255) / 2.55);
      f.push(V, 'speed', ts, Math.round(speed));
      f.push(V, 'rpm', ts, Math.max(700, speed * 16));
      if (s % 5 === 0) f.push(V, 'ambient_temp', ts, 20);
    }
    return f;
  }

  it('raises a failing fan on a climb that the threshold alone misses', () => {
    const f = drive(true);
    const peak = Math.max(...f.windowsOf(V, 'engine_temp').map((w) => w.mean));
    assert.ok(peak < 105, `the climb peaked at ${peak} °C: the threshold would have seen it`);
    assert.deepEqual(
      raised(f.events).map((a) => a.rule),
      ['hot-for-load'],
    );
    const [alert] = raised(f.events);
    assert.ok(alert!.observed - alert!.expected > 3, `${alert!.observed} °C against ${alert!.expected} °C expected`);
  });

  it('raises nothing on the same climb with a working fan', () => {
    const f = drive(false);
    assert.ok(Math.max(...f.windowsOf(V, 'engine_temp').map((w) => w.mean)) > 94, 'a climb warms a healthy engine too');
    assert.deepEqual(raised(f.events), []);
  });

  it('judges only while the sensor is above whenAbove: a cold engine warming up is not "cold for its load"', () => {
    const f = new Feed(new RuleEngine(ruleSet([{ ...CONTEXT, direction: 'both', warmupWindows: 6 }])));
    for (let s = 0; s < 1800; s++) {
      const ts = B + s * SEC;
      f.push(V, 'engine_temp', ts, Math.min(90, 20 + s / 10));
      f.push(V, 'engine_load', ts, 40);
      f.push(V, 'speed', ts, 70);
      f.push(V, 'rpm', ts, 1200);
      f.push(V, 'ambient_temp', ts, 20);
    }
    const judged = f.windowsOf(V, 'engine_temp').filter((w) => 'hot-for-load' in w.scores);
    assert.ok(judged.length > 0 && judged.every((w) => w.mean >= 80), 'windows below 80 °C were judged');
  });
});

describe('sensor-health rules', () => {
  it('stuck: raises a reading repeated for forWindows windows and ends when it moves again', () => {
    const f = new Feed(new RuleEngine(ruleSet([{ name: 'frozen', type: 'stuck', sensor: 'engine_temp', forWindows: 30 }])));
    f.series(V, 'engine_temp', 0, 600, (s) => 90 + (s % 7 === 0 ? 1 : 0));
    f.series(V, 'engine_temp', 600, 1200, () => 91);
    f.series(V, 'engine_temp', 1200, 1300, (s) => 90 + (s % 3));
    assert.deepEqual(kinds(f.events), [`raised ${V}.frozen.${B + 600 * SEC}`, `cleared ${V}.frozen.${B + 600 * SEC}`]);
    const [alert] = raised(f.events);
    assert.equal(alert!.windowEnd, B + 900 * SEC);
    assert.equal(alert!.driver, false);
  });

  it('dropout: raises a sensor gone silent while the vehicle reports, not one silent with the ignition', () => {
    const rules = ruleSet([{ name: 'gone', type: 'dropout', sensor: 'engine_temp', whileReporting: 'rpm', afterWindows: 6 }]);
    const f = new Feed(new RuleEngine(rules));
    f.series(V, 'engine_temp', 0, 300, () => 90);
    f.series(V, 'rpm', 0, 900, () => 1200);
    f.series(V, 'container_temp', 0, 900, () => 4);
    const [alert] = raised(f.events);
    assert.ok(alert, 'no dropout raised');
    assert.equal(alert.windowEnd, B + 360 * SEC);
    const g = new Feed(new RuleEngine(rules));
    g.series(V, 'engine_temp', 0, 300, () => 90);
    g.series(V, 'rpm', 0, 300, () => 1200);
    g.series(V, 'container_temp', 0, 900, () => 4); // the reefer goes on; the engine is off
    assert.deepEqual(g.events, []);
  });

  it('jump: raises a value that steps further than its physics allows, and a GPS fix kilometres away', () => {
    const f = new Feed(
      new RuleEngine(
        ruleSet([
          { name: 'spike', type: 'jump', sensor: 'engine_temp', tolerance: 2, maxPerSecond: 1 },
          { name: 'teleport', type: 'jump', sensor: 'gps', tolerance: 50, maxPerSecond: 70 },
        ]),
      ),
    );
    // A 38 °C/min overheat is steep but real; a 30 °C spike for one reading is not.
    f.series(V, 'engine_temp', 0, 120, (s) => 90 + (s > 60 ? (s - 60) * 0.63 : 0));
    assert.deepEqual(f.events, []);
    f.push(V, 'engine_temp', B + 121 * SEC, 160);
    f.push(V, 'engine_temp', B + 122 * SEC, 128);
    f.push(V, 'engine_temp', B + 131 * SEC, 128);
    assert.deepEqual(
      raised(f.events).map((a) => [a.rule, a.observed]),
      [['spike', 32]],
    );
    // 25 m/s along a road, then one fix 20 km off.
    const at = (s: number, north: number) => ({ lat: 50 + (north + s * 25) / 111_320, lon: 10, heading: 0, fix: '3d' as const });
    const events = [];
    for (let s = 140; s < 200; s++) {
      const r = {
        vehicle: V,
        seq: 10_000 + s,
        ts: B + s * SEC,
        clock: 'synced' as const,
        sensor: 'gps' as SensorId,
        value: 90,
        quality: 'good' as const,
        position: at(s, s === 170 ? 20_000 : 0),
      };
      events.push(...f.engine.process(r, r.ts));
    }
    assert.deepEqual(
      raised(events).map((a) => [a.rule, a.episodeStart, Math.round(a.observed / 1000)]),
      [['teleport', B + 170 * SEC, 20]],
    );
  });

  it('mutes new alerts about the values of a sensor with an open health episode', () => {
    const f = new Feed(
      new RuleEngine(
        ruleSet([
          { name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 105 },
          { name: 'spike', type: 'jump', sensor: 'engine_temp', tolerance: 2, maxPerSecond: 1, clearAfterWindows: 30 },
        ]),
      ),
    );
    // A loose contact: readings flick between 90 and 130.
    f.series(V, 'engine_temp', 0, 300, (s) => (s % 2 === 0 ? 90 : 130));
    assert.deepEqual(
      raised(f.events).map((a) => a.rule),
      ['spike'],
    );
  });
});

describe('threshold rule', () => {
  it('ends an episode only back inside the bound by its hysteresis', () => {
    const f = new Feed(new RuleEngine(ruleSet([{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 105, hysteresis: 3 }])));
    // Hovering at the bound: 106, 104, 106, 104 ... then well below.
    f.series(V, 'engine_temp', 0, 200, (s) => (s < 40 ? 90 : s < 160 ? (Math.floor(s / 10) % 2 === 0 ? 106 : 104) : 95));
    assert.deepEqual(
      f.events.map((e) => e.kind),
      ['raised', 'cleared'],
    );
    assert.equal(cleared(f.events)[0]!.at, B + 170 * SEC);
  });

  it('compares with a reference sensor when it has one', () => {
    const f = new Feed(
      new RuleEngine(ruleSet([{ name: 'warm-load', type: 'threshold', sensor: 'container_temp', above: 5, reference: 'cargo_setpoint' }])),
    );
    for (let s = 0; s < 200; s++) {
      if (s % 10 === 0) f.push(V, 'cargo_setpoint', B + s * SEC, -18);
      f.push(V, 'container_temp', B + s * SEC, s < 100 ? -17 : -12);
    }
    const [alert] = raised(f.events);
    assert.deepEqual([alert?.observed, alert?.expected], [-12, -13]);
    assert.equal(alert?.message, 'container_temp mean -12 above -13 (5 over cargo_setpoint -18)');
  });

  it('raises a breach that must last forWindows windows, keyed to its first window, and scores it below the bound until then', () => {
    const f = new Feed(new RuleEngine(ruleSet([{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 105, forWindows: 3 }])));
    f.series(V, 'engine_temp', 0, 60, (s) => (s >= 20 && s < 40 ? 120 : 90)); // two windows: not enough
    f.series(V, 'engine_temp', 60, 120, (s) => (s >= 70 ? 120 : 90));
    const [alert] = raised(f.events);
    assert.equal(alert!.id, `${V}.hot.${B + 70 * SEC}`);
    assert.equal(alert!.windowStart, B + 90 * SEC);
    const score = (start: number) => f.windowsOf(V, 'engine_temp').find((w) => w.start === B + start * SEC)!.scores['hot']!;
    assert.ok(score(20) < 0.5 && score(30) < 0.5 && score(70) < score(80), 'a breach not yet long enough scores below the bound, rising');
    assert.ok(score(90) > 0.5);
  });
});
