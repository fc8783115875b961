import assert from 'node:assert/strict';
import { afterAll, describe, it } from 'vitest';
import { formatReplay } from '../../../cloud/replay/format.js';
import { replay, type ReplayAlert, type ReplayOptions, type ReplaySummary, type ScoreRow } from '../../../cloud/replay/replay.js';
import { BASE, seconds, tempFiles } from './files.js';

const files = tempFiles();
afterAll(() => files.cleanup());

const RULES = {
  windowMs: 10_000,
  rules: [
    { name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' },
    { name: 'engine-temp-rise', type: 'rate', sensor: 'engine_temp', maxPerMinute: 30 },
    { name: 'cargo-deviation', type: 'deviation', sensor: 'container_temp', k: 5, warmupWindows: 6 },
  ],
};
const rulesFile = files.write('rules.json', JSON.stringify(RULES));

/** 3 minutes at 90 °C with 120 °C from 60 s to 90 s: steps on window edges, so no window has a slope. */
const overheat = (s: number) => (s >= 60 && s < 90 ? 120 : 90);
const overheatCsv = files.write('overheat.csv', seconds(0, 180, overheat).join('\n') + '\n');

/** A replay's records gathered up: its alerts, score rows (when asked for) and summary. */
async function run(opts: ReplayOptions): Promise<Omit<ReplaySummary, 'alerts'> & { alerts: ReplayAlert[]; scores?: ScoreRow[] }> {
  const alerts: ReplayAlert[] = [];
  const scores: ScoreRow[] = [];
  let summary: ReplaySummary | undefined;
  for await (const r of replay(opts)) {
    if (r.record === 'alert') {
      const { record: _record, ...alert } = r;
      alerts.push(alert);
    } else if (r.record === 'score') {
      const { record: _record, ...row } = r;
      scores.push(row);
    } else {
      const { record: _record, ...rest } = r;
      summary = rest;
    }
  }
  assert.ok(summary, 'a replay ends with its summary');
  assert.equal(summary.alerts, alerts.length);
  const { alerts: _count, ...counts } = summary;
  return opts.scores ? { ...counts, alerts, scores } : { ...counts, alerts };
}

async function lines(rendered: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of rendered) out.push(line);
  return out;
}

describe('replay', () => {
  it('raises one alert for a clear overheat in a two-column CSV, and clears it afterwards', async () => {
    const result = await run({ rulesFile, csvFile: overheatCsv });
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
    const engine = await run({ rulesFile, csvFile: overheatCsv, vehicle: 'truck-9' });
    assert.deepEqual(
      engine.alerts.map((a) => a.id),
      [`truck-9.engine-overheat.${BASE + 60_000}`],
    );
    // As cargo temperature the same step is judged by the deviation rule, against the first minute's baseline.
    const cargo = await run({ rulesFile, csvFile: overheatCsv, vehicle: 'truck-9', sensor: 'container_temp' });
    assert.deepEqual(
      cargo.alerts.map((a) => a.id),
      [`truck-9.cargo-deviation.${BASE + 60_000}`],
    );
  });

  it('alerts only the overheating vehicle of a four-column CSV', async () => {
    const lines = ['timestamp,vehicle,sensor,value'];
    for (let s = 0; s < 180; s++) {
      const ts = BASE + s * 1000;
      lines.push(`${ts},truck-1,engine_temp,90`, `${ts},truck-2,engine_temp,${overheat(s)}`, `${ts},truck-1,container_temp,4`);
    }
    const csvFile = files.write('fleet.csv', lines.join('\n'));
    const result = await run({ rulesFile, csvFile });
    assert.deepEqual(
      result.alerts.map((a) => a.id),
      [`truck-2.engine-overheat.${BASE + 60_000}`],
    );
    assert.equal(result.rows, 540);

    const one = await run({ rulesFile, csvFile, vehicle: 'truck-1' });
    assert.deepEqual([one.alerts, one.rows], [[], 360]);
  });

  it('judges a short spike by the window it is averaged over', async () => {
    // 5 s at 130 °C: a 10 s window averages 110 (breach), a 60 s one 94 (normal).
    const csvFile = files.write('spike.csv', seconds(0, 180, (s) => (s >= 60 && s < 65 ? 130 : 90)).join('\n'));
    const short = await run({ rulesFile, csvFile, windowMs: 10_000 });
    const long = await run({ rulesFile, csvFile, windowMs: 60_000 });
    assert.deepEqual(
      short.alerts.filter((a) => a.rule === 'engine-overheat').map((a) => [a.windowStart, a.observed]),
      [[BASE + 60_000, 110]],
    );
    assert.deepEqual(
      long.alerts.filter((a) => a.rule === 'engine-overheat'),
      [],
    );
    assert.deepEqual([short.windows, long.windows], [18, 3]);
  });

  it('refuses a window length the rules file could not have', async () => {
    await assert.rejects(
      run({ rulesFile, csvFile: overheatCsv, windowMs: 50 }),
      /^ReplayInputError: windowMs: expected number to be >=100, got 50$/,
    );
  });

  it('scores each row by its window: in [0, 1], at least 0.5 when breaching, below 0.5 when normal', async () => {
    const result = await run({ rulesFile, csvFile: overheatCsv, scores: true });
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
    assert.deepEqual(Object.keys(scores[0]!).sort(), ['rule', 'score', 'scores', 'sensor', 'ts', 'value', 'vehicle']);
  });

  it("gives every rule's score and marks the rows where an episode starts", async () => {
    const { scores } = await run({ rulesFile, csvFile: overheatCsv, scores: true });
    const onsets = scores!.filter((r) => r.onset !== undefined);
    // The overheat's first window [60 s, 70 s) starts the episode: its ten rows carry the mark.
    assert.deepEqual(
      onsets.map((r) => (r.ts - BASE) / 1000),
      [60, 61, 62, 63, 64, 65, 66, 67, 68, 69],
    );
    assert.ok(onsets.every((r) => r.onset!.includes('engine-overheat')));
    const breach = scores!.find((r) => r.ts === BASE + 65_000)!;
    assert.deepEqual(Object.keys(breach.scores).sort(), ['engine-overheat', 'engine-temp-rise']);
    assert.equal(breach.score, Math.max(...Object.values(breach.scores)));
  });

  it('marks the episode start of a rule that must persist, back where the breach began', async () => {
    const persistent = files.write(
      'persistent.json',
      JSON.stringify({ rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 105, forWindows: 3 }] }),
    );
    const { scores, alerts } = await run({ rulesFile: persistent, csvFile: overheatCsv, scores: true });
    assert.deepEqual(
      alerts.map((a) => [a.episodeStart, a.windowStart]),
      [[BASE + 60_000, BASE + 80_000]],
    );
    assert.equal(scores!.filter((r) => r.onset?.includes('hot')).length, 10);
    assert.equal(scores!.find((r) => r.onset !== undefined)!.ts, BASE + 60_000);
    // Before the breach has lasted forWindows the rule is not sure yet: below its bound.
    assert.ok(scores!.find((r) => r.ts === BASE + 60_000)!.score < 0.5);
    assert.ok(scores!.find((r) => r.ts === BASE + 80_000)!.score > 0.5);
  });

  it('replays any series as the generic sensor, whatever its unit and size', async () => {
    const generic = files.write(
      'generic.json',
      JSON.stringify({ windowMs: 300_000, rules: [{ name: 'odd', type: 'deviation', sensor: 'generic', minStd: 1, warmupWindows: 12 }] }),
    );
    const csvFile = files.write(
      'series.csv',
      [
        'timestamp,value',
        ...Array.from(
          { length: 288 },
          (_, i) => `${new Date(BASE + i * 300_000).toISOString()},${i === 200 ? 9.5e9 : 5e9 + (i % 7) * 1e6}`,
        ),
      ].join('\n'),
    );
    const result = await run({ rulesFile: generic, csvFile, sensor: 'generic', scores: true });
    assert.equal(result.rows, 288);
    assert.deepEqual(
      result.alerts.map((a) => a.windowStart),
      [BASE + 200 * 300_000],
    );
    assert.equal(result.scores!.reduce((best, r) => (r.score > best.score ? r : best)).ts, BASE + 200 * 300_000);
  });

  it('takes windows up to a day and refuses longer ones', async () => {
    const day = await run({ rulesFile, csvFile: overheatCsv, windowMs: 86_400_000 });
    assert.equal(day.windows, 1);
    await assert.rejects(
      run({ rulesFile, csvFile: overheatCsv, windowMs: 86_400_001 }),
      /^ReplayInputError: windowMs: expected number to be <=86400000, got 86400001$/,
    );
  });

  it('scores 0 the rows of a sensor no rule watches', async () => {
    const result = await run({ rulesFile, csvFile: overheatCsv, sensor: 'rpm', scores: true });
    assert.ok(result.scores!.every((r) => r.score === 0 && r.rule === undefined));
    assert.equal(result.windows, 0);
  });

  it('reads ISO-8601 timestamps like ms since epoch', async () => {
    const iso = (s: number) => new Date(BASE + s * 1000).toISOString();
    const csvFile = files.write('iso.csv', seconds(0, 180, overheat, iso).join('\n'));
    const fromIso = await run({ rulesFile, csvFile });
    const fromMs = await run({ rulesFile, csvFile: overheatCsv });
    assert.deepEqual(fromIso, fromMs);
  });

  it('skips a header row', async () => {
    const csvFile = files.write('header.csv', ['timestamp,value', ...seconds(0, 180, overheat)].join('\n'));
    const result = await run({ rulesFile, csvFile });
    assert.equal(result.rows, 180);
    assert.equal(result.alerts.length, 1);
  });

  it('names file and line of a bad row', async () => {
    const csvFile = files.write('bad-row.csv', ['# recorded 2024-03-01', 'timestamp,value', `${BASE},90`, `${BASE + 1000},abc`].join('\n'));
    await assert.rejects(run({ rulesFile, csvFile }), { name: 'ReplayInputError', message: `${csvFile}:4: value "abc" is not a number` });
  });

  it('names file and field of a bad rules file', async () => {
    const bad = files.write(
      'bad-rules.json',
      JSON.stringify({ rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 'high' }] }),
    );
    await assert.rejects(run({ rulesFile: bad, csvFile: overheatCsv }), {
      name: 'ConfigError',
      message: `${bad}: rules[0].above: expected number, received string`,
    });
    const notJson = files.write('not-json.json', '{ rules: [] }');
    await assert.rejects(run({ rulesFile: notJson, csvFile: overheatCsv }), new RegExp(`^ConfigError: ${notJson}: not valid JSON`));
  });

  it('gives identical output when replayed twice', async () => {
    const render = async () => (await lines(formatReplay(replay({ rulesFile, csvFile: overheatCsv, scores: true }), 'json'))).join('\n');
    const first = await render();
    await new Promise((resolve) => setTimeout(resolve, 5)); // a wall-clock leak would now differ
    assert.equal(await render(), first);
  });

  it('keeps alerts live across a gap in the recording: replay has no "now"', async () => {
    // The overheat ends 5 minutes before the next reading, far beyond the default 60 s freshness.
    const lines = [...seconds(0, 10, () => 120), ...seconds(300, 320, () => 90)];
    const csvFile = files.write('gap.csv', lines.join('\n'));
    const result = await run({ rulesFile, csvFile });
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
    const result = await run({ rulesFile, csvFile, scores: true });
    assert.deepEqual([result.rows, result.late, result.alerts], [14, 1, []]);
    assert.equal(result.windows, 3); // truck-1 engine and container, truck-2 engine: each once
    assert.equal(result.scores![11]!.score, 0);
  });

  it('reports progress with the final row count', async () => {
    const seen: number[] = [];
    await run({ rulesFile, csvFile: overheatCsv, onProgress: (n) => seen.push(n) });
    assert.deepEqual(seen, [180]);
  });
});

describe('formatReplay', () => {
  it('prints one JSON line per record, each with its kind: scores as windows close, alerts as episodes end, the summary last', async () => {
    const out = (await lines(formatReplay(replay({ rulesFile, csvFile: overheatCsv, scores: true }), 'json'))).map(
      (l) => JSON.parse(l) as Record<string, unknown>,
    );
    assert.equal(out.length, 180 + 1 + 1);
    assert.deepEqual(new Set(out.map((l) => l.record)), new Set(['score', 'alert', 'summary']));
    const alert = out.findIndex((l) => l.record === 'alert');
    assert.equal(out[alert]!.id, `replay.engine-overheat.${BASE + 60_000}`);
    assert.equal(out[alert]!.clearedAt, BASE + 100_000);
    assert.equal(out[alert]!.clearReason, 'recovered');
    // Streamed: the alert goes out when its episode ends, long before the last rows are scored.
    assert.ok(alert < 150, `alert at line ${alert}`);
    assert.equal(out[0]!.ts, BASE);
    assert.deepEqual(out.at(-1), { record: 'summary', rows: 180, windows: 18, alerts: 1, late: 0, outliers: 0 });
  });

  it('leaves score rows out of JSON lines unless asked for', async () => {
    const out = await lines(formatReplay(replay({ rulesFile, csvFile: overheatCsv }), 'json'));
    assert.deepEqual(
      out.map((l) => (JSON.parse(l) as { record: string }).record),
      ['alert', 'summary'],
    );
  });

  it('prints a table a person can read', async () => {
    const out = await lines(formatReplay(replay({ rulesFile, csvFile: overheatCsv }), 'table'));
    assert.match(out[0]!, /^ID +SEVERITY +RULE +VEHICLE +WINDOW START +OBSERVED VS EXPECTED +CLEARED$/);
    assert.match(
      out[1]!,
      new RegExp(
        `^replay\\.engine-overheat\\.${BASE + 60_000} +critical +engine-overheat +replay +2024-03-01T08:01:00\\.000Z +120 vs 105 +2024-03-01T08:01:40\\.000Z$`,
      ),
    );
    assert.equal(out.at(-1), '180 rows, 18 windows, 1 alerts, 0 late rows ignored');
  });

  it('says so when nothing alerted, and lists scores when asked', async () => {
    const csvFile = files.write('calm.csv', seconds(0, 30, () => 90).join('\n'));
    const out = await lines(formatReplay(replay({ rulesFile, csvFile, scores: true }), 'table'));
    assert.match(out[0]!, /^TIME +VEHICLE +SENSOR +VALUE +SCORE +RULE +ONSET$/);
    assert.match(out[1]!, /^2024-03-01T08:00:00\.000Z +replay +engine_temp +90 +0\.000 +engine-overheat$/);
    assert.equal(out.at(-3), 'No alerts.');
  });
});
