import type { Reading } from '../../contract/reading.js';
import { boundScore } from '../evidence.js';
import type { JumpRule } from '../rule-set.js';
import { fmt, type Detector } from './detector.js';

export interface JumpState {
  /** The largest step of the window, as a multiple of the step allowed; and how many exceeded it. */
  worst: number;
  worstStep: number;
  jumps: number;
}

/**
 * A reading that differs from the one before by more than the physics allows: a
 * temperature stepping ten degrees in a second, a truck "moving" 20 km between two GPS
 * fixes. Spikes, loose contacts and position glitches look like this; real change does not.
 */
export const jump: Detector<JumpRule, JumpState> = {
  init: () => ({ worst: 0, worstStep: 0, jumps: 0 }),

  reading(rule, s, r, previous) {
    if (previous === undefined || r.quality === 'bad' || previous.quality === 'bad') return;
    const dtS = Math.max(0, (r.ts - previous.ts) / 1000);
    const step = stepBetween(previous, r);
    const allowed = rule.tolerance + rule.maxPerSecond * dtS;
    const ratio = allowed === 0 ? (step > 0 ? Infinity : 0) : step / allowed;
    if (ratio > 1) s.jumps++;
    if (ratio > s.worst) {
      s.worst = ratio;
      s.worstStep = step;
    }
  },

  window(rule, s, view) {
    if (view.stats === undefined) return undefined;
    const { worst, worstStep, jumps } = s;
    s.worst = 0;
    s.worstStep = 0;
    s.jumps = 0;
    const unit = rule.sensor === 'gps' ? ' m' : '';
    return {
      breach: jumps > 0,
      observed: worstStep,
      expected: rule.tolerance,
      score: boundScore(Math.min(worst, 1e6)),
      message: () =>
        `${rule.sensor} jumped ${fmt(worstStep)}${unit} between readings, ${jumps} time(s) in the window (${fmt(worst)}× what is possible)`,
    };
  },
};

const EARTH_RADIUS_M = 6_371_000;

/** The step between consecutive readings: metres between fixes for gps, else the change in value. */
function stepBetween(a: Reading, b: Reading): number {
  if (a.position === undefined || b.position === undefined) return Math.abs(b.value - a.value);
  const rad = Math.PI / 180;
  const dLat = (b.position.lat - a.position.lat) * rad;
  const dLon = (b.position.lon - a.position.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.position.lat * rad) * Math.cos(b.position.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}
