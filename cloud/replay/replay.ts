import { parseFile, plain } from '../../shared/config.js';
import type { Alert } from '../../shared/contract/alert.js';
import type { SensorId } from '../../shared/contract/reading.js';
import { RuleEngine, type AlertEvent } from '../../shared/rules/engine.js';
import { ruleSetSchema } from '../../shared/rules/rule-set.js';
import { readCsv } from './csv.js';
import { ReplayInputError } from './errors.js';

export interface ReplayOptions {
  rulesFile: string;
  csvFile: string;
  /** Overrides the rules file's windowMs, to try window lengths without editing the file. */
  windowMs?: number;
  /** Also return every row with the score of its window (memory grows with the file). */
  scores?: boolean;
  /** See CsvOptions: the vehicle/sensor of a two-column file, or a filter on a four-column one. */
  vehicle?: string;
  sensor?: SensorId;
  /** Called every 10,000 rows, then once with the total. */
  onProgress?: (rows: number) => void;
}

export interface ReplayAlert extends Alert {
  /** End of the window that ended the episode; absent while the episode is still open at the end of the file. */
  clearedAt?: number;
}

export interface ScoreRow {
  ts: number;
  vehicle: string;
  sensor: SensorId;
  value: number;
  /** Highest rule score of the row's window: 0.5 is a rule's bound, 1 far past it. */
  score: number;
  /** The rule that gave that score; absent when no rule could judge the window. */
  rule?: string;
}

export interface ReplayResult {
  alerts: ReplayAlert[];
  rows: number;
  windows: number;
  /** Rows whose window had already closed (out of event-time order within their vehicle): ignored. */
  late: number;
  scores?: ScoreRow[];
}

const PROGRESS_EVERY = 10_000;

/**
 * Runs a recorded CSV through one RuleEngine in event time, exactly as the detector would
 * have seen it live, and reports what it would have raised.
 */
export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const ruleSet = parseFile(ruleSetSchema, opts.rulesFile);
  const windowMs = opts.windowMs === undefined ? ruleSet.windowMs : checkWindowMs(opts.windowMs);
  // Replay has no "now": freshness would be measured against the vehicle's newest reading, and a
  // gap in the recording would otherwise make the windows before it historical (never told).
  const engine = new RuleEngine({ ...ruleSet, windowMs, freshnessMs: Number.MAX_SAFE_INTEGER });
  const ruled = new Set(ruleSet.rules.map((r) => r.sensor));

  const alerts = new Map<string, ReplayAlert>();
  const collect = (events: AlertEvent[]): void => {
    for (const e of events) {
      // raisedAt is wall-clock in the engine; event time keeps two replays of a file identical.
      if (e.kind === 'raised') alerts.set(e.alert.id, { ...e.alert, raisedAt: e.alert.closedAt });
      else if (e.kind === 'cleared') alerts.get(e.alertId)!.clearedAt = e.at;
    }
  };

  const scores: ScoreRow[] | undefined = opts.scores ? [] : undefined;
  // Rows wait here until their window closes and the engine reports its scores.
  const pending = new Map<string, ScoreRow[]>();
  if (scores !== undefined) {
    engine.onWindow = (w) => {
      const key = windowKey(w.vehicle, w.sensor, w.start);
      let best: { rule: string; score: number } | undefined;
      for (const [rule, score] of Object.entries(w.scores)) if (best === undefined || score > best.score) best = { rule, score };
      for (const row of pending.get(key) ?? []) {
        row.score = best?.score ?? 0;
        if (best !== undefined) row.rule = best.rule;
      }
      pending.delete(key);
    };
  }

  let rows = 0;
  let newest = 0;
  for await (const { reading: r } of readCsv(opts.csvFile, { vehicle: opts.vehicle, sensor: opts.sensor })) {
    rows++;
    if (opts.onProgress !== undefined && rows % PROGRESS_EVERY === 0) opts.onProgress(rows);
    newest = Math.max(newest, r.ts);
    if (scores !== undefined) {
      // A late row's window is gone: its score stays 0 and the summary counts it as late.
      const row: ScoreRow = { ts: r.ts, vehicle: r.vehicle, sensor: r.sensor, value: r.value, score: 0 };
      scores.push(row);
      if (ruled.has(r.sensor)) {
        const key = windowKey(r.vehicle, r.sensor, r.ts - (r.ts % windowMs));
        const waiting = pending.get(key);
        if (waiting === undefined) pending.set(key, [row]);
        else waiting.push(row);
      }
    }
    collect(engine.process(r, r.ts));
  }
  collect(engine.flush(newest));
  opts.onProgress?.(rows);

  const result: ReplayResult = { alerts: [...alerts.values()], rows, windows: engine.counters.windows, late: engine.counters.late };
  if (scores !== undefined) result.scores = scores;
  return result;
}

function checkWindowMs(ms: number): number {
  const parsed = ruleSetSchema.shape.windowMs.safeParse(ms);
  if (!parsed.success) throw new ReplayInputError(`windowMs: ${plain(parsed.error.issues[0]!.message)}, got ${ms}`);
  return parsed.data;
}

function windowKey(vehicle: string, sensor: SensorId, start: number): string {
  return `${vehicle}\u0000${sensor}\u0000${start}`;
}
