import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RuleSet } from '../../shared/rules/rule-set.js';
import { EVAL_FAULTS, type EvalFault } from '../../simulators/truck-day.js';
import type { DayResult, DaySpec } from './score-day.js';
import { SCORE_BINS } from './score-day.js';

export const SEED_SETS = ['tuning', 'held-out'] as const;
export type SeedSet = (typeof SEED_SETS)[number];

/** How many truck-days: fault-free ones, and faulted ones per fault type. */
export interface EvalSize {
  faultFree: number;
  perFault: number;
}

export const QUICK: EvalSize = { faultFree: 40, perFault: 20 };
export const FULL: EvalSize = { faultFree: 200, perFault: 60 };

const DAY_MS = 86_400_000;
const FIRST_DAY = Date.UTC(2025, 0, 1);
/**
 * Seeds: the tuning set is what rules may be adjusted on; the held-out set starts a
 * million seeds away and is only ever reported, so its figures are a fair estimate.
 */
const SEED_BASE: Record<SeedSet, number> = { tuning: 1, 'held-out': 1_000_001 };

export function evalDays(set: SeedSet, size: EvalSize): DaySpec[] {
  const base = SEED_BASE[set];
  const days: DaySpec[] = [];
  for (let i = 0; i < size.faultFree; i++) days.push({ seed: base + i, dayStart: FIRST_DAY + (i % 365) * DAY_MS });
  EVAL_FAULTS.forEach((fault, j) => {
    for (let i = 0; i < size.perFault; i++)
      days.push({ seed: base + 100_000 * (j + 1) + i, dayStart: FIRST_DAY + (i % 365) * DAY_MS, fault });
  });
  return days;
}

export interface FaultFigures {
  fault: EvalFault;
  instances: number;
  detected: number;
  recall: number;
  /** Minutes from the fault's onset to the first alert that detects it. */
  medianDetectMin?: number;
  p95DetectMin?: number;
  /** Overheats only: windows from the first window whose mean crossed the bound to the alert (1 = that window's close). */
  medianWindowsAfterCrossing?: number;
}

export interface SetFigures {
  set: SeedSet;
  days: number;
  faultFreeDays: number;
  readings: number;
  faults: FaultFigures[];
  /** Alerts raised on fault-free days, per truck-day. */
  falseAlertsPerDay: number;
  falseAlertsByRule: Record<string, number>;
  alerts: number;
  precision: number;
  recall: number;
  f1: number;
  /** Share of the readings of fault-free days whose score exceeds 0.9. */
  normalRowsAbove09: number;
  /** Area under the precision-recall curve of the row scores against the labels. */
  aucPr: number;
}

export interface EvalOptions {
  rules: RuleSet;
  size: EvalSize;
  sets?: readonly SeedSet[];
  workers?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function runEval(opts: EvalOptions): Promise<SetFigures[]> {
  const sets = opts.sets ?? SEED_SETS;
  const specs = sets.flatMap((set) => evalDays(set, opts.size).map((d) => ({ set, ...d })));
  const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), specs.length));
  const results = new Map<SeedSet, DayResult[]>(sets.map((s) => [s, []]));
  let done = 0;
  // Interleaved, so the workers' loads stay even whatever each fault costs.
  await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const mine = specs.filter((_, i) => i % workers === w);
      return new Promise<void>((resolve, reject) => {
        const worker = new Worker(new URL('./eval-worker.js', import.meta.url), { workerData: { days: mine, rules: opts.rules } });
        let k = 0;
        worker.on('message', (r: DayResult) => {
          results.get(mine[k++]!.set)!.push(r);
          opts.onProgress?.(++done, specs.length);
        });
        worker.on('error', reject);
        worker.on('exit', (code) =>
          code === 0 && k === mine.length
            ? resolve()
            : reject(new Error(`evaluation worker exited with code ${code} after ${k} of ${mine.length} days`)),
        );
      });
    }),
  );
  return sets.map((set) => figures(set, results.get(set)!, opts.rules.windowMs));
}

export function figures(set: SeedSet, days: DayResult[], windowMs: number): SetFigures {
  const faultFree = days.filter((d) => d.fault === undefined);
  const falseAlertsByRule: Record<string, number> = {};
  for (const d of faultFree) for (const [rule] of d.alerts) falseAlertsByRule[rule] = (falseAlertsByRule[rule] ?? 0) + 1;
  const faults = EVAL_FAULTS.map((fault) =>
    faultFigures(
      fault,
      days.filter((d) => d.fault === fault),
      windowMs,
    ),
  ).filter((f) => f.instances > 0);
  const alerts = days.reduce((n, d) => n + d.alerts.length, 0);
  const matched = days.reduce((n, d) => n + d.alerts.filter((a) => a[3]).length, 0);
  const instances = faults.reduce((n, f) => n + f.instances, 0);
  const detected = faults.reduce((n, f) => n + f.detected, 0);
  const precision = alerts === 0 ? 1 : matched / alerts;
  const recall = instances === 0 ? 1 : detected / instances;
  const normal = sumBins(days.map((d) => d.normalRows));
  const faulty = sumBins(days.map((d) => d.faultRows));
  // Rows of fault-free days only: on a faulted day the fault's aftermath outlasts any label.
  const faultFreeRows = sumBins(faultFree.map((d) => d.normalRows));
  const normalTotal = faultFreeRows.reduce((a, b) => a + b, 0);
  const above09 = faultFreeRows.slice(Math.floor(0.9 * SCORE_BINS) + 1).reduce((a, b) => a + b, 0);
  return {
    set,
    days: days.length,
    faultFreeDays: faultFree.length,
    readings: days.reduce((n, d) => n + d.readings, 0),
    faults,
    falseAlertsPerDay: faultFree.length === 0 ? 0 : Object.values(falseAlertsByRule).reduce((a, b) => a + b, 0) / faultFree.length,
    falseAlertsByRule,
    alerts,
    precision,
    recall,
    f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
    normalRowsAbove09: normalTotal === 0 ? 0 : above09 / normalTotal,
    aucPr: aucPr(normal, faulty),
  };
}

function faultFigures(fault: EvalFault, days: DayResult[], windowMs: number): FaultFigures {
  const found = days.filter((d) => d.detectedAt !== undefined);
  const minutes = found.map((d) => (d.detectedAt! - d.faultFrom!) / 60_000).sort((a, b) => a - b);
  const out: FaultFigures = {
    fault,
    instances: days.length,
    detected: found.length,
    recall: days.length === 0 ? 0 : found.length / days.length,
  };
  if (minutes.length > 0) {
    out.medianDetectMin = quantile(minutes, 0.5);
    out.p95DetectMin = quantile(minutes, 0.95);
  }
  const crossings = found
    .filter((d) => d.crossedAt !== undefined)
    .map((d) => Math.max(1, (d.detectedAt! - d.crossedAt!) / windowMs))
    .sort((a, b) => a - b);
  if (crossings.length > 0) out.medianWindowsAfterCrossing = quantile(crossings, 0.5);
  return out;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function sumBins(all: number[][]): number[] {
  const out = new Array<number>(SCORE_BINS + 1).fill(0);
  for (const bins of all) bins.forEach((n, i) => (out[i]! += n));
  return out;
}

/**
 * Area under the precision-recall curve of row scores, from the score histograms: the
 * threshold sweeps down from the highest bin, and each step adds its recall gained times
 * the precision there (the step-wise "average precision").
 */
function aucPr(normal: number[], faulty: number[]): number {
  const positives = faulty.reduce((a, b) => a + b, 0);
  if (positives === 0) return 0;
  let tp = 0;
  let fp = 0;
  let area = 0;
  for (let bin = SCORE_BINS; bin >= 0; bin--) {
    const gained = faulty[bin]!;
    tp += gained;
    fp += normal[bin]!;
    if (gained > 0) area += (gained / positives) * (tp / (tp + fp));
  }
  return area;
}
