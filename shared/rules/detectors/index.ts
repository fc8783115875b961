import type { Rule } from '../rule-set.js';
import { context } from './context.js';
import { deviation } from './deviation.js';
import type { Detector } from './detector.js';
import { dropout } from './dropout.js';
import { jump } from './jump.js';
import { rate } from './rate.js';
import { stuck } from './stuck.js';
import { threshold } from './threshold.js';

/** Every rule type the rules file may name, and the detector that evaluates it. */
export const DETECTORS: { [T in Rule['type']]: Detector<Extract<Rule, { type: T }>, unknown> } = {
  threshold,
  rate,
  deviation,
  context,
  stuck,
  dropout,
  jump,
};

export function detectorOf(rule: Rule): Detector<Rule, unknown> {
  return DETECTORS[rule.type];
}
