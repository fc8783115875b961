import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Alert } from '../../../shared/contract/alert.js';
import type { Quality, Reading, SensorId } from '../../../shared/contract/reading.js';
import { RuleEngine, type AlertEvent, type WindowResult } from '../../../shared/rules/engine.js';
import { evaluate } from '../../../shared/rules/evaluate.js';
import { DEFAULT_RULES } from '../../../shared/rules/default-rules.js';
import { ruleSetSchema, type Rule, type RuleSet } from '../../../shared/rules/default-rules.js';
import { Baseline, WindowStats } from '../../../shared/rules/window.js';
import { simulateSamples } from '../../../simulators/fast-forward.js';
import { TruckModel, type Fault } from '../../../simulators/truck-model.js';

/** Window-aligned, so second s of the test data falls in window floor(s / 10). */
const B = Date.UTC(2024, 0, 1, 8);
const SEC = 1000;
const MIN = 60 * SEC;
const V = 'truck-1';
/** Arrival lags event time a little, so closedAt is distinguishable from the window end. */
const LAG = 7;

function ruleSet(rules: unknown[], over: Record<string, unknown> = {}): RuleSet {
  return ruleSetSchema.parse({ windowMs: 10_000, freshnessMs: 60_000, rules, ...over });
}

const HOT = { name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' };
const RISE = { name: 'rise', type: 'rate', sensor: 'engine_temp', maxPerMinute: 30 };
const DEV = { name: 'dev', type: 'deviation', sensor: 'container_temp', k: 3, minStd: 0.5, warmupWindows: 4, halfLifeWindows: 30 };

interface PushOptions {
  quality?: Quality;
  headTs?: number;
}

/** Feeds an engine with per-vehicle seqs and records every event and closed window. */
class Feed {
  readonly events: AlertEvent[] = [];
  readonly windows: WindowResult[] = [];
  private readonly seqs = new Map<string, number>();

  constructor(readonly engine: RuleEngine) {
    engine.onWindow = (w) => this.windows.push(w);
  }

  push(vehicle: string, sensor: SensorId, ts: number, value: number, opts: PushOptions = {}): AlertEvent[] {
    const seq = (this.seqs.get(vehicle) ?? 0) + 1;
    this.seqs.set(vehicle, seq);
    const r: Reading = { vehicle, seq, ts, clock: 'synced', sensor, value, quality: opts.quality ?? 'good' };
    const out = this.engine.process(r, ts + LAG, opts.headTs);
    this.events.push(...out);
    return out;
  }

  /** One reading a second over seconds [fromS, toS) after B. */
  series(vehicle: string, sensor: SensorId, fromS: number, toS: number, value: (s: number) => number, opts: PushOptions = {}): AlertEvent[] {
    const out: AlertEvent[] = [];
    for (let s = fromS; s < toS; s++) out.push(...this.push(vehicle, sensor, B + s * SEC, value(s), opts));
    return out;
  }

  windowsOf(vehicle: string, sensor: SensorId): WindowResult[] {
    return this.windows.filter((w) => w.vehicle === vehicle && w.sensor === sensor);
  }
}

const kinds = (events: AlertEvent[]) => events.map((e) => (e.kind === 'cleared' ? `cleared ${e.alertId}` : `${e.kind} ${e.alert.id}`));
const raised = (events: AlertEvent[]) => events.flatMap((e) => (e.kind === 'raised' ? [e.alert] : []));

/** raisedAt is wall-clock time; everything else must be reproducible. */
function normalize(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x), (k, v) => (k === 'raisedAt' ? 0 : v));
}

describe('RuleEngine threshold episodes', () => {
  it('raises once per episode, keyed by the window start, and clears after an in-range window', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    assert.deepEqual(f.series(V, 'engine_temp', 0, 60, () => 90), []);
    assert.deepEqual(f.series(V, 'engine_temp', 60, 70, () => 120), []);
    // The window [60 s, 70 s) closes on the first reading at or after 70 s.
    const closing = f.push(V, 'engine_temp', B + 70 * SEC, 120);
    assert.equal(closing.length, 1);
    const ev = closing[0]!;
    assert.equal(ev.kind, 'raised');
    const alert = (ev as { alert: Alert }).alert;
    assert.deepEqual({ ...alert, raisedAt: 0 }, {
      id: `${V}.hot.${B + 60 * SEC}`,
      vehicle: V,
      rule: 'hot',
      severity: 'critical',
      sensor: 'engine_temp',
      episodeStart: B + 60 * SEC,
      windowStart: B + 60 * SEC,
      windowEnd: B + 70 * SEC,
      observed: 120,
      expected: 105,
      message: 'engine_temp mean 120 above 105',
      live: true,
      raisedAt: 0,
      closedAt: B + 70 * SEC + LAG,
    });
    assert.equal(typeof alert.raisedAt, 'number');

    // The breach continues for two more windows: still one alert.
    assert.deepEqual(f.series(V, 'engine_temp', 71, 90, () => 120), []);
    assert.deepEqual(f.series(V, 'engine_temp', 90, 100, () => 90), []);
    assert.deepEqual(f.engine.activeAlerts().map((a) => a.id), [alert.id]);
    const clearing = f.push(V, 'engine_temp', B + 100 * SEC, 90);
    assert.deepEqual(clearing, [{ kind: 'cleared', alertId: alert.id, vehicle: V, rule: 'hot', at: B + 100 * SEC }]);
    assert.deepEqual(f.engine.activeAlerts(), []);

    // A later breach is a new episode with a new id.
    f.series(V, 'engine_temp', 101, 150, () => 90);
    f.series(V, 'engine_temp', 150, 160, () => 130);
    f.series(V, 'engine_temp', 160, 180, () => 90);
    assert.deepEqual(kinds(f.events), [
      `raised ${V}.hot.${B + 60 * SEC}`,
      `cleared ${V}.hot.${B + 60 * SEC}`,
      `raised ${V}.hot.${B + 150 * SEC}`,
      `cleared ${V}.hot.${B + 150 * SEC}`,
    ]);
  });

  it('judges the window mean, not single readings', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    // One spike of 200 in ten readings of 90 gives a mean of 101: in range.
    f.series(V, 'engine_temp', 0, 30, (s) => (s === 14 ? 200 : 90));
    assert.deepEqual(f.events, []);
    assert.equal(f.windowsOf(V, 'engine_temp')[1]!.mean, 101);
  });

  it('needs clearAfterWindows consecutive in-range windows to clear, and a breach resets the count', () => {
    const f = new Feed(new RuleEngine(ruleSet([{ ...HOT, clearAfterWindows: 2 }])));
    const profile = (s: number) => (s < 60 ? 90 : s < 80 ? 120 : s < 90 ? 90 : s < 100 ? 120 : 90);
    f.series(V, 'engine_temp', 0, 140, profile);
    assert.deepEqual(kinds(f.events), [`raised ${V}.hot.${B + 60 * SEC}`, `cleared ${V}.hot.${B + 60 * SEC}`]);
    const cleared = f.events[1] as Extract<AlertEvent, { kind: 'cleared' }>;
    assert.equal(cleared.at, B + 120 * SEC);
  });

  it('evaluates "below" bounds and rules with both bounds', () => {
    const f = new Feed(new RuleEngine(ruleSet([
      { name: 'cold-box', type: 'threshold', sensor: 'container_temp', above: 8, below: 2 },
    ])));
    f.series(V, 'container_temp', 0, 10, () => 5);
    f.series(V, 'container_temp', 10, 20, () => 1);
    f.series(V, 'container_temp', 20, 30, () => 5);
    f.series(V, 'container_temp', 30, 40, () => 9);
    f.series(V, 'container_temp', 40, 50, () => 5);
    const alerts = raised(f.events);
    assert.deepEqual(alerts.map((a) => [a.episodeStart - B, a.observed, a.expected, a.message]), [
      [10 * SEC, 1, 2, 'container_temp mean 1 below 2'],
      [30 * SEC, 9, 8, 'container_temp mean 9 above 8'],
    ]);
    assert.equal(alerts[0]!.severity, 'warning');
  });
});

describe('RuleEngine event time', () => {
  it('closes windows only on the vehicle\'s own event time', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 50, 70, (s) => (s < 60 ? 90 : 120));
    // Another truck far ahead in time must not close this truck's windows.
    assert.deepEqual(f.series('truck-2', 'engine_temp', 500, 530, () => 90), []);
    assert.equal(f.windowsOf(V, 'engine_temp').length, 1);
    assert.deepEqual(f.engine.activeAlerts(), []);
    const out = f.push(V, 'engine_temp', B + 70 * SEC, 90);
    assert.deepEqual(kinds(out), [`raised ${V}.hot.${B + 60 * SEC}`]);
    assert.equal(f.engine.vehicleCount, 2);
  });

  it('lets a reading of any sensor of the vehicle advance its watermark', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 60, 70, () => 120);
    assert.deepEqual(kinds(f.push(V, 'speed', B + 75 * SEC, 80)), [`raised ${V}.hot.${B + 60 * SEC}`]);
  });

  it('counts late readings and never re-opens or re-evaluates their window', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 50, 76, () => 90);
    const closed = f.windows.length;
    // Its window [60 s, 70 s) closed at 70 s; a breach there now must change nothing.
    for (let i = 0; i < 10; i++) assert.deepEqual(f.push(V, 'engine_temp', B + 60 * SEC + i * 1000, 500), []);
    // So is a reading exactly at the end of the last closed window's range.
    f.push(V, 'engine_temp', B + 69_999, 500);
    assert.equal(f.engine.counters.late, 11);
    assert.equal(f.windows.length, closed);
    f.series(V, 'engine_temp', 76, 120, () => 90);
    f.engine.flush(B + 200 * SEC);
    assert.deepEqual(f.events, []);
    const starts = f.windowsOf(V, 'engine_temp').map((w) => w.start);
    assert.equal(new Set(starts).size, starts.length, 'a window was evaluated twice');
    // Late readings did not leak into the open window either.
    assert.deepEqual(f.windowsOf(V, 'engine_temp').map((w) => w.mean), starts.map(() => 90));
    assert.equal(f.engine.counters.readings, 26 + 11 + 44);
  });

  it('treats a window as closed from the instant its end is reached', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 60, 71, () => 90); // the reading at 70 s closes [60 s, 70 s)
    assert.deepEqual(f.push(V, 'engine_temp', B + 65 * SEC, 500), []);
    assert.equal(f.engine.counters.late, 1);
    f.series(V, 'engine_temp', 71, 81, () => 90);
    assert.deepEqual(f.events, []);
    // The open window [70 s, 80 s) kept its first reading: the late one did not displace it.
    assert.deepEqual(f.windowsOf(V, 'engine_temp').map((w) => [w.start - B, w.count, w.mean]), [[60 * SEC, 10, 90], [70 * SEC, 10, 90]]);
  });

  it('accepts an out-of-order reading whose window is still open', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 70, 78, () => 90);
    f.push(V, 'engine_temp', B + 72_500, 100);
    f.push(V, 'engine_temp', B + 80 * SEC, 90);
    assert.equal(f.engine.counters.late, 0);
    const w = f.windowsOf(V, 'engine_temp')[0]!;
    assert.equal(w.count, 9);
    assert.equal(w.start, B + 70 * SEC);
    assert.equal(w.end, B + 80 * SEC);
  });

  it('leaves bad-quality readings out of the windows', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    for (let s = 0; s < 40; s++) {
      f.push(V, 'engine_temp', B + s * SEC, 90);
      f.push(V, 'engine_temp', B + s * SEC + 500, 240, { quality: 'bad' });
    }
    assert.deepEqual(f.events, []);
    for (const w of f.windowsOf(V, 'engine_temp')) assert.deepEqual([w.count, w.mean], [10, 90]);
    // Uncertain readings are still data.
    f.series(V, 'engine_temp', 40, 60, () => 120, { quality: 'uncertain' });
    assert.equal(raised(f.events).length, 1);
  });

  it('flush closes every open window', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 0, 5, () => 120);
    f.series('truck-2', 'engine_temp', 0, 5, () => 90);
    assert.deepEqual(f.windows, []);
    const out = f.engine.flush(B + MIN);
    assert.deepEqual(kinds(out), [`raised ${V}.hot.${B}`]);
    assert.equal(f.windows.length, 2);
    assert.equal(f.engine.counters.windows, 2);
  });
});

describe('RuleEngine live and historical alerts', () => {
  it('marks an episode from a backlog historical and promotes it once the breach reaches live windows', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    // The agent already holds data up to 300 s and is catching up from 0 s.
    const headTs = B + 300 * SEC;
    f.series(V, 'engine_temp', 0, 60, () => 90, { headTs });
    f.series(V, 'engine_temp', 60, 300, () => 120, { headTs });
    assert.deepEqual(f.events.map((e) => e.kind), ['raised', 'promoted']);
    const [first, promoted] = f.events as [Extract<AlertEvent, { kind: 'raised' }>, Extract<AlertEvent, { kind: 'promoted' }>];
    assert.equal(first.alert.live, false, 'window ending 230 s before the agent\'s newest reading is history');
    assert.equal(first.alert.windowEnd, B + 70 * SEC);
    // 240 s is the first window end within freshnessMs (60 s) of 300 s.
    assert.equal(promoted.alert.live, true);
    assert.equal(promoted.alert.id, first.alert.id);
    assert.equal(promoted.alert.episodeStart, B + 60 * SEC);
    assert.deepEqual([promoted.alert.windowStart, promoted.alert.windowEnd], [B + 230 * SEC, B + 240 * SEC]);
    assert.equal(promoted.alert.closedAt, B + 240 * SEC + LAG);
    assert.equal(f.engine.activeAlerts()[0]!.live, true);
  });

  it('raises live when there is no backlog, and never promotes', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 0, 300, (s) => (s < 60 ? 90 : 120));
    assert.deepEqual(f.events.map((e) => e.kind), ['raised']);
    assert.equal(raised(f.events)[0]!.live, true);
  });

  it('keeps a historical episode that ended in the past historical: cleared, never promoted', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 0, 300, (s) => (s >= 60 && s < 90 ? 120 : 90), { headTs: B + 600 * SEC });
    assert.deepEqual(f.events.map((e) => e.kind), ['raised', 'cleared']);
    assert.equal(raised(f.events)[0]!.live, false);
  });

  it('counts a window ending exactly freshnessMs behind the newest reading as live', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 60, 70, () => 120, { headTs: B + 130 * SEC });
    f.push(V, 'engine_temp', B + 70 * SEC, 90, { headTs: B + 130 * SEC });
    assert.equal(raised(f.events)[0]!.live, true);
    const g = new Feed(new RuleEngine(ruleSet([HOT])));
    g.series(V, 'engine_temp', 60, 70, () => 120, { headTs: B + 130 * SEC + 1 });
    g.push(V, 'engine_temp', B + 70 * SEC, 90, { headTs: B + 130 * SEC + 1 });
    assert.equal(raised(g.events)[0]!.live, false);
  });
});

describe('RuleEngine rate rule', () => {
  it('fires on a fast rise, not on a flat or slow one', () => {
    const f = new Feed(new RuleEngine(ruleSet([RISE])));
    f.series(V, 'engine_temp', 0, 30, () => 90);
    f.series(V, 'engine_temp', 30, 40, (s) => 90 + 0.4 * (s - 30)); // 24 °C/min
    assert.deepEqual(f.events, []);
    f.series(V, 'engine_temp', 40, 51, (s) => 94 + (s - 40)); // 60 °C/min
    const [alert] = raised(f.events);
    assert.ok(alert, 'no alert for 60 °C/min');
    assert.equal(alert.id, `${V}.rise.${B + 40 * SEC}`);
    assert.ok(Math.abs(alert.observed - 60) < 1e-6, `slope ${alert.observed}`);
    assert.equal(alert.expected, 30);
    assert.equal(alert.message, 'engine_temp rising 60/min, limit 30/min');
    const scores = f.windowsOf(V, 'engine_temp').map((w) => w.scores['rise']);
    assert.deepEqual(scores.slice(0, 3), [0, 0, 0]);
    assert.ok(Math.abs(scores[3]! - 0.4) < 1e-9);
    assert.equal(scores[4], 1);
  });

  it('gives no verdict on a window with fewer than minReadings readings', () => {
    const f = new Feed(new RuleEngine(ruleSet([RISE])));
    f.push(V, 'engine_temp', B, 20);
    f.push(V, 'engine_temp', B + 9 * SEC, 200);
    f.push(V, 'engine_temp', B + 10 * SEC, 200);
    assert.deepEqual(f.events, []);
    assert.deepEqual(f.windows[0]!.scores, {});
  });
});

describe('RuleEngine deviation rule', () => {
  const cargo = (base: number) => (s: number) => base + 0.05 * ((s * 7) % 5) - 0.1;

  it('warms up for warmupWindows, then fires on a jump of more than k std', () => {
    const f = new Feed(new RuleEngine(ruleSet([DEV])));
    f.series(V, 'container_temp', 0, 100, cargo(4));
    const ws = f.windowsOf(V, 'container_temp');
    assert.equal(ws.length, 9);
    assert.deepEqual(ws.slice(0, 4).map((w) => 'dev' in w.scores), [false, false, false, false]);
    assert.ok(ws.slice(4).every((w) => w.scores['dev']! < 0.5), 'steady cargo is normal');
    assert.deepEqual(f.events, []);

    f.series(V, 'container_temp', 100, 111, cargo(7));
    const [alert] = raised(f.events);
    assert.ok(alert);
    assert.equal(alert.id, `${V}.dev.${B + 100 * SEC}`);
    assert.ok(Math.abs(alert.expected - 4) < 0.01, `baseline ${alert.expected}`);
    assert.ok(Math.abs(alert.observed - 7) < 0.01);
    assert.match(alert.message, /^container_temp mean 7 is 6 std from this vehicle's normal 4 \(limit 3\)$/);
  });

  it('does not fire on a jump below k std', () => {
    const f = new Feed(new RuleEngine(ruleSet([DEV])));
    f.series(V, 'container_temp', 0, 100, cargo(4));
    f.series(V, 'container_temp', 100, 200, cargo(5.4)); // 2.8 std with the 0.5 floor
    assert.deepEqual(f.events, []);
  });

  it('does not learn from breaching windows', () => {
    const f = new Feed(new RuleEngine(ruleSet([DEV])));
    f.series(V, 'container_temp', 0, 100, cargo(4));
    const before = JSON.parse(f.engine.snapshot())[0][1].baselines.dev;
    // 3.2 std: a breach whose score (0.53) is not clamped, so a moving baseline would show.
    f.series(V, 'container_temp', 100, 400, () => 5.6);
    const after = JSON.parse(f.engine.snapshot())[0][1].baselines.dev;
    // One window (90 s) closed at 100 s, still in range; none after that.
    assert.equal(after.windows, before.windows + 1);
    const breaching = f.windowsOf(V, 'container_temp').filter((w) => w.start >= B + 100 * SEC);
    assert.equal(breaching.length, 29);
    assert.ok(breaching.every((w) => w.scores['dev'] === breaching[0]!.scores['dev']), 'the baseline moved during a breach');
    assert.deepEqual(f.events.map((e) => e.kind), ['raised']);
    // Back to normal: clears; and the same jump again is still anomalous.
    f.series(V, 'container_temp', 400, 420, cargo(4));
    f.series(V, 'container_temp', 420, 440, () => 5.6);
    assert.deepEqual(kinds(f.events), [`raised ${V}.dev.${B + 100 * SEC}`, `cleared ${V}.dev.${B + 100 * SEC}`, `raised ${V}.dev.${B + 420 * SEC}`]);
  });

  it('keeps a separate baseline per vehicle', () => {
    const f = new Feed(new RuleEngine(ruleSet([DEV])));
    for (let s = 0; s < 100; s++) {
      f.push('cool', 'container_temp', B + s * SEC, cargo(4)(s));
      f.push('warm', 'container_temp', B + s * SEC, cargo(20)(s));
    }
    for (let s = 100; s < 111; s++) {
      f.push('cool', 'container_temp', B + s * SEC, 20);
      f.push('warm', 'container_temp', B + s * SEC, 20);
    }
    assert.deepEqual(raised(f.events).map((a) => a.vehicle), ['cool']);
    for (let s = 111; s < 121; s++) f.push('warm', 'container_temp', B + s * SEC, 4);
    f.push('warm', 'container_temp', B + 121 * SEC, 4);
    assert.deepEqual(raised(f.events).map((a) => a.vehicle), ['cool', 'warm']);
  });
});

describe('RuleEngine snapshot and restore', () => {
  /** Two trucks, all rule types, episodes and warm-up spanning the cut. */
  function script(): [string, SensorId, number, number][] {
    const out: [string, SensorId, number, number][] = [];
    for (let s = 0; s < 400; s++) {
      const ts = B + s * SEC;
      // truck-1 engine: rise at 40-50 s, overheat 150-260 s, with the window [200 s, 210 s)
      // breaching only if both of its halves (before and after the cut) count.
      let engine = 90;
      if (s >= 40 && s < 50) engine = 90 + (s - 40) * 2;
      else if (s >= 150 && s < 200) engine = 120;
      else if (s >= 200 && s < 206) engine = 120;
      else if (s >= 206 && s < 210) engine = 85;
      else if (s >= 210 && s < 260) engine = 120;
      out.push([V, 'engine_temp', ts, engine]);
      // truck-2 cargo: steady, then a jump after the cut.
      out.push(['truck-2', 'container_temp', ts + 300, s < 300 ? 4 + ((s * 3) % 5) * 0.02 : 9]);
      if (s % 3 === 0) out.push(['truck-2', 'speed', ts + 500, 60]);
    }
    return out;
  }
  const CUT = B + 205_500;

  it('continues after restore() exactly as without the restart', () => {
    const rs = ruleSet([HOT, RISE, DEV]);
    const seqs = new Map<string, number>();
    const feed = (e: RuleEngine, rows: [string, SensorId, number, number][]) =>
      rows.flatMap(([vehicle, sensor, ts, value]) => {
        const seq = (seqs.get(`${vehicle}`) ?? 0) + 1;
        seqs.set(vehicle, seq);
        return e.process({ vehicle, seq, ts, clock: 'synced', sensor, value, quality: 'good' }, ts + LAG);
      });
    const rows = script();
    const head = rows.filter((r) => r[2] < CUT);
    const tail = rows.filter((r) => r[2] >= CUT);

    const original = new RuleEngine(rs);
    const headEvents = feed(original, head);
    assert.ok(headEvents.some((e) => e.kind === 'raised' && e.alert.rule === 'hot'), 'the cut must fall inside an episode');
    const snap = original.snapshot();
    const seqsAtCut = new Map(seqs);

    const restored = new RuleEngine(rs);
    restored.restore(snap);
    assert.equal(restored.seen(V, seqsAtCut.get(V)!), true);
    assert.equal(restored.seen(V, seqsAtCut.get(V)! + 1), false);
    assert.deepEqual(normalize(restored.activeAlerts()), normalize(original.activeAlerts()));

    const expected = feed(original, tail);
    seqs.clear();
    for (const [k, v] of seqsAtCut) seqs.set(k, v);
    const actual = feed(restored, tail);

    assert.deepEqual(normalize(actual), normalize(expected));
    assert.deepEqual(normalize(JSON.parse(restored.snapshot())), normalize(JSON.parse(original.snapshot())));
    // The tail must exercise every kind of continuation, or this proves little.
    assert.deepEqual(
      [...new Set(expected.map((e) => (e.kind === 'cleared' ? `cleared ${e.rule}` : `${e.kind} ${e.alert.rule}`)))].sort(),
      ['cleared hot', 'raised dev'],
    );
    assert.ok(
      expected.length === 2 && raised(expected)[0]!.vehicle === 'truck-2',
      'the overheat must continue across the cut without a second alert',
    );
    const hotCleared = expected.find((e) => e.kind === 'cleared')!;
    assert.equal((hotCleared as { alertId: string }).alertId, `${V}.hot.${B + 150 * SEC}`);
  });

  it('restores into an engine that already had state, replacing it', () => {
    const rs = ruleSet([HOT]);
    const a = new RuleEngine(rs);
    a.process({ vehicle: 'a', seq: 3, ts: B, clock: 'synced', sensor: 'engine_temp', value: 90, quality: 'good' }, B);
    const b = new RuleEngine(rs);
    b.process({ vehicle: 'b', seq: 9, ts: B, clock: 'synced', sensor: 'engine_temp', value: 90, quality: 'good' }, B);
    b.restore(a.snapshot());
    assert.equal(b.vehicleCount, 1);
    assert.equal(b.seen('a', 3), true);
    assert.equal(b.seen('b', 1), false);
  });
});

describe('RuleEngine.seen', () => {
  it('reports the seqs fed per vehicle', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    assert.equal(f.engine.seen(V, 1), false);
    f.series(V, 'engine_temp', 0, 5, () => 90);
    f.push(V, 'speed', B + 6 * SEC, 50); // a sensor without rules still counts as fed
    f.push(V, 'engine_temp', B + 7 * SEC, 90, { quality: 'bad' });
    for (let seq = 1; seq <= 7; seq++) assert.equal(f.engine.seen(V, seq), true, `seq ${seq}`);
    assert.equal(f.engine.seen(V, 8), false);
    assert.equal(f.engine.seen('truck-2', 1), false);
  });
});

describe('evaluate and window statistics', () => {
  const windowOf = (values: number[], stepMs = 1000) => {
    const w = new WindowStats(B, B + 10_000);
    values.forEach((v, i) => w.add(B + i * stepMs, v));
    return w;
  };
  const [hot, rise, dev] = ruleSet([HOT, RISE, DEV]).rules as [Rule, Rule, Rule];

  it('computes mean and least-squares slope per minute', () => {
    const w = windowOf([10, 12, 14, 16, 18]);
    assert.equal(w.mean, 14);
    assert.ok(Math.abs(w.slopePerMinute()! - 120) < 1e-9);
    assert.equal(windowOf([5]).slopePerMinute(), undefined);
    assert.equal(windowOf([5, 6, 7], 0).slopePerMinute(), undefined, 'all at one instant');
  });

  it('scores a threshold 0.5 at the bound and 1 at scoreSpan past it', () => {
    assert.deepEqual(
      [95, 100, 105, 110, 115, 200].map((m) => evaluate(hot, windowOf([m]), undefined)!.score),
      [0, 0.25, 0.5, 0.75, 1, 1],
    );
    assert.equal(evaluate(hot, windowOf([105]), undefined)!.breach, false, 'at the bound is not past it');
  });

  it('scores a rate by slope / (2 * limit)', () => {
    const v = evaluate(rise, windowOf([0, 0.25, 0.5]), undefined)!; // 15 °C/min
    assert.ok(Math.abs(v.score - 0.25) < 1e-9);
    assert.equal(v.breach, false);
    const fall = evaluate(rise, windowOf([100, 90, 80]), undefined)!; // -600 °C/min
    assert.deepEqual([fall.breach, fall.score], [false, 0], 'a fall is not a rise');
  });

  it('averages the warm-up windows evenly, then gives no verdict until warm', () => {
    const b = new Baseline();
    assert.equal(evaluate(dev, windowOf([1]), b), undefined);
    assert.equal(evaluate(dev, windowOf([2]), b), undefined);
    assert.equal(evaluate(dev, windowOf([3]), b), undefined);
    assert.equal(evaluate(dev, windowOf([2]), b), undefined);
    assert.equal(b.windows, 4);
    assert.equal(b.mean, 2);
    assert.ok(Math.abs(b.variance - 0.5) < 1e-9, `variance ${b.variance}`);
    const v = evaluate(dev, windowOf([2.5]), b)!;
    assert.ok(v !== undefined && !v.breach);
    assert.equal(b.windows, 5);
  });

  it('forgets with the configured half-life once warm', () => {
    const b = new Baseline();
    for (let i = 0; i < 4; i++) b.update(0, 30, 4);
    for (let i = 0; i < 30; i++) b.update(10, 30, 4);
    // After one half-life of windows at 10 the mean is half way from 0.
    assert.ok(Math.abs(b.mean - 5) < 1e-9, `mean ${b.mean}`);
  });
});

describe('ruleSetSchema', () => {
  const parse = (doc: unknown) => {
    const r = ruleSetSchema.safeParse(doc);
    assert.equal(r.success, false, 'expected the rule set to be refused');
    return r.error!.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  };

  it('fills defaults', () => {
    const rs = ruleSetSchema.parse({ rules: [{ name: 'r', type: 'deviation', sensor: 'rpm', k: 2 }] });
    assert.deepEqual(rs, {
      windowMs: 10_000,
      freshnessMs: 60_000,
      rules: [{ name: 'r', type: 'deviation', sensor: 'rpm', k: 2, severity: 'warning', clearAfterWindows: 1, minStd: 0.5, warmupWindows: 6, halfLifeWindows: 30 }],
    });
  });

  it('rejects duplicate names, naming the rule', () => {
    const issues = parse({ rules: [HOT, RISE, { ...HOT, above: 110 }] });
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, 'rules.2.name');
    assert.match(issues[0]!.message, /"hot"/);
    assert.match(issues[0]!.message, /unique/);
  });

  it('rejects a threshold without above or below', () => {
    const issues = parse({ rules: [RISE, { name: 'x', type: 'threshold', sensor: 'speed' }] });
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, 'rules.1');
    assert.match(issues[0]!.message, /"above" or "below"/);
  });

  it('rejects unknown fields, naming them', () => {
    const inRule = parse({ rules: [{ ...HOT, abvoe: 3 }] });
    assert.equal(inRule[0]!.path, 'rules.0');
    assert.match(inRule[0]!.message, /abvoe/);
    const top = parse({ rules: [HOT], windowSize: 5000 });
    assert.equal(top[0]!.path, '');
    assert.match(top[0]!.message, /windowSize/);
  });

  it('rejects bad values, naming the field', () => {
    assert.equal(parse({ rules: [{ ...HOT, sensor: 'oil' }] })[0]!.path, 'rules.0.sensor');
    assert.equal(parse({ rules: [{ ...HOT, name: 'Hot Engine' }] })[0]!.path, 'rules.0.name');
    assert.equal(parse({ rules: [{ ...HOT, type: 'magic' }] })[0]!.path, 'rules.0.type');
    assert.equal(parse({ rules: [{ ...DEV, k: 0 }] })[0]!.path, 'rules.0.k');
    assert.equal(parse({ rules: [RISE], windowMs: 50 })[0]!.path, 'windowMs');
    assert.equal(parse({ rules: [] })[0]!.path, 'rules');
  });
});

describe('RuleEngine on the simulated truck with DEFAULT_RULES', () => {
  const T0 = Date.UTC(2024, 5, 1, 8);

  /** A truck started 15 minutes before T0, so its engine is warm when the detector starts. */
  function run(seed: number, minutes: number, faults: Fault[] = []): AlertEvent[] {
    const model = new TruckModel({ seed, startTs: T0 - 15 * MIN, faults });
    const engine = new RuleEngine(DEFAULT_RULES);
    const vehicle = `sim-${seed}`;
    const events: AlertEvent[] = [];
    let i = 0;
    for (const sample of simulateSamples(model, T0, T0 + minutes * MIN)) {
      const r: Reading = { ...sample, vehicle, seq: ++i };
      events.push(...engine.process(r, r.ts));
    }
    return events;
  }

  it('raises nothing for healthy trucks', () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) assert.deepEqual(kinds(run(seed, 5)), [], `seed ${seed}`);
  });

  it('raises exactly one engine-overheat alert for an overheating engine', () => {
    const from = T0 + 2 * MIN;
    for (const seed of [1, 2, 3]) {
      const overheat = raised(run(seed, 5, [{ kind: 'engine_overheat', from }])).filter((a) => a.rule === 'engine-overheat');
      assert.equal(overheat.length, 1, `seed ${seed}`);
      const [alert] = overheat;
      assert.equal(alert!.severity, 'critical');
      assert.equal(alert!.live, true);
      assert.ok(alert!.episodeStart >= from && alert!.episodeStart < from + MIN, `seed ${seed}: started ${(alert!.episodeStart - from) / SEC} s after the fault`);
    }
  });

  it('detects cargo heating at 1 °C/min with cargo-deviation within 10 minutes', () => {
    const from = T0 + 2 * MIN;
    for (const seed of [1, 2, 3]) {
      const events = run(seed, 12, [{ kind: 'cargo_heating', from }]);
      const cargo = raised(events).filter((a) => a.rule === 'cargo-deviation');
      assert.equal(cargo.length, 1, `seed ${seed}: ${kinds(events).join(', ') || 'no events'}`);
      assert.ok(cargo[0]!.episodeStart >= from, `seed ${seed}: alert before the fault`);
      assert.ok(cargo[0]!.windowEnd <= from + 10 * MIN, `seed ${seed}: detected ${(cargo[0]!.windowEnd - from) / MIN} min after onset`);
    }
  });
});

describe('RuleEngine taking over a vehicle', () => {
  it('continues an adopted episode instead of raising it again, and clears it under its own id', () => {
    const engine = new RuleEngine(ruleSet([HOT]));
    const first = new Feed(new RuleEngine(ruleSet([HOT])));
    const [original] = raised(first.series(V, 'engine_temp', 0, 25, () => 110));
    assert.ok(original);
    assert.equal(engine.knows(V), false);
    engine.adopt(original);
    assert.equal(engine.knows(V), true);
    // The new owner sees the episode go on (no second alert), then end.
    const feed = new Feed(engine);
    const events = [...feed.series(V, 'engine_temp', 30, 50, () => 110), ...feed.series(V, 'engine_temp', 50, 75, () => 90)];
    assert.deepEqual(kinds(events), [`cleared ${original.id}`]);
  });

  it('ignores an adopted alert of a rule it does not have', () => {
    const engine = new RuleEngine(ruleSet([RISE]));
    const [original] = raised(new Feed(new RuleEngine(ruleSet([HOT]))).series(V, 'engine_temp', 0, 25, () => 110));
    engine.adopt(original!);
    assert.deepEqual(engine.activeAlerts(), []);
  });
});
