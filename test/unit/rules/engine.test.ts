import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import type { Alert } from '../../../shared/contract/alert.js';
import type { SensorId } from '../../../shared/contract/reading.js';
import { RuleEngine, type AlertEvent } from '../../../shared/rules/engine.js';
import { B, Feed, kinds, LAG, MIN, normalize, raised, ruleSet, SEC, V } from './feed.js';

const HOT = { name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' };
const RISE = { name: 'rise', type: 'rate', sensor: 'engine_temp', maxPerMinute: 30 };
const DEV = { name: 'dev', type: 'deviation', sensor: 'container_temp', k: 3, minStd: 0.5, warmupWindows: 4, halfLifeWindows: 30 };

describe('RuleEngine threshold episodes', () => {
  it('raises once per episode, keyed by the window start, and clears after an in-range window', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    assert.deepEqual(
      f.series(V, 'engine_temp', 0, 60, () => 90),
      [],
    );
    assert.deepEqual(
      f.series(V, 'engine_temp', 60, 70, () => 120),
      [],
    );
    // The window [60 s, 70 s) closes on the first reading at or after 70 s.
    const closing = f.push(V, 'engine_temp', B + 70 * SEC, 120);
    assert.equal(closing.length, 1);
    const ev = closing[0]!;
    assert.equal(ev.kind, 'raised');
    const alert = (ev as { alert: Alert }).alert;
    assert.deepEqual(
      { ...alert, raisedAt: 0 },
      {
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
        driver: true,
        raisedAt: 0,
        closedAt: B + 70 * SEC + LAG,
      },
    );
    assert.equal(typeof alert.raisedAt, 'number');

    // The breach continues for two more windows: still one alert.
    assert.deepEqual(
      f.series(V, 'engine_temp', 71, 90, () => 120),
      [],
    );
    assert.deepEqual(
      f.series(V, 'engine_temp', 90, 100, () => 90),
      [],
    );
    assert.deepEqual(
      f.engine.activeAlerts().map((a) => a.id),
      [alert.id],
    );
    const clearing = f.push(V, 'engine_temp', B + 100 * SEC, 90);
    assert.deepEqual(clearing, [{ kind: 'cleared', alertId: alert.id, vehicle: V, rule: 'hot', at: B + 100 * SEC, reason: 'recovered' }]);
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
    const f = new Feed(new RuleEngine(ruleSet([{ name: 'cold-box', type: 'threshold', sensor: 'container_temp', above: 8, below: 2 }])));
    f.series(V, 'container_temp', 0, 10, () => 5);
    f.series(V, 'container_temp', 10, 20, () => 1);
    f.series(V, 'container_temp', 20, 30, () => 5);
    f.series(V, 'container_temp', 30, 40, () => 9);
    f.series(V, 'container_temp', 40, 50, () => 5);
    const alerts = raised(f.events);
    assert.deepEqual(
      alerts.map((a) => [a.episodeStart - B, a.observed, a.expected, a.message]),
      [
        [10 * SEC, 1, 2, 'container_temp mean 1 below 2'],
        [30 * SEC, 9, 8, 'container_temp mean 9 above 8'],
      ],
    );
    assert.equal(alerts[0]!.severity, 'warning');
  });
});

describe('RuleEngine event time', () => {
  it("closes windows only on the vehicle's own event time", () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 50, 70, (s) => (s < 60 ? 90 : 120));
    // Another truck far ahead in time must not close this truck's windows.
    assert.deepEqual(
      f.series('truck-2', 'engine_temp', 500, 530, () => 90),
      [],
    );
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
    assert.deepEqual(
      f.windowsOf(V, 'engine_temp').map((w) => w.mean),
      starts.map(() => 90),
    );
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
    assert.deepEqual(
      f.windowsOf(V, 'engine_temp').map((w) => [w.start - B, w.count, w.mean]),
      [
        [60 * SEC, 10, 90],
        [70 * SEC, 10, 90],
      ],
    );
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

describe('RuleEngine event time that cannot be poisoned', () => {
  it('drops one reading stamped far ahead instead of letting it make every later reading late', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 0, 60, () => 90);
    // A receiver with a wrong date: one reading 23 hours ahead.
    f.push(V, 'engine_temp', B + 23 * 3600 * SEC, 90);
    // Then a 41-second overheat at 130 °C, in the vehicle's true time.
    f.series(V, 'engine_temp', 61, 200, (s) => (s >= 100 && s < 141 ? 130 : 90));
    assert.deepEqual(
      raised(f.events).map((a) => [a.rule, a.live, a.episodeStart]),
      [['hot', true, B + 100 * SEC]],
    );
    assert.equal(f.engine.counters.outliers, 1);
    assert.equal(f.engine.counters.late, 0);
  });

  it('takes a real jump in time (the engine off for a night) once a second reading confirms it', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 0, 60, () => 90);
    const morning = 10 * 3600;
    f.series(V, 'engine_temp', morning, morning + 60, (s) => (s >= morning + 20 ? 120 : 90));
    assert.deepEqual(
      raised(f.events).map((a) => a.episodeStart),
      [B + (morning + 20) * SEC],
    );
    assert.equal(f.engine.counters.outliers, 0);
  });
});

describe('RuleEngine live and historical alerts', () => {
  it('marks an episode from a backlog historical and promotes it once the breach reaches live windows', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    // The agent already holds data up to 300 s and is catching up from 0 s.
    const headTs = B + 300 * SEC;
    const arrivedAt = headTs + LAG;
    f.series(V, 'engine_temp', 0, 60, () => 90, { headTs, arrivedAt });
    f.series(V, 'engine_temp', 60, 300, () => 120, { headTs, arrivedAt });
    assert.deepEqual(
      f.events.map((e) => e.kind),
      ['raised', 'promoted'],
    );
    const [first, promoted] = f.events as [Extract<AlertEvent, { kind: 'raised' }>, Extract<AlertEvent, { kind: 'promoted' }>];
    assert.equal(first.alert.live, false, "window ending 230 s before the agent's newest reading is history");
    assert.equal(first.alert.windowEnd, B + 70 * SEC);
    // 240 s is the first window end within freshnessMs (60 s) of 300 s.
    assert.equal(promoted.alert.live, true);
    assert.equal(promoted.alert.id, first.alert.id);
    assert.equal(promoted.alert.episodeStart, B + 60 * SEC);
    assert.deepEqual([promoted.alert.windowStart, promoted.alert.windowEnd], [B + 230 * SEC, B + 240 * SEC]);
    assert.equal(promoted.alert.closedAt, arrivedAt);
    assert.equal(f.engine.activeAlerts()[0]!.live, true);
  });

  it('raises live when there is no backlog, and never promotes', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 0, 300, (s) => (s < 60 ? 90 : 120));
    assert.deepEqual(
      f.events.map((e) => e.kind),
      ['raised'],
    );
    assert.equal(raised(f.events)[0]!.live, true);
  });

  it('keeps a historical episode that ended in the past historical: cleared, never promoted', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    f.series(V, 'engine_temp', 0, 300, (s) => (s >= 60 && s < 90 ? 120 : 90), { headTs: B + 600 * SEC, arrivedAt: B + 600 * SEC });
    assert.deepEqual(
      f.events.map((e) => e.kind),
      ['raised', 'cleared'],
    );
    assert.equal(raised(f.events)[0]!.live, false);
  });

  it('counts a window ending exactly freshnessMs behind the newest reading as live', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    const at = (headTs: number) => ({ headTs, arrivedAt: headTs });
    f.series(V, 'engine_temp', 60, 70, () => 120, at(B + 130 * SEC));
    f.push(V, 'engine_temp', B + 70 * SEC, 90, at(B + 130 * SEC));
    assert.equal(raised(f.events)[0]!.live, true);
    const g = new Feed(new RuleEngine(ruleSet([HOT])));
    g.series(V, 'engine_temp', 60, 70, () => 120, at(B + 130 * SEC + 1));
    g.push(V, 'engine_temp', B + 70 * SEC, 90, at(B + 130 * SEC + 1));
    assert.equal(raised(g.events)[0]!.live, false);
  });

  it('believes a headTs no further than the receive time: a clock running ahead cannot make a live overheat historical', () => {
    const f = new Feed(new RuleEngine(ruleSet([HOT])));
    // Readings arrive as they are taken, but each batch claims the agent is 4 minutes further on.
    f.series(V, 'engine_temp', 0, 80, (s) => (s >= 60 ? 120 : 90), { headTs: B + 320 * SEC });
    assert.deepEqual(
      raised(f.events).map((a) => [a.rule, a.live]),
      [['hot', true]],
    );
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
    // Scores: 0 flat, below 0.5 under the limit, past 0.5 over it (x / (1 + x), x = slope / limit).
    const scores = f.windowsOf(V, 'engine_temp').map((w) => w.scores['rise']!);
    assert.deepEqual(scores.slice(0, 3), [0, 0, 0]);
    assert.ok(Math.abs(scores[3]! - 0.8 / 1.8) < 1e-9, `24 °C/min scores ${scores[3]}`);
    assert.ok(Math.abs(scores[4]! - 2 / 3) < 1e-9, `60 °C/min scores ${scores[4]}`);
  });

  it('ignores the steep slopes a noisy sensor scatters through, by how well a line fits', () => {
    const f = new Feed(new RuleEngine(ruleSet([RISE])));
    // Readings jumping ±8 °C around 90: the least-squares slope can pass the limit, the fit never does.
    const noisy = (s: number) => 90 + (((s * 7919) % 17) - 8);
    f.series(V, 'engine_temp', 0, 600, noisy);
    assert.ok(
      f.windowsOf(V, 'engine_temp').some((w) => w.mean !== 90),
      'the data varies',
    );
    assert.deepEqual(raised(f.events), []);
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
    assert.ok(
      headEvents.some((e) => e.kind === 'raised' && e.alert.rule === 'hot'),
      'the cut must fall inside an episode',
    );
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
    assert.deepEqual([...new Set(expected.map((e) => (e.kind === 'cleared' ? `cleared ${e.rule}` : `${e.kind} ${e.alert.rule}`)))].sort(), [
      'cleared hot',
      'raised dev',
    ]);
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
