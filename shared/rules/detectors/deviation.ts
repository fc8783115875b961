import { boundScore, ewAlpha, judge, learn, newEvidence, settle, tailLog10, type EvidenceState } from '../evidence.js';
import type { DeviationRule } from '../rule-set.js';
import { fmt, type Detector, type Verdict } from './detector.js';

export interface DeviationState {
  /** The vehicle's own normal level: a robust EWMA of window means. */
  level: number;
  windows: number;
  evidence: EvidenceState;
  /** Window means since the breach began, for the level a shift settles at. */
  recent: number;
  /** The settleOn sensor's value last seen (null: silent; absent: not yet looked), and windows left to settle after it changed. */
  reference?: number | null;
  settling: number;
}

/**
 * Deviation from the vehicle's own normal. The level follows the data with the rule's
 * half-life but only from windows that were not anomalous (a slow fault cannot teach the
 * rule that it is normal), and moves at most a few standard deviations per window (one
 * outlier cannot drag it). The innovation (mean − level) goes through calibrated evidence:
 * several horizons, each judged against its own spread on this series.
 */
export const deviation: Detector<DeviationRule, DeviationState> = {
  init: () => ({ level: 0, windows: 0, evidence: newEvidence(), recent: 0, settling: 0 }),

  window(rule, s, view, inEpisode): Verdict | undefined {
    if (view.stats === undefined) return undefined;
    const mean = view.stats.mean;
    if (s.windows === 0) s.level = mean;
    if (rule.settleOn !== undefined) {
      // A new value, or the reference falling silent (a reefer switched off), announces a new normal.
      const ref = view.latest(rule.settleOn) ?? null;
      if (s.reference !== undefined && ref !== s.reference) s.settling = rule.settleWindows;
      s.reference = ref;
    }
    if (s.settling > 0 && !inEpisode) {
      // A new normal was announced: follow the data, keep the learnt scale, judge nothing.
      s.settling--;
      s.level = mean;
      settle(s.evidence);
      return undefined;
    }
    const innovation = mean - s.level;
    const warm = s.windows >= rule.warmupWindows;
    const j = judge(s.evidence, innovation, rule, warm);
    const breach = warm && j.u > rule.k;
    s.recent = inEpisode || breach ? s.recent + ewAlpha(2) * (mean - s.recent) : mean;
    // While warming up every window teaches; after that only windows unremarkable either way.
    if (!warm || (!inEpisode && !breach && j.uEither <= rule.k)) {
      learn(s.evidence, innovation, rule.halfLifeWindows);
      s.windows++;
      const a = Math.max(1 / s.windows, ewAlpha(rule.halfLifeWindows));
      // Once trusted, one odd window moves the level at most a few standard deviations' worth.
      s.level += a * (warm ? Math.max(-4 * j.std, Math.min(4 * j.std, innovation)) : innovation);
    }
    if (!warm) return undefined;
    return {
      breach,
      observed: mean,
      expected: s.level,
      score: boundScore(tailLog10(j.u) / tailLog10(rule.k)),
      message: () => `${rule.sensor} mean ${fmt(mean)} is ${fmt(j.z)} std from this vehicle's normal ${fmt(s.level)} (evidence ${fmt(j.u)}, limit ${rule.k})`,
    };
  },

  relearn(_rule, s) {
    s.level = s.recent;
    settle(s.evidence);
  },
};
