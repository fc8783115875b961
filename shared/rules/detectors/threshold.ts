import { boundScore } from '../evidence.js';
import type { ThresholdRule } from '../rule-set.js';
import { fmt, type Detector, type Verdict } from './detector.js';

/** The window mean above `above` or below `below`, optionally relative to another sensor (e.g. the set point). */
export const threshold: Detector<ThresholdRule, null> = {
  init: () => null,
  window(rule, _state, view, inEpisode): Verdict | undefined {
    if (view.stats === undefined) return undefined;
    const ref = rule.reference === undefined ? 0 : view.latest(rule.reference);
    if (ref === undefined) return undefined;
    const mean = view.stats.mean;
    const x = mean - ref;
    const of = rule.reference === undefined ? '' : ` over ${rule.reference} ${fmt(ref)}`;
    // With both bounds, the nearer one is the one that matters.
    const useAbove = rule.above !== undefined && (rule.below === undefined || x >= (rule.above + rule.below) / 2);
    if (useAbove) {
      const bound = rule.above!;
      return {
        breach: x > bound - (inEpisode ? rule.hysteresis : 0),
        observed: mean,
        expected: ref + bound,
        score: boundScore(1 + (x - bound) / rule.scoreSpan),
        message: () => `${rule.sensor} mean ${fmt(mean)} above ${fmt(ref + bound)}${of ? ` (${fmt(bound)}${of})` : ''}`,
      };
    }
    const bound = rule.below!;
    return {
      breach: x < bound + (inEpisode ? rule.hysteresis : 0),
      observed: mean,
      expected: ref + bound,
      score: boundScore(1 + (bound - x) / rule.scoreSpan),
      message: () => `${rule.sensor} mean ${fmt(mean)} below ${fmt(ref + bound)}${of ? ` (${fmt(bound)}${of})` : ''}`,
    };
  },
};
