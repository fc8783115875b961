import type { DeviationRule, RateRule, Rule, ThresholdRule } from './rule-set.js';
import { Baseline, type WindowStats } from './window.js';

/** One rule's verdict on one closed window. */
export interface Verdict {
  breach: boolean;
  observed: number;
  expected: number;
  /** 0 = perfectly normal, 0.5 = at the rule's bound, 1 = far past it. */
  score: number;
  message: string;
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const fmt = (x: number) => (Math.round(x * 100) / 100).toString();

export function evaluate(rule: Rule, w: WindowStats, baseline: Baseline | undefined): Verdict | undefined {
  switch (rule.type) {
    case 'threshold':
      return threshold(rule, w);
    case 'rate':
      return rate(rule, w);
    case 'deviation':
      return deviation(rule, w, baseline!);
  }
}

function threshold(rule: ThresholdRule, w: WindowStats): Verdict {
  const mean = w.mean;
  if (rule.above !== undefined && (rule.below === undefined || mean >= rule.below)) {
    return {
      breach: mean > rule.above,
      observed: mean,
      expected: rule.above,
      score: clamp01(0.5 + (mean - rule.above) / (2 * rule.scoreSpan)),
      message: `${rule.sensor} mean ${fmt(mean)} above ${rule.above}`,
    };
  }
  const below = rule.below!;
  return {
    breach: mean < below,
    observed: mean,
    expected: below,
    score: clamp01(0.5 + (below - mean) / (2 * rule.scoreSpan)),
    message: `${rule.sensor} mean ${fmt(mean)} below ${below}`,
  };
}

function rate(rule: RateRule, w: WindowStats): Verdict | undefined {
  if (w.count < rule.minReadings) return undefined;
  const slope = w.slopePerMinute();
  if (slope === undefined) return undefined;
  return {
    breach: slope > rule.maxPerMinute,
    observed: slope,
    expected: rule.maxPerMinute,
    score: clamp01(slope / (2 * rule.maxPerMinute)),
    message: `${rule.sensor} rising ${fmt(slope)}/min, limit ${rule.maxPerMinute}/min`,
  };
}

/**
 * Deviation from the vehicle's own baseline. The baseline only learns from windows that
 * were not anomalous, so a slow fault cannot teach the detector that it is normal.
 */
function deviation(rule: DeviationRule, w: WindowStats, b: Baseline): Verdict | undefined {
  const mean = w.mean;
  if (b.windows < rule.warmupWindows) {
    b.update(mean, rule.halfLifeWindows, rule.warmupWindows);
    return undefined;
  }
  const std = Math.max(Math.sqrt(b.variance), rule.minStd);
  const z = Math.abs(mean - b.mean) / std;
  const breach = z > rule.k;
  const verdict: Verdict = {
    breach,
    observed: mean,
    expected: b.mean,
    score: clamp01(z / (2 * rule.k)),
    message: `${rule.sensor} mean ${fmt(mean)} is ${fmt(z)} std from this vehicle's normal ${fmt(b.mean)} (limit ${rule.k})`,
  };
  if (!breach) b.update(mean, rule.halfLifeWindows, rule.warmupWindows);
  return verdict;
}

export { Baseline };
