import type { Alert } from '../../shared/contract/alert.js';
import { RuleEngine } from '../../shared/rules/engine.js';
import type { RuleSet } from '../../shared/rules/rule-set.js';
import { dayReadings, DAY_MS, truckDay, type EvalFault } from '../../simulators/truck-day.js';

/** Score histograms have this many bins on [0, 1]. */
export const SCORE_BINS = 1000;
/** An alert this long after a fault ends still counts as detecting it (the window that shows it closes late). */
export const GRACE_MS = 5 * 60_000;

/** One scored truck-day, as the evaluation needs it: small, plain data (it crosses worker threads). */
export interface DayResult {
  seed: number;
  fault?: EvalFault;
  /** Alerts raised on the scored day: [rule, sensor, windowEnd, matched the fault]. */
  alerts: [string, string, number, boolean][];
  /** When the fault began and, if detected, the first matching alert's window end. */
  faultFrom?: number;
  detectedAt?: number;
  /** For overheats: the start of the first window whose engine mean crossed 105 °C. */
  crossedAt?: number;
  /** Readings of scored windows by score bin, for rows labelled normal (outside the fault) and anomalous. */
  normalRows: number[];
  faultRows: number[];
  readings: number;
}

export interface DaySpec {
  seed: number;
  dayStart: number;
  fault?: EvalFault;
}

const OVERHEAT_BOUND = 105;

/**
 * Runs one truck-day through the rule engine exactly as the detector would (event time,
 * the day before as history), and scores it against the day's labels.
 */
export function scoreDay(spec: DaySpec, rules: RuleSet, windowMsOverride?: number): DayResult {
  const day = truckDay(spec.seed, spec.dayStart, spec.fault);
  const ruleSet = { ...rules, windowMs: windowMsOverride ?? rules.windowMs, freshnessMs: Number.MAX_SAFE_INTEGER };
  const engine = new RuleEngine(ruleSet);
  const fault = day.faults[0];
  const result: DayResult = {
    seed: spec.seed,
    alerts: [],
    normalRows: new Array<number>(SCORE_BINS + 1).fill(0),
    faultRows: new Array<number>(SCORE_BINS + 1).fill(0),
    readings: 0,
  };
  if (spec.fault !== undefined) result.fault = spec.fault;
  if (fault !== undefined) result.faultFrom = fault.from;
  const inFault = (sensor: string, start: number, end: number) =>
    fault !== undefined && fault.sensors.includes(sensor as never) && end > fault.from && start < fault.to + GRACE_MS;
  engine.onWindow = (w) => {
    if (w.end <= day.dayStart || w.count === 0) return;
    let score = 0;
    for (const s of Object.values(w.scores)) if (s > score) score = s;
    const bin = Math.min(SCORE_BINS, Math.floor(score * SCORE_BINS));
    (inFault(w.sensor, w.start, w.end) ? result.faultRows : result.normalRows)[bin]! += w.count;
    if (result.crossedAt === undefined && w.sensor === 'engine_temp' && w.mean > OVERHEAT_BOUND && inFault(w.sensor, w.start, w.end))
      result.crossedAt = w.start;
  };
  const onAlert = (a: Alert) => {
    if (a.windowEnd <= day.dayStart) return; // the day before is history, not scored
    const matched = inFault(a.sensor, a.windowStart, a.windowEnd);
    result.alerts.push([a.rule, a.sensor, a.windowEnd, matched]);
    if (matched && result.detectedAt === undefined) result.detectedAt = a.windowEnd;
  };
  for (const r of dayReadings(day, `truck-${spec.seed}`)) {
    if (r.ts >= day.dayStart) result.readings++;
    for (const e of engine.process(r, r.ts)) if (e.kind === 'raised') onAlert(e.alert);
  }
  for (const e of engine.flush(day.dayStart + DAY_MS)) if (e.kind === 'raised') onAlert(e.alert);
  return result;
}
