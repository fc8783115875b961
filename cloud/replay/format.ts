import type { ReplayAlert, ReplayRecord, ReplaySummary, ScoreRow } from './replay.js';

export const FORMATS = ['table', 'json'] as const;
export type ReplayFormat = (typeof FORMATS)[number];

/**
 * Renders a replay as lines (without newlines), as it runs: JSON lines for scripts, each
 * with its `record` kind (`score`, `alert`, `summary`), or a human table (score rows as they
 * come, the alerts once the file is done, then the summary).
 */
export async function* formatReplay(records: AsyncIterable<ReplayRecord>, format: ReplayFormat): AsyncGenerator<string> {
  const lines = replayFormatter(format);
  for await (const r of records) yield* lines(r);
}

/** formatReplay one record at a time: the lines each record adds (none for an alert of the table, shown at the end). */
export function replayFormatter(format: ReplayFormat): (r: ReplayRecord) => string[] {
  if (format === 'json') return (r) => [JSON.stringify(r)];
  const alerts: ReplayAlert[] = [];
  let scoresHeader = false;
  return (r) => {
    if (r.record === 'score') {
      const row = line(scoreCells(r));
      if (scoresHeader) return [row];
      scoresHeader = true;
      return [line(SCORE_COLUMNS), row];
    }
    if (r.record === 'alert') {
      const { record: _record, ...alert } = r;
      alerts.push(alert);
      return [];
    }
    return [...(scoresHeader ? [''] : []), ...alertTable(alerts), '', summaryLine(r)];
  };
}

/** Score rows are printed as they come, so their columns have fixed widths. */
const SCORE_COLUMNS: [string, number][] = [
  ['TIME', 24],
  ['VEHICLE', 12],
  ['SENSOR', 14],
  ['VALUE', 10],
  ['SCORE', 6],
  ['RULE', 20],
  ['ONSET', 0],
];

function line(cells: [string, number][]): string {
  return cells
    .map(([text, width]) => text.padEnd(width))
    .join('  ')
    .trimEnd();
}

function scoreCells(r: ScoreRow): [string, number][] {
  const values = [iso(r.ts), r.vehicle, r.sensor, num(r.value), r.score.toFixed(3), r.rule ?? '-', r.onset?.join(',') ?? ''];
  return values.map((v, i) => [v, SCORE_COLUMNS[i]![1]]);
}

function* alertTable(alerts: ReplayAlert[]): Generator<string> {
  if (alerts.length === 0) {
    yield 'No alerts.';
    return;
  }
  const header = ['ID', 'SEVERITY', 'RULE', 'VEHICLE', 'WINDOW START', 'OBSERVED VS EXPECTED', 'CLEARED'];
  const rows = alerts.map((a) => [
    a.id,
    a.severity,
    a.rule,
    a.vehicle,
    iso(a.windowStart),
    `${num(a.observed)} vs ${num(a.expected)}`,
    a.clearedAt === undefined ? 'no' : `${iso(a.clearedAt)}${a.clearReason === 'level_shift' ? ' (level shift)' : ''}`,
  ]);
  const widths = header.map((h, i) => rows.reduce((w, row) => Math.max(w, row[i]!.length), h.length));
  const fit = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  yield fit(header);
  for (const row of rows) yield fit(row);
}

function summaryLine(s: ReplaySummary): string {
  const ignored = s.outliers > 0 ? `, ${s.outliers} rows far ahead of their vehicle's time ignored` : '';
  return `${s.rows} rows, ${s.windows} windows, ${s.alerts} alerts, ${s.late} late rows ignored${ignored}`;
}

function iso(ts: number): string {
  return new Date(ts).toISOString();
}

function num(x: number): string {
  return String(Math.round(x * 100) / 100);
}
