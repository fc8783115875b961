import { z } from 'zod';
import { SENSORS } from '../contract/reading.js';
import { SEVERITIES } from '../contract/alert.js';

/**
 * Rules are data: the same file drives the cloud detector, `fleet replay` and (later) the
 * agent's edge rules. Window and freshness live beside them because a rule's meaning
 * depends on the window it is evaluated over.
 */
const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be lower-case letters, digits, _ or -');
const common = {
  name,
  sensor: z.enum(SENSORS),
  severity: z.enum(SEVERITIES).default('warning'),
  /** Consecutive in-range windows that end an episode. */
  clearAfterWindows: z.number().int().min(1).default(1),
};

const threshold = z
  .object({
    ...common,
    type: z.literal('threshold'),
    above: z.number().optional(),
    below: z.number().optional(),
    /** How far past the bound the anomaly score reaches 1. */
    scoreSpan: z.number().positive().default(10),
  })
  .strict()
  .refine((r) => r.above !== undefined || r.below !== undefined, { message: 'a threshold rule needs "above" or "below"' });

const deviation = z
  .object({
    ...common,
    type: z.literal('deviation'),
    /** Standard deviations from the vehicle's own baseline that count as anomalous. */
    k: z.number().positive(),
    /** Floor on the baseline's spread, so a perfectly steady sensor does not alert on noise. */
    minStd: z.number().positive().default(0.5),
    /** Windows of history before the baseline is trusted. */
    warmupWindows: z.number().int().min(1).default(6),
    /** How fast the baseline forgets, in windows. */
    halfLifeWindows: z.number().positive().default(30),
  })
  .strict();

const rate = z
  .object({
    ...common,
    type: z.literal('rate'),
    /** Rise in the sensor's unit per minute (least-squares slope over the window). */
    maxPerMinute: z.number().positive(),
    minReadings: z.number().int().min(2).default(3),
  })
  .strict();

export const ruleSetSchema = z
  .object({
    windowMs: z.number().int().min(100).max(3_600_000).default(10_000),
    /** Alerts from windows older than this behind the vehicle's newest reading are historical. */
    freshnessMs: z.number().int().min(0).default(60_000),
    rules: z.array(z.discriminatedUnion('type', [threshold, deviation, rate])).min(1),
  })
  .strict()
  .superRefine((s, ctx) => {
    // Names key alerts and baselines: a second rule of the same name would share them.
    const seen = new Set<string>();
    s.rules.forEach((r, i) => {
      if (seen.has(r.name)) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `rule name ${JSON.stringify(r.name)} is used twice; rule names must be unique` });
      }
      seen.add(r.name);
    });
  });

export type RuleSet = z.infer<typeof ruleSetSchema>;
export type Rule = RuleSet['rules'][number];
export type ThresholdRule = Extract<Rule, { type: 'threshold' }>;
export type DeviationRule = Extract<Rule, { type: 'deviation' }>;
export type RateRule = Extract<Rule, { type: 'rate' }>;

/** The rules `fleet` uses when none are configured. */
export const DEFAULT_RULES: RuleSet = ruleSetSchema.parse({
  rules: [
    { name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' },
    // A slow baseline (an hour's half-life) so a cargo warming a degree a minute stands out
    // instead of being learned as the new normal.
    { name: 'cargo-deviation', type: 'deviation', sensor: 'container_temp', k: 5, minStd: 0.5, halfLifeWindows: 360, severity: 'warning' },
    { name: 'engine-temp-rise', type: 'rate', sensor: 'engine_temp', maxPerMinute: 30, severity: 'warning' },
  ],
});
