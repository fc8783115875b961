import type { ReplayAlert, ReplayResult, ScoreRow } from './replay.js';

export const FORMATS = ['table', 'json'] as const;
export type ReplayFormat = (typeof FORMATS)[number];

/**
 * Renders a replay as lines (without newlines): a human table, or JSON lines for scripts
 * (alerts, then score rows if any, then one summary). Lines rather than one string, because
 * the score rows of a long recording can outgrow the largest string V8 allows.
 */
export function* formatReplay(result: ReplayResult, format: ReplayFormat): Generator<string> {
  yield* format === 'json' ? jsonLines(result) : table(result);
}

function* jsonLines(result: ReplayResult): Generator<string> {
  for (const alert of result.alerts) yield JSON.stringify(alert);
  for (const row of result.scores ?? []) yield JSON.stringify(row);
  yield JSON.stringify(summary(result));
}

function* table(result: ReplayResult): Generator<string> {
  if (result.alerts.length === 0) yield 'No alerts.';
  else {
    yield* columns(
      ['ID', 'SEVERITY', 'RULE', 'VEHICLE', 'WINDOW START', 'OBSERVED VS EXPECTED', 'CLEARED'],
      result.alerts.map(alertCells),
    );
  }
  if (result.scores !== undefined) {
    yield '';
    yield* columns(['TIME', 'VEHICLE', 'SENSOR', 'VALUE', 'SCORE', 'RULE'], result.scores.map(scoreCells));
  }
  yield '';
  const s = summary(result);
  yield `${s.rows} rows, ${s.windows} windows, ${s.alerts} alerts, ${s.late} late rows ignored`;
}

function summary(result: ReplayResult): { rows: number; windows: number; alerts: number; late: number } {
  return { rows: result.rows, windows: result.windows, alerts: result.alerts.length, late: result.late };
}

function alertCells(a: ReplayAlert): string[] {
  return [
    a.id,
    a.severity,
    a.rule,
    a.vehicle,
    iso(a.windowStart),
    `${num(a.observed)} vs ${num(a.expected)}`,
    a.clearedAt === undefined ? 'no' : iso(a.clearedAt),
  ];
}

function scoreCells(r: ScoreRow): string[] {
  return [iso(r.ts), r.vehicle, r.sensor, num(r.value), r.score.toFixed(3), r.rule ?? '-'];
}

function* columns(header: string[], rows: string[][]): Generator<string> {
  const widths = header.map((h, i) => rows.reduce((w, row) => Math.max(w, row[i]!.length), h.length));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  yield line(header);
  for (const row of rows) yield line(row);
}

function iso(ts: number): string {
  return new Date(ts).toISOString();
}

function num(x: number): string {
  return String(Math.round(x * 100) / 100);
}
