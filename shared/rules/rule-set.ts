import { z } from 'zod';
import { SENSORS, type SensorId } from '../contract/reading.js';
import { SEVERITIES } from '../contract/alert.js';

/**
 * Rules are data: the same file drives the cloud detector, `fleet replay`, `fleet eval`
 * and the agent's edge rules. Window and freshness live beside them because a rule's
 * meaning depends on the window it is evaluated over. docs/CONTRACT.md and
 * docs/DETECTION.md describe each rule type and what it is for.
 */
const name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be lower-case letters, digits, _ or -');
const sensor = z.enum(SENSORS as [SensorId, ...SensorId[]]);
const windows = (min: number) => z.number().int().min(min).max(1_000_000);
export const DIRECTIONS = ['above', 'below', 'both'] as const;

/** Settings every rule has; `driver` is whether the cab hears of it (the fleet console always does). */
const common = (driver: boolean) => ({
  name,
  sensor,
  severity: z.enum(SEVERITIES).default('warning'),
  driver: z.boolean().default(driver),
  /** Consecutive breaching windows before an episode is raised: a debounce, keyed to the first of them. */
  forWindows: windows(1).default(1),
  /** Consecutive in-range windows that end an episode. */
  clearAfterWindows: windows(1).default(1),
});

/**
 * Settings of the rules that learn what is normal. A breach that lasts this long is a
 * new normal (a reefer set to a new load, a recalibrated sensor): the rule re-learns and
 * the episode ends with reason `level_shift`, so no episode stays open for ever.
 */
const learning = {
  /** Alert bound, in standard deviations of the rule's own evidence (see docs/DETECTION.md). */
  k: z.number().positive().default(6),
  direction: z.enum(DIRECTIONS).default('both'),
  /** Floor on the spread of what is normal, in the sensor's unit: a perfectly steady sensor does not alert on its last digit. */
  minStd: z.number().positive().default(0.5),
  /** Windows of history before the rule judges anything. */
  warmupWindows: windows(1).default(30),
  levelShiftAfterWindows: windows(1).default(60),
  /** How fast what is normal (a level, a scale) follows the data, in windows. */
  halfLifeWindows: z.number().positive().default(360),
  /** How long the rule remembers the spread of its evidence and, for context rules, the relation it learnt; a day of 10 s windows by default, so a daily cycle is known. */
  memoryWindows: z.number().positive().default(8640),
};

const threshold = z
  .object({
    ...common(true),
    type: z.literal('threshold'),
    above: z.number().optional(),
    below: z.number().optional(),
    /** Compare with another sensor's latest value instead of zero, e.g. the cargo's set point. */
    reference: sensor.optional(),
    /** An open episode ends only this far back inside the bound, so a value hovering at it does not raise again and again. */
    hysteresis: z.number().min(0).default(0),
    /** How far past the bound the score climbs from 0.5 to 0.75 (and halves the rest each span after). */
    scoreSpan: z.number().positive().default(10),
  })
  .strict()
  .refine((r) => r.above !== undefined || r.below !== undefined, { message: 'a threshold rule needs "above" or "below"' });

const rate = z
  .object({
    ...common(true),
    type: z.literal('rate'),
    /** Rise in the sensor's unit per minute (least-squares slope over the window). */
    maxPerMinute: z.number().positive(),
    minReadings: z.number().int().min(2).default(3),
    /** How well the readings must follow a line (R²) for their slope to count. */
    minFit: z.number().min(0).max(1).default(0.5),
  })
  .strict();

const deviation = z
  .object({
    ...common(true),
    type: z.literal('deviation'),
    ...learning,
    /**
     * A sensor whose change announces a new normal (e.g. the reefer's set point): the rule
     * then follows the data without judging it for `settleWindows`.
     */
    settleOn: sensor.optional(),
    settleWindows: windows(1).default(720),
    /**
     * `auto`: learn how the series moves with the time of day, and expect it once that
     * explains the data better than a level alone (a daily load cycle, business hours).
     */
    seasonality: z.enum(['auto', 'none']).default('auto'),
    /** A floor on the spread as a share of the series' typical size, for series of any unit (`generic`). */
    minStdFraction: z.number().min(0).max(1).default(0),
  })
  .strict();

const context = z
  .object({
    ...common(true),
    type: z.literal('context'),
    ...learning,
    direction: z.enum(DIRECTIONS).default('above'),
    warmupWindows: windows(1).default(360),
    /** What explains the sensor: their window means, now and smoothed over each of `lagsWindows`. */
    inputs: z.array(sensor).min(1).max(8),
    lagsWindows: z.array(z.number().positive().max(100_000)).max(4).default([6, 30]),
    /** Learn and judge only while the sensor is at least this: e.g. an engine at operating temperature. */
    whenAbove: z.number().optional(),
  })
  .strict();

const stuck = z
  .object({
    ...common(false),
    type: z.literal('stuck'),
    forWindows: windows(2).default(30),
    /** Readings within this of each other count as the same value. */
    tolerance: z.number().min(0).default(0),
  })
  .strict();

const dropout = z
  .object({
    ...common(false),
    type: z.literal('dropout'),
    /** Silence, in windows, after which a sensor that was reporting has dropped out. */
    afterWindows: windows(1).default(6),
    /** Only while this sensor keeps reporting (e.g. rpm: with the engine off the whole OBD bus is silent). */
    whileReporting: sensor.optional(),
  })
  .strict();

const jump = z
  .object({
    ...common(false),
    type: z.literal('jump'),
    /** The most a reading may differ from the one before, plus `maxPerSecond` per second between them; metres for gps. */
    tolerance: z.number().min(0),
    maxPerSecond: z.number().min(0),
  })
  .strict();

export const ruleSetSchema = z
  .object({
    windowMs: z.number().int().min(100).max(86_400_000).default(10_000),
    /** Alerts from windows older than this behind the vehicle's newest reading are historical. */
    freshnessMs: z.number().int().min(0).default(60_000),
    rules: z.array(z.discriminatedUnion('type', [threshold, rate, deviation, context, stuck, dropout, jump])).min(1),
  })
  .strict()
  .superRefine((s, ctx) => {
    // Names key alerts and learnt state: a second rule of the same name would share them.
    const seen = new Set<string>();
    s.rules.forEach((r, i) => {
      if (seen.has(r.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'name'],
          message: `rule name ${JSON.stringify(r.name)} is used twice; rule names must be unique`,
        });
      }
      seen.add(r.name);
      if (r.type === 'context' && r.inputs.includes(r.sensor)) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'inputs'], message: `a context rule cannot explain ${r.sensor} by itself` });
      }
      if ((r.type === 'jump' || r.type === 'dropout') === false && r.sensor === 'gps') {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'sensor'],
          message: `gps readings carry a position: only jump and dropout rules judge them`,
        });
      }
    });
  });

export type RuleSet = z.infer<typeof ruleSetSchema>;
export type Rule = RuleSet['rules'][number];
export type RuleType = Rule['type'];
export type ThresholdRule = Extract<Rule, { type: 'threshold' }>;
export type RateRule = Extract<Rule, { type: 'rate' }>;
export type DeviationRule = Extract<Rule, { type: 'deviation' }>;
export type ContextRule = Extract<Rule, { type: 'context' }>;
export type StuckRule = Extract<Rule, { type: 'stuck' }>;
export type DropoutRule = Extract<Rule, { type: 'dropout' }>;
export type JumpRule = Extract<Rule, { type: 'jump' }>;
export type Direction = (typeof DIRECTIONS)[number];
