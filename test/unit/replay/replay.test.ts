import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { formatReplay } from '../../../cloud/replay/format.js';
import { replay } from '../../../cloud/replay/replay.js';
import { BASE, seconds, tempFiles } from './files.js';

const files = tempFiles();
after(() => files.cleanup());

const RULES = {
  windowMs: 10_000,
  rules: [
    { name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' },
    { name: 'engine-temp-rise', type: 'rate', sensor: 'engine_temp', maxPerMinute: 30 },
    { name: 'cargo-deviation', type: 'deviation', sensor: 'container_temp', k: 5 },
  ],
};
const rulesFile = files.write('rules.json', JSON.stringify(RULES));

/** 3 minutes at 90 °C with 120 °C from 60 s to 90 s: steps on window edges, so no window has a slope. */
const overheat = (s: number) => (s >= 60 && s < 90 ? 120 : 90);
const overheatCsv = files.write('overheat.csv', seconds(0, 180, overheat).join('\n') + '\n');

describe('replay', () => {
  it('raises one alert for a clear overheat in a two-column CSV, and clears it afterwards', async () => {
    const result = await replay({ rulesFile, csvFile: overheatCsv });
    assert.equal(result.alerts.length, 1);
    const [alert] = result.alerts;
    assert.equal(alert!.id, `replay.engine-overheat.${BASE + 60_000}`);
    assert.equal(alert!.severity, 'critical');
    assert.equal(alert!.observed, 120);
    assert.equal(alert!.live, true);
    assert.equal(alert!.clearedAt, BASE + 100_000);
    assert.deepEqual([result.rows, result.windows, result.late], [180, 18, 0]);
  });

  it('takes vehicle and sensor of a two-column CSV from the options', async () => {
    const engine = await replay({ rulesFile, csvFile: overheatCsv, vehicle: 'truck-9' });
    assert.deepEqual(engine.alerts.map((a) => a.id), [`truck-9.engine-overheat.${BASE + 60_000}`]);
    // As cargo temperature the same step is judged by the deviation rule, against the first minute's baseline.
    const cargo = await replay({ rulesFile, csvFile: overheatCsv, vehicle: 'truck-9', sensor: 'container_temp' });
    assert.deepEqual(cargo.alerts.map((a) => a.id), [`truck-9.cargo-deviation.${BASE + 60_000}`]);
  });

  it('alerts only the overheating vehicle of a four-column CSV', async () => {
    const lines = ['timestamp,vehicle,sensor,value'];
    for (let s = 0; s < 180; s++) {
      const ts = BASE + s * 1000;
      lines.push(`${ts},truck-1,engine_temp,90`, `${ts},truck-2,engine_temp,${overheat(s)}`, `${ts},truck-1,container_temp,4`);
    }
    const csvFile = files.write('fleet.csv', lines.join('\n'));
    const result = await replay({ rulesFile, csvFile });
    assert.deepEqual(
      result.alerts.map((a) => a.id),
      [`truck-2.engine-overheat.${BASE + 60_000}`],
    );
    assert.equal(result.rows, 540);

    const one = await replay({ rulesFile, csvFile, vehicle: 'truck-1' });
    assert.deepEqual([one.alerts, one.rows], [[], 360]);
  });

  it('judges a short spike by the window it is averaged over', async () => {
    // 5 s at 130 °C: a 10 s window averages 110 (breach), a 60 s one 94 (normal).
    const csvFile = files.write('spike.csv', seconds(0, 180, (s) => (s >= 60 && s < 65 ? 130 : 90)).join('\n'));
    const short = await replay({ rulesFile, csvFile, windowMs: 10_000 });
    const long = await replay({ rulesFile, csvFile, windowMs: 60_000 });
    assert.deepEqual(
      short.alerts.filter((a) => a.rule === 'engine-overheat').map((a) => [a.windowStart, a.observed]),
      [[BASE + 60_000, 110]],
    );
    assert.deepEqual(long.alerts.filter((a) => a.rule === 'engine-overheat'), []);
    assert.deepEqual([short.windows, long.windows], [18, 3]);
  });

  it('refuses a window length the rules file could not have', async () => {
    await assert.rejects(replay({ rulesFile, csvFile: overheatCsv, windowMs: 50 }), /^ReplayInputError: windowMs: expected number to be >=100, got 50$/);
  });

  it('scores each row by its window: in [0, 1], at least 0.5 when breaching, below 0.5 when normal', async () => {
    const result = await replay({ rulesFile, csvFile: overheatCsv, scores: true });
    const scores = result.scores!;
    assert.equal(scores.length, 180);
    for (const row of scores) {
      assert.ok(row.score >= 0 && row.score <= 1, `score ${row.score} out of range`);
      const second = (row.ts - BASE) / 1000;
      if (second >= 60 && second < 90) {
        assert.ok(row.score >= 0.5, `second ${second}: ${row.score}`);
        assert.equal(row.rule, 'engine-overheat');
      } else {
        assert.ok(row.score < 0.5, `second ${second}: ${row.score}`);
      }
    }
    assert.deepEqual(Object.keys(scores[0]!).sort(), ['rule', 'score', 'sensor', 'ts', 'value', 'vehicle']);
  });

  it('scores 0 the rows of a sensor no rule watches', async () => {
    const result = await replay({ rulesFile, csvFile: overheatCsv, sensor: 'rpm', scores: true });
    assert.ok(result.scores!.every((r) => r.score === 0 && r.rule === undefined));
    assert.equal(result.windows, 0);
  });

  it('reads ISO-8601 timestamps like ms since epoch', async () => {
    const iso = (s: number) => new Date(BASE + s * 1000).toISOString();
    const csvFile = files.write('iso.csv', seconds(0, 180, overheat, iso).join('\n'));
    const fromIso = await replay({ rulesFile, csvFile });
    const fromMs = await replay({ rulesFile, csvFile: overheatCsv });
    assert.deepEqual(fromIso, fromMs);
  });

  it('skips a header row', async () => {
    const csvFile = files.write('header.csv', ['timestamp,value', ...seconds(0, 180, overheat)].join('\n'));
    const result = await replay({ rulesFile, csvFile });
    assert.equal(result.rows, 180);
    assert.equal(result.alerts.length, 1);
  });

  it('names file and line of a bad row', async () => {
    const csvFile = files.write('bad-row.csv', ['# recorded 2024-03-01', 'timestamp,value', `${BASE},90`, `${BASE + 1000},abc`].join('\n'));
    await assert.rejects(replay({ rulesFile, csvFile }), { name: 'ReplayInputError', message: `${csvFile}:4: value "abc" is not a number` });
  });

  it('names file and field of a bad rules file', async () => {
    const bad = files.write('bad-rules.json', JSON.stringify({ rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 'high' }] }));
    await assert.rejects(replay({ rulesFile: bad, csvFile: overheatCsv }), {
      name: 'ConfigError',
      message: `${bad}: rules[0].above: expected number, received string`,
    });
    const notJson = files.write('not-json.json', '{ rules: [] }');
    await assert.rejects(replay({ rulesFile: notJson, csvFile: overheatCsv }), new RegExp(`^ConfigError: ${notJson}: not valid JSON`));
  });

  it('gives identical output when replayed twice', async () => {
    const render = async () => [...formatReplay(await replay({ rulesFile, csvFile: overheatCsv, scores: true }), 'json')].join('\n');
    const first = await render();
    await new Promise((resolve) => setTimeout(resolve, 5)); // a wall-clock leak would now differ
    assert.equal(await render(), first);
  });

  it('keeps alerts live across a gap in the recording: replay has no "now"', async () => {
    // The overheat ends 5 minutes before the next reading, far beyond the default 60 s freshness.
    const lines = [...seconds(0, 10, () => 120), ...seconds(300, 320, () => 90)];
    const csvFile = files.write('gap.csv', lines.join('\n'));
    const result = await replay({ rulesFile, csvFile });
    assert.deepEqual(
      result.alerts.map((a) => [a.id, a.live]),
      [[`replay.engine-overheat.${BASE}`, true]],
    );
  });

  it('counts rows whose window already closed as late and leaves them out', async () => {
    const lines = [
      ...seconds(0, 10, () => 90).map((l) => l.replace(',', ',truck-1,engine_temp,')),
      `${BASE + 25_000},truck-1,container_temp,4`, // closes the engine window
      `${BASE + 3_000},truck-1,engine_temp,200`, // would reopen it and raise an overheat
      `${BASE + 5_000},truck-2,engine_temp,90`, // another vehicle has its own event time
      `${BASE + 26_000},truck-1,container_temp,4`,
    ];
    const csvFile = files.write('late.csv', lines.join('\n'));
    const result = await replay({ rulesFile, csvFile, scores: true });
    assert.deepEqual([result.rows, result.late, result.alerts], [14, 1, []]);
    assert.equal(result.windows, 3); // truck-1 engine and container, truck-2 engine: each once
    assert.equal(result.scores![11]!.score, 0);
  });

  it('reports progress with the final row count', async () => {
    const seen: number[] = [];
    await replay({ rulesFile, csvFile: overheatCsv, onProgress: (n) => seen.push(n) });
    assert.deepEqual(seen, [180]);
  });
});

describe('formatReplay', () => {
  it('prints alerts, then scores, then a summary as JSON lines', async () => {
    const result = await replay({ rulesFile, csvFile: overheatCsv, scores: true });
    const lines = [...formatReplay(result, 'json')].map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 1 + 180 + 1);
    assert.equal(lines[0]!.id, `replay.engine-overheat.${BASE + 60_000}`);
    assert.equal(lines[0]!.clearedAt, BASE + 100_000);
    assert.equal(lines[1]!.ts, BASE);
    assert.deepEqual(lines.at(-1), { rows: 180, windows: 18, alerts: 1, late: 0 });
  });

  it('leaves score rows out of JSON lines unless asked for', async () => {
    const lines = [...formatReplay(await replay({ rulesFile, csvFile: overheatCsv }), 'json')];
    assert.equal(lines.length, 2);
  });

  it('prints a table a person can read', async () => {
    const lines = [...formatReplay(await replay({ rulesFile, csvFile: overheatCsv }), 'table')];
    assert.match(lines[0]!, /^ID +SEVERITY +RULE +VEHICLE +WINDOW START +OBSERVED VS EXPECTED +CLEARED$/);
    assert.match(
      lines[1]!,
      new RegExp(`^replay\\.engine-overheat\\.${BASE + 60_000} +critical +engine-overheat +replay +2024-03-01T08:01:00\\.000Z +120 vs 105 +2024-03-01T08:01:40\\.000Z$`),
    );
    assert.equal(lines.at(-1), '180 rows, 18 windows, 1 alerts, 0 late rows ignored');
  });

  it('says so when nothing alerted, and lists scores when asked', async () => {
    const csvFile = files.write('calm.csv', seconds(0, 30, () => 90).join('\n'));
    const lines = [...formatReplay(await replay({ rulesFile, csvFile, scores: true }), 'table')];
    assert.equal(lines[0], 'No alerts.');
    assert.match(lines[2]!, /^TIME +VEHICLE +SENSOR +VALUE +SCORE +RULE$/);
    assert.match(lines[3]!, /^2024-03-01T08:00:00\.000Z +replay +engine_temp +90 +0\.000 +engine-overheat$/);
  });
});
