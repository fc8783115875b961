import type { Direction } from './rule-set.js';

/**
 * Scores: every rule reports how anomalous a window is on one scale, so rules and series
 * can be compared and ranked. 0 is normal, 0.5 is exactly at the rule's bound, and x
 * bounds' worth of evidence scores x / (1 + x): twice the bound 0.67, ten times 0.91. It
 * never reaches 1, even in floating point, so a huge deviation still ranks above a large one.
 */
export function boundScore(boundsWorth: number): number {
  return boundsWorth <= 0 ? 0 : boundsWorth / (1 + boundsWorth);
}

/**
 * The bounds' worth of calibrated evidence `u` against a rule's bound `k`: logarithmic, so
 * that evidence of any size (a step on a noiseless series is astronomically many standard
 * deviations) still scores below 1 and keeps its rank.
 */
export function evidenceWorth(u: number, k: number): number {
  return Math.log1p(Math.max(0, u)) / Math.log1p(k);
}

/** The bounds' worth of evidence a score stands for: boundScore's inverse. */
export function boundsWorth(score: number): number {
  return score / (1 - score);
}

/** The EWMA weight that halves an observation's influence after `halfLife` updates. */
export function ewAlpha(halfLife: number): number {
  return 1 - 0.5 ** (1 / halfLife);
}

/**
 * Averaging horizons, in windows: the window alone catches a spike, the longer ones a
 * shift too small to see in one window but persistent. The statistic is the largest of
 * them, each standardised by its own observed spread.
 */
const HORIZONS = [1, 4, 16, 64] as const;
const ALPHAS = HORIZONS.map((h) => (h === 1 ? 1 : ewAlpha(h / 2)));
/** How many standard deviations one window's innovation counts for at most in the longer horizons. */
const CLIP = 4;
/** How far the window itself must be off for the longer horizons to count. */
const OWN_STD = 2;
/** Median absolute deviation to standard deviation, for normal data. */
const MAD_TO_STD = 1.4826;

/** The state of Evidence: plain data, so an engine snapshot is JSON. */
export interface EvidenceState {
  /** Innovations judged, and those learnt from as normal. */
  judged: number;
  learnt: number;
  /** Running median of the absolute innovation of normal windows: the scale. */
  mad: number;
  /** Per horizon: EW mean of z, and the running median of its absolute value (its observed spread). */
  mean: number[];
  spread: number[];
}

export function newEvidence(): EvidenceState {
  return { judged: 0, learnt: 0, mad: 0, mean: HORIZONS.map(() => 0), spread: HORIZONS.map(() => 0) };
}

export interface Judgement {
  /** Standardised evidence: how many of its own standard deviations the most telling horizon is out, in the rule's direction. */
  u: number;
  /** The same in either direction: a window far off the other way is no breach, but no normal to learn from either. */
  uEither: number;
  /** Signed innovation in standard deviations. */
  z: number;
  std: number;
}

/**
 * Calibrated evidence from a stream of innovations (what a rule's model did not expect).
 * This is the anomaly-likelihood idea: the innovation is standardised by a robust scale,
 * averaged over several horizons, and each average is judged against the spread that
 * average itself shows on this series. So a noisy series, an autocorrelated one and a
 * clean one end up on the same footing, with nothing tuned per series. Scales are running
 * medians: excursions that come and go (a reefer's defrost, a door opened) do not widen
 * them; the rule's persistence (forWindows) is what keeps such excursions from alerting.
 */
export function judge(
  s: EvidenceState,
  innovation: number,
  opts: { minStd: number; direction: Direction; memoryWindows: number },
  /** False while the rule warms up: its scale is not known yet, so its z says nothing about spreads. */
  warm: boolean,
): Judgement {
  const std = Math.max(s.mad * MAD_TO_STD, opts.minStd);
  const z = innovation / std;
  let u = 0;
  let uEither = 0;
  if (warm) s.judged++;
  const step = medianStep(s.judged, opts.memoryWindows);
  for (let i = 0; i < HORIZONS.length; i++) {
    const h = ALPHAS[i]!;
    // Longer horizons average clipped z: they are for shifts that persist, and one spike
    // must not keep them raised for long after it.
    const m = (s.mean[i] = h === 1 ? z : s.mean[i]! + h * (Math.max(-CLIP, Math.min(CLIP, z)) - s.mean[i]!));
    // Under independent normal innovations an EW mean of z has standard deviation
    // √(h / (2 − h)); the observed spread can only make the test stricter, never looser.
    const iid = Math.sqrt(h / (2 - h));
    const spread = Math.max(iid, s.spread[i]! * MAD_TO_STD);
    const signed = opts.direction === 'above' ? m : opts.direction === 'below' ? -m : Math.abs(m);
    u = Math.max(u, signed / spread);
    uEither = Math.max(uEither, Math.abs(m) / spread);
    // The spread starts from what independent normal innovations would give, not from the
    // first value seen, which a start far from normal could make huge.
    if (warm) s.spread[i] = runningMedian(s.spread[i]! > 0 ? s.spread[i]! : iid / MAD_TO_STD, Math.abs(m), step);
  }
  // The longer horizons confirm what the window shows; they never accuse a window that is
  // itself within OWN_STD standard deviations: the tail of an excursion that has passed, or
  // an offset too small to matter however long it lasts.
  const own = opts.direction === 'above' ? z : opts.direction === 'below' ? -z : Math.abs(z);
  if (own < OWN_STD) u = Math.min(u, Math.max(0, own));
  if (Math.abs(z) < OWN_STD) uEither = Math.min(uEither, Math.abs(z));
  return { u, uEither, z, std };
}

/** Takes a judged innovation as normal: it shapes the scale, which follows the data with the rule's half-life. */
export function learn(s: EvidenceState, innovation: number, halfLifeWindows: number): void {
  s.learnt++;
  s.mad = runningMedian(s.mad, Math.abs(innovation), medianStep(s.learnt, halfLifeWindows));
}

/** Forgets the averaged evidence (not the learnt scale): after a level shift the new level starts from normal. */
export function settle(s: EvidenceState): void {
  s.mean.fill(0);
}

/**
 * A running median: the estimate moves up or down by a fixed ratio, settling where half
 * the values lie above it; ratio steps make it follow a scale of any size equally well.
 */
export function runningMedian(q: number, x: number, step: number): number {
  if (q <= 0) return x;
  return Math.max(1e-12, q * Math.exp(x > q ? step : -step));
}

/**
 * Large steps while little is known (their sum grows like ln n, so any starting guess is
 * left behind), then the rule's memory: a persistent anomaly must not teach the scale
 * within the hour it takes to alert on it.
 */
export function medianStep(n: number, memory: number): number {
  return Math.max(ewAlpha(memory), 1 / n);
}
