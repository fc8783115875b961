import {
  boundScore,
  evidenceWorth,
  ewAlpha,
  judge,
  learn,
  medianStep,
  newEvidence,
  runningMedian,
  settle,
  type EvidenceState,
} from '../evidence.js';
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
  /** The series' typical size (running median of |mean|), for minStdFraction. */
  magnitude: number;
  season?: Season;
}

/**
 * The same normal with a daily shape: a level of its own (what the day's shape leaves) and,
 * per bin of the day, the usual offset from it (Holt-Winters' additive form). Both models
 * learn side by side; the seasonal one is used once it explains the data better, by the
 * running medians of the two innovations.
 */
interface Season {
  level: number;
  offset: number[];
  days: number[];
  lastDay: number[];
  plainError: number;
  seasonalError: number;
}

const DAY_MS = 86_400_000;
/** Bins no shorter than this: a daily shape needs a few windows per bin to be learnt from. */
const MIN_BIN_MS = 15 * 60_000;
/** Days a bin must have been seen on before its offset is believed. */
const SEASON_DAYS = 2;
/** How much smaller the seasonal innovation must be, to be worth using. */
const SEASON_GAIN = 0.8;
/** Each day's pass over a bin moves its offset this much of the way (a half-life of about three days). */
const SEASON_ALPHA = ewAlpha(3);

/**
 * Deviation from the vehicle's own normal. The level follows the data with the rule's
 * half-life but only from windows that were not anomalous (a slow fault cannot teach the
 * rule that it is normal), and moves at most a few standard deviations per window (one
 * outlier cannot drag it); with `seasonality: auto` the normal also has a daily shape once
 * the data shows one. The innovation (mean − expected) goes through calibrated evidence:
 * several horizons, each judged against its own spread on this series.
 */
export const deviation: Detector<DeviationRule, DeviationState> = {
  init: () => ({ level: 0, windows: 0, evidence: newEvidence(), recent: 0, settling: 0, magnitude: 0 }),

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
    const bin = rule.seasonality === 'auto' ? binOf(view.start, view.windowMs) : undefined;
    if (bin !== undefined) s.season ??= newSeason(DAY_MS / binMs(view.windowMs), mean);
    const seasonal = bin !== undefined && usesShape(s.season!, bin);
    const expected = seasonal ? s.season!.level + s.season!.offset[bin]! : s.level;
    const innovation = mean - expected;
    const warm = s.windows >= rule.warmupWindows;
    const minStd = Math.max(rule.minStd, rule.minStdFraction * s.magnitude);
    const j = judge(s.evidence, innovation, { ...rule, minStd }, warm);
    const breach = warm && j.u > rule.k;
    s.recent = inEpisode || breach ? s.recent + ewAlpha(2) * (mean - s.recent) : mean;
    // While warming up every window teaches; after that only windows unremarkable either way.
    if (!warm || (!inEpisode && !breach && j.uEither <= rule.k)) {
      learn(s.evidence, innovation, rule.halfLifeWindows);
      s.windows++;
      s.magnitude = runningMedian(s.magnitude, Math.abs(mean), medianStep(s.windows, rule.halfLifeWindows));
      const a = Math.max(1 / s.windows, ewAlpha(rule.halfLifeWindows));
      // Once trusted, one odd window moves a level at most a few standard deviations' worth.
      const clip = (x: number) => (warm ? Math.max(-4 * j.std, Math.min(4 * j.std, x)) : x);
      if (bin !== undefined)
        learnSeason(s.season!, bin, Math.floor(view.start / DAY_MS), mean, s.level, a, clip, medianStep(s.windows, rule.memoryWindows));
      s.level += a * clip(mean - s.level);
    }
    if (!warm) return undefined;
    return {
      breach,
      observed: mean,
      expected,
      score: boundScore(evidenceWorth(j.u, rule.k)),
      message: () =>
        `${rule.sensor} mean ${fmt(mean)} is ${fmt(j.z)} std from this vehicle's normal ${fmt(expected)} (evidence ${fmt(j.u)}, limit ${rule.k})`,
    };
  },

  relearn(_rule, s) {
    // The new normal is the present, in both models: the daily shape stays as learnt.
    if (s.season !== undefined) s.season.level += s.recent - s.level;
    s.level = s.recent;
    settle(s.evidence);
  },
};

function binMs(windowMs: number): number {
  return Math.max(windowMs, MIN_BIN_MS);
}

/** The window's bin of the day; undefined when windows are too long for a daily shape (fewer than four a day). */
function binOf(windowStart: number, windowMs: number): number | undefined {
  const size = binMs(windowMs);
  if (DAY_MS / size < 4) return undefined;
  return Math.floor((windowStart % DAY_MS) / size);
}

function newSeason(bins: number, level: number): Season {
  const n = Math.ceil(bins);
  return {
    level,
    offset: new Array<number>(n).fill(0),
    days: new Array<number>(n).fill(0),
    lastDay: new Array<number>(n).fill(-1),
    plainError: 0,
    seasonalError: 0,
  };
}

/** Whether to judge by the daily shape here: the bin is known, and the shape has earned its place. */
function usesShape(season: Season, bin: number): boolean {
  return season.days[bin]! >= SEASON_DAYS && season.seasonalError < SEASON_GAIN * season.plainError;
}

function learnSeason(
  season: Season,
  bin: number,
  day: number,
  mean: number,
  plainLevel: number,
  a: number,
  clip: (x: number) => number,
  step: number,
): void {
  if (season.days[bin]! >= SEASON_DAYS) {
    season.plainError = runningMedian(season.plainError, Math.abs(mean - plainLevel), step);
    season.seasonalError = runningMedian(season.seasonalError, Math.abs(mean - season.level - season.offset[bin]!), step);
  }
  if (season.lastDay[bin] !== day) {
    season.lastDay[bin] = day;
    season.days[bin]!++;
  }
  season.level += a * clip(mean - season.offset[bin]! - season.level);
  const g = season.days[bin] === 1 ? 1 : SEASON_ALPHA;
  season.offset[bin]! += g * (mean - season.level - season.offset[bin]!);
}
