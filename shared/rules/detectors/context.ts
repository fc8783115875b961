import { sensorSpec } from '../../contract/reading.js';
import { boundScore, evidenceWorth, ewAlpha, judge, learn, newEvidence, settle, type EvidenceState } from '../evidence.js';
import type { ContextRule } from '../rule-set.js';
import { fmt, type Detector, type Verdict } from './detector.js';

export interface ContextState {
  /** Per input, its smoothed means over each of the rule's lags. */
  smoothed: number[][];
  /** Recursive least squares: weights and the inverse correlation matrix (row-major). */
  w: number[];
  p: number[];
  /** Windows learnt from. */
  windows: number;
  /** Accepted at a level shift: what the relation no longer explains. */
  offset: number;
  recent: number;
  evidence: EvidenceState;
}

/** Starting uncertainty of the weights: inputs are scaled to about [0, 1]. */
const P0 = 100;
/** Forgetting lets the inverse correlation grow where the inputs do not vary; this caps it. */
const MAX_TRACE = 1e6;

/**
 * The sensor as its context explains it: e.g. an engine's coolant temperature from its
 * load, speed, rpm and the air temperature, now and smoothed over the lags (heat takes
 * minutes to show). The relation is learnt online for each vehicle by recursive least
 * squares with forgetting, from windows that were normal; the residual (observed minus
 * expected) is judged as calibrated evidence. This tells a failing radiator fan on a slow
 * climb (hot for the load) from a normal climb (hot because of the load).
 */
export const context: Detector<ContextRule, ContextState> = {
  init(rule) {
    const d = features(rule);
    const p = new Array<number>(d * d).fill(0);
    for (let i = 0; i < d; i++) p[i * d + i] = P0;
    return {
      smoothed: rule.inputs.map(() => rule.lagsWindows.map(() => NaN)),
      w: new Array<number>(d).fill(0),
      p,
      windows: 0,
      offset: 0,
      recent: 0,
      evidence: newEvidence(),
    };
  },

  window(rule, s, view, inEpisode): Verdict | undefined {
    const phi = [1];
    for (let i = 0; i < rule.inputs.length; i++) {
      const input = rule.inputs[i]!;
      const x = view.latest(input);
      if (x === undefined) return undefined;
      const [lo, hi] = sensorSpec(input).range;
      const scaled = (x - lo) / (hi - lo);
      phi.push(scaled);
      const sm = s.smoothed[i]!;
      rule.lagsWindows.forEach((lag, l) => {
        sm[l] = Number.isNaN(sm[l]!) ? scaled : sm[l]! + ewAlpha(lag) * (scaled - sm[l]!);
        phi.push(sm[l]);
      });
    }
    if (view.stats === undefined) return undefined;
    const y = view.stats.mean;
    if (rule.whenAbove !== undefined && y < rule.whenAbove) return undefined;
    const expected = dot(s.w, phi) + s.offset;
    const residual = y - expected;
    const warm = s.windows >= rule.warmupWindows;
    const j = judge(s.evidence, residual, rule, warm);
    const breach = warm && j.u > rule.k;
    s.recent = inEpisode || breach ? s.recent + ewAlpha(2) * (residual - s.recent) : residual;
    // While warming up every window teaches; after that only windows unremarkable either way.
    if (!warm || (!inEpisode && !breach && j.uEither <= rule.k)) {
      learn(s.evidence, residual, rule.halfLifeWindows);
      // Once trusted, one odd window moves the relation at most a few standard deviations' worth.
      const e = warm ? Math.max(-4 * j.std, Math.min(4 * j.std, residual)) : residual;
      update(s, phi, e, 0.5 ** (1 / rule.memoryWindows));
      s.windows++;
    }
    if (!warm) return undefined;
    return {
      breach,
      observed: y,
      expected,
      score: boundScore(evidenceWorth(j.u, rule.k)),
      message: () =>
        `${rule.sensor} mean ${fmt(y)} where ${rule.inputs.join(', ')} make ${fmt(expected)} normal for this vehicle (${fmt(j.z)} std, evidence ${fmt(j.u)}, limit ${rule.k})`,
    };
  },

  relearn(_rule, s) {
    s.offset += s.recent;
    settle(s.evidence);
  },
};

function features(rule: ContextRule): number {
  return 1 + rule.inputs.length * (1 + rule.lagsWindows.length);
}

function dot(a: number[], b: number[]): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** One step of exponentially weighted recursive least squares toward residual `e`. */
function update(s: ContextState, phi: number[], e: number, lambda: number): void {
  const d = phi.length;
  const p = s.p;
  const pPhi = new Array<number>(d).fill(0);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) pPhi[i]! += p[i * d + k]! * phi[k]!;
  const denom = lambda + dot(phi, pPhi);
  let trace = 0;
  for (let i = 0; i < d; i++) {
    const gain = pPhi[i]! / denom;
    s.w[i]! += gain * e;
    for (let k = 0; k < d; k++) p[i * d + k] = (p[i * d + k]! - gain * pPhi[k]!) / lambda;
    trace += p[i * d + i]!;
  }
  if (trace > MAX_TRACE) for (let i = 0; i < d * d; i++) p[i]! *= MAX_TRACE / trace;
}
