import { boundScore } from '../evidence.js';
import type { DropoutRule } from '../rule-set.js';
import type { Detector } from './detector.js';

/**
 * A sensor that was reporting has gone silent while the vehicle goes on reporting (or,
 * with `whileReporting`, while that sensor does: with the ignition off every OBD-II
 * sensor is silent together, which is no fault of one). Judged at every window end of
 * the vehicle, also those where the sensor has no readings.
 */
export const dropout: Detector<DropoutRule, null> = {
  init: () => null,
  window(rule, _state, view) {
    const last = view.lastSeen(rule.sensor);
    if (last === undefined) return undefined; // never reported: not fitted, nothing dropped
    if (rule.whileReporting !== undefined) {
      const other = view.lastSeen(rule.whileReporting);
      if (other === undefined || other < view.start) return undefined;
    }
    const silentMs = view.end - last;
    const limitMs = rule.afterWindows * view.windowMs;
    return {
      breach: silentMs >= limitMs,
      observed: silentMs / 1000,
      expected: limitMs / 1000,
      score: boundScore(silentMs / limitMs),
      message: () =>
        `${rule.sensor} silent for ${Math.round(silentMs / 1000)} s${rule.whileReporting ? ` while ${rule.whileReporting} reports` : ''} (limit ${limitMs / 1000} s)`,
    };
  },
};
