import { boundScore } from '../evidence.js';
import type { RateRule } from '../rule-set.js';
import { fmt, type Detector } from './detector.js';

/**
 * A rise faster than `maxPerMinute`: the least-squares slope over the window, when the
 * readings follow a line (R² at least `minFit`); a noisy sensor's scatter has steep slopes
 * through it that are no rise at all.
 */
export const rate: Detector<RateRule, null> = {
  init: () => null,
  window(rule, _state, view) {
    if (view.stats === undefined || view.stats.count < rule.minReadings) return undefined;
    const trend = view.stats.trend();
    if (trend === undefined) return undefined;
    const slope = trend.perMinute;
    return {
      breach: slope > rule.maxPerMinute && trend.fit >= rule.minFit,
      observed: slope,
      expected: rule.maxPerMinute,
      score: boundScore((slope / rule.maxPerMinute) * Math.min(1, trend.fit / rule.minFit)),
      message: () => `${rule.sensor} rising ${fmt(slope)}/min, limit ${rule.maxPerMinute}/min`,
    };
  },
};
