import { parseFile, plain } from '../../shared/config.js';
import type { Alert, ClearReason } from '../../shared/contract/alert.js';
import type { SensorId } from '../../shared/contract/reading.js';
import { RuleEngine, type AlertEvent, type WindowResult } from '../../shared/rules/engine.js';
import { ruleSetSchema } from '../../shared/rules/rule-set.js';
import { readCsvBatches } from './csv.js';
import { ReplayInputError } from './errors.js';

export interface ReplayOptions {
  rulesFile: string;
  csvFile: string;
  /** Overrides the rules file's windowMs, to try window lengths without editing the file. */
  windowMs?: number;
  /** Also give every row its score (streamed out as its window closes, so memory does not grow with the file). */
  scores?: boolean;
  /** See CsvOptions: the vehicle/sensor of a two-column file, or a filter on a four-column one. */
  vehicle?: string;
  sensor?: SensorId;
  /** Called every 10,000 rows, then once with the total. */
  onProgress?: (rows: number) => void;
}

export interface ReplayAlert extends Alert {
  /** End of the window that ended the episode, and why it ended; absent while the episode is still open at the end of the file. */
  clearedAt?: number;
  clearReason?: ClearReason;
}

export interface ScoreRow {
  ts: number;
  vehicle: string;
  sensor: SensorId;
  value: number;
  /** The detector's confidence that this row is anomalous: the highest rule score of its window (0.5 = at a rule's bound). */
  score: number;
  /** The rule that gave that score; absent when no rule could judge the window. */
  rule?: string;
  /** Every rule's score of the row's window. */
  scores: Record<string, number>;
  /** Rules whose episode starts with this row's window: where an anomaly begins. */
  onset?: string[];
}

export interface ReplaySummary {
  rows: number;
  windows: number;
  alerts: number;
  /** Rows whose window had already closed (out of event-time order within their vehicle): ignored. */
  late: number;
  /** Rows far ahead of their vehicle's time that nothing confirmed (a clock fault): ignored. */
  outliers: number;
}

/** What a replay yields, in this order per row: score rows as their windows close, alerts as their episodes end, the summary last. */
export type ReplayRecord = ({ record: 'score' } & ScoreRow) | ({ record: 'alert' } & ReplayAlert) | ({ record: 'summary' } & ReplaySummary);

const PROGRESS_EVERY = 10_000;

interface PendingRow extends ScoreRow {
  windowStart: number;
  scored: boolean;
}

/**
 * Runs a recorded CSV through one RuleEngine in event time, exactly as the detector would
 * have seen it live, and yields what it would have raised. Rows wait only until their
 * window closes and no episode can still start in it (a rule's forWindows), then go out
 * in file order: a replay of a year needs memory for a few windows, not for the year.
 */
export async function* replay(opts: ReplayOptions): AsyncGenerator<ReplayRecord> {
  for await (const records of replayBatches(opts)) yield* records;
}

/** replay's records as each read of the file yields them: for a caller that writes them out a chunk at a time. */
export async function* replayBatches(opts: ReplayOptions): AsyncGenerator<ReplayRecord[]> {
  const ruleSet = parseFile(ruleSetSchema, opts.rulesFile);
  const windowMs = opts.windowMs === undefined ? ruleSet.windowMs : checkWindowMs(opts.windowMs);
  // Replay has no "now": freshness would be measured against the vehicle's newest reading, and a
  // gap in the recording would otherwise make the windows before it historical (never told).
  const engine = new RuleEngine({ ...ruleSet, windowMs, freshnessMs: Number.MAX_SAFE_INTEGER });
  const ruled = new Set(ruleSet.rules.map((r) => r.sensor));
  const holdWindows = Math.max(...ruleSet.rules.map((r) => r.forWindows));

  const open = new Map<string, ReplayAlert>();
  let alerts = 0;
  const out: ReplayRecord[] = [];
  const collect = (events: AlertEvent[]): void => {
    for (const e of events) {
      // raisedAt is wall-clock in the engine; event time keeps two replays of a file identical.
      if (e.kind === 'raised') {
        open.set(e.alert.id, { ...e.alert, raisedAt: e.alert.closedAt });
        alerts++;
        if (opts.scores) markOnset(e.alert);
      } else if (e.kind === 'cleared') {
        const alert = open.get(e.alertId)!;
        open.delete(e.alertId);
        out.push({ record: 'alert', ...alert, clearedAt: e.at, clearReason: e.reason });
      }
    }
  };

  // Rows in file order, each waiting for its window's scores.
  const queue: PendingRow[] = [];
  let head = 0;
  const pending = new Map<string, PendingRow[]>();
  const closedUpTo = new Map<string, number>();
  const markOnset = (a: Alert) => {
    for (const row of pending.get(windowKey(a.vehicle, a.sensor, a.episodeStart)) ?? []) (row.onset ??= []).push(a.rule);
  };
  if (opts.scores) {
    // A late row's window has closed already, an outlier's never will: both keep score 0.
    engine.onDropped = (r) => {
      for (const row of pending.get(windowKey(r.vehicle, r.sensor, r.ts - (r.ts % windowMs))) ?? []) if (row.ts === r.ts) row.scored = true;
    };
    engine.onWindow = (w: WindowResult) => {
      closedUpTo.set(w.vehicle, Math.max(closedUpTo.get(w.vehicle) ?? 0, w.end));
      const rows = pending.get(windowKey(w.vehicle, w.sensor, w.start));
      if (rows === undefined) return;
      let best: [string, number] | undefined;
      for (const entry of Object.entries(w.scores)) if (best === undefined || entry[1] > best[1]) best = entry;
      for (const row of rows) {
        row.scored = true;
        row.scores = w.scores;
        if (best !== undefined) [row.rule, row.score] = best;
      }
    };
  }
  // A row goes out once scored and once its window is holdWindows behind: no episode can start in it any more.
  const ready = (row: PendingRow) => row.scored && (closedUpTo.get(row.vehicle) ?? 0) - row.windowStart >= holdWindows * windowMs;
  const release = (all: boolean) => {
    while (head < queue.length && (all || ready(queue[head]!))) {
      const { windowStart, scored: _scored, ...row } = queue[head++]!;
      const key = windowKey(row.vehicle, row.sensor, windowStart);
      const rows = pending.get(key);
      if (rows !== undefined && rows[rows.length - 1] === queue[head - 1]) pending.delete(key);
      out.push({ record: 'score', ...row });
    }
    if (head > 4096 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
  };

  let rows = 0;
  let newest = 0;
  for await (const batch of readCsvBatches(opts.csvFile, { vehicle: opts.vehicle, sensor: opts.sensor })) {
    for (const { reading: r } of batch) {
      rows++;
      if (opts.onProgress !== undefined && rows % PROGRESS_EVERY === 0) opts.onProgress(rows);
      newest = Math.max(newest, r.ts);
      if (opts.scores) {
        const windowStart = r.ts - (r.ts % windowMs);
        // A row no rule judges, or one whose window closed already (late), keeps score 0.
        const row: PendingRow = {
          ts: r.ts,
          vehicle: r.vehicle,
          sensor: r.sensor,
          value: r.value,
          score: 0,
          scores: {},
          windowStart,
          scored: !ruled.has(r.sensor),
        };
        queue.push(row);
        if (ruled.has(r.sensor)) {
          const key = windowKey(r.vehicle, r.sensor, windowStart);
          const waiting = pending.get(key);
          if (waiting === undefined) pending.set(key, [row]);
          else waiting.push(row);
        }
      }
      collect(engine.process(r, r.ts));
      if (opts.scores) release(false);
    }
    if (out.length > 0) yield out.splice(0);
  }
  collect(engine.flush(newest));
  if (opts.scores) release(true);
  opts.onProgress?.(rows);
  for (const alert of open.values()) out.push({ record: 'alert', ...alert });
  out.push({
    record: 'summary',
    rows,
    windows: engine.counters.windows,
    alerts,
    late: engine.counters.late,
    outliers: engine.counters.outliers,
  });
  yield out;
}

function checkWindowMs(ms: number): number {
  const parsed = ruleSetSchema.shape.windowMs.safeParse(ms);
  if (!parsed.success) throw new ReplayInputError(`windowMs: ${plain(parsed.error.issues[0]!.message)}, got ${ms}`);
  return parsed.data;
}

function windowKey(vehicle: string, sensor: SensorId, start: number): string {
  return `${vehicle}\u0000${sensor}\u0000${start}`;
}
