import type { Reading, SensorId } from '../../contract/reading.js';
import type { Rule } from '../rule-set.js';
import type { WindowStats } from '../window.js';

/** One rule's verdict on one closed window. */
export interface Verdict {
  breach: boolean;
  observed: number;
  /** What the rule expected or allowed, in the sensor's unit (°C/min for rate rules). */
  expected: number;
  /** 0 normal, 0.5 at the rule's bound, toward 1 beyond it (see evidence.ts). */
  score: number;
  /** Words for the alert; a function, since only a window that raises an alert needs them. */
  message: () => string;
}

/** What a rule may look at when a window of its vehicle closes. */
export interface WindowView {
  start: number;
  end: number;
  /** The rule's sensor's readings in this window; undefined when there were none. */
  stats: WindowStats | undefined;
  /** Mean of another sensor's newest closed window, if it has had one. */
  latest(sensor: SensorId): number | undefined;
  /** Event time of a sensor's newest reading. */
  lastSeen(sensor: SensorId): number | undefined;
  windowMs: number;
}

/**
 * A rule type. Its per-(vehicle, rule) state is plain data, so the engine's state can be
 * snapshotted as JSON and restored by a detector that takes the vehicle over.
 */
export interface Detector<R extends Rule, S> {
  init(rule: R): S;
  /** Sees every reading of the rule's sensor as it arrives (for rules about single readings). */
  reading?(rule: R, state: S, r: Reading, previous: Reading | undefined): void;
  /**
   * Judges a closed window. `inEpisode` is true while an episode of this rule is open:
   * a rule that learns what is normal must not learn from it. Undefined: no judgement.
   */
  window(rule: R, state: S, view: WindowView, inEpisode: boolean): Verdict | undefined;
  /** A breach has lasted the rule's levelShiftAfterWindows: take the present as the new normal. */
  relearn?(rule: R, state: S): void;
}

export const fmt = (x: number): string => (Math.round(x * 100) / 100).toString();
