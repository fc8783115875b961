import { boundScore } from '../evidence.js';
import type { StuckRule } from '../rule-set.js';
import { fmt, type Detector } from './detector.js';

export interface StuckState {
  /** The value the sensor has repeated, and for how many windows in a row. */
  value: number;
  windows: number;
}

/**
 * A flat line: every reading of `forWindows` windows in a row within `tolerance` of one
 * value. A live sensor always moves in its last digit sooner or later; a frozen one
 * (a stuck ADC, a cached OBD answer) never does. The episode lasts while it stays flat.
 */
export const stuck: Detector<StuckRule, StuckState> = {
  init: () => ({ value: NaN, windows: 0 }),
  window(rule, s, view) {
    const w = view.stats;
    if (w === undefined) return undefined;
    const flat = w.count >= 2 && w.max - w.min <= rule.tolerance && (s.windows === 0 || Math.abs(w.mean - s.value) <= rule.tolerance);
    if (flat) {
      if (s.windows === 0) s.value = w.mean;
      s.windows++;
    } else {
      s.windows = 0;
    }
    // The engine's forWindows debounce does the counting; each flat window is a breach.
    return {
      breach: flat,
      observed: w.mean,
      expected: w.mean,
      score: flat ? boundScore(s.windows / rule.forWindows) : 0,
      message: () => `${rule.sensor} has read ${fmt(s.value)} and nothing else for ${s.windows} windows`,
    };
  },
};
